"""Fixed properties of the simulated AFM (SI units)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AfmHardware:
    """Fixed properties of the simulated AFM (SI units)."""

    scanner_range: float = 100e-6  # full xy range; the frame must fit in ±range/2
    z_range: float = 2e-6  # full z range, sets the binary conversions' least significant bit
    approach_duration: float = 3.0  # s
    standby_gap: float = 100e-6  # m between tip and sample when not approached (what the side camera shows)
    motor_step_time: float = 2e-3  # s per approach-motor step (withdraw)
    stage_range: float = 2e-3  # m, full travel of the sample stage in x and y (the shared sample's span)
    stage_speed: float = 1e-3  # m/s
    atom_limit: int = 2_000_000  # beyond this the frame is computed from the continuum surface
    fine_grid_limit: int = 2048 * 2048  # cells of the internal atomistic grid
    height_tolerance: float = 5e-12  # m; bounds the internal pixel so area-max ≈ point sampling
    input_noise: float = 0.2  # % of the controller input's range (detector noise)
    free_amplitude: float = 10e-9  # m, the cantilever's free oscillation amplitude (dynamic modes)
    deflection_sensitivity: float = 50e-9  # m of static deflection per volt on the detector
    spring_constant: float = 0.2  # N/m, the cantilever's
    tapping_force: float = 1e-9  # N, mean tapping force at 0 % setpoint (k A0 / Q of a 40 N/m, Q 400 lever)
    wear_rate: float = 100.0  # 1/N: the apex radius grows by this x load x sliding path
    damaging_force: float = 50e-9  # N: beyond this load the apex breaks
    hard_tapping_setpoint: float = 10.0  # %: below this amplitude setpoint the tip hits the surface hard
    tip_change_path: float = 20e-3  # m of tip path between random tip changes, on average
    z_response_time: float = 100e-6  # s, the z actuator's first-order response
    loop_delay: float = 50e-6  # s, sensing and electronics in the z-loop
    proportional_unit: float = 1e-4  # PGain 1 = this dimensionless proportional gain
    integral_unit: float = 1.0  # IGain 1 = this integral gain (1/s)
    derivative_unit: float = 1e-8  # DGain 1 = this derivative time (s)
    quality_factor: float = 400.0  # of the dynamic-mode cantilever's resonance
    resonance_frequency: float = 190e3  # Hz, the dynamic-mode cantilever's free resonance
    sweep_noise: float = 1e-4  # V RMS on a frequency sweep's amplitude
    tapping_spring_constant: float = 40.0  # N/m, the dynamic-mode cantilever's
    phase_noise: float = 0.02  # deg RMS on the phase channel
    lateral_sensitivity: float = 2e-9  # N of lateral force per volt of lateral deflection
    lateral_noise: float = 5e-3  # V RMS on the lateral channel
    creep_settling: float = 100.0  # s: piezo creep fades over this time after an offset step ...
    creep_onset: float = 0.1  # s ... starting this soon after it
    drift_speed: float = 20e-12  # m/s of thermal drift at first (direction from the seed) ...
    drift_settling: float = 3600.0  # s ... slowing as the instrument settles: at most 72 nm in all
