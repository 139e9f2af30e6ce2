"""AFM physics: the tip that dilates the sample's van der Waals surface, and the z-loop.

Maps are ``[row, column] = [y, x]``; pixel ``(r, c)`` covers
``[x0 + c p, x0 + (c + 1) p) × [y0 + r p, y0 + (r + 1) p)``. All lengths are metres.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from twin.sample.surface import vdw_height_map  # noqa: F401 - the sample's surface, importable from here


def tip_reach(tip_radius: float, depth: float) -> float:
    """Lateral distance (m) at which a paraboloid tip's flank lies ``depth`` below its apex."""
    return float(np.sqrt(2.0 * tip_radius * max(depth, 0.0)))


def paraboloid_dilation(height: np.ndarray, pixel: float, tip_radius: float) -> np.ndarray:
    """Apex height of a paraboloid tip of radius ``tip_radius`` (m) touching the surface.

    This is the grey-scale dilation by ``-(dx² + dy²) / (2 R)``; the paraboloid is separable, so
    two exact 1-D dilations replace one 2-D dilation. Only the part of the tip within the map's
    height range can touch, which bounds the structuring element.
    """
    half = int(np.ceil(tip_reach(tip_radius, float(np.ptp(height))) / pixel))
    if half == 0:
        return height.copy()
    offsets = np.arange(-half, half + 1) * pixel
    profile = -(offsets**2) / (2.0 * tip_radius)
    rows = ndimage.grey_dilation(height, structure=profile[None, :], mode="nearest")
    return ndimage.grey_dilation(rows, structure=profile[:, None], mode="nearest")


@dataclass(frozen=True)
class Tip:
    """An AFM tip: a paraboloid apex of ``radius`` (m) on a cone of ``cone_half_angle`` (rad), the
    cone tangent to the paraboloid, plus optional further apexes (a double tip): ``(dx, dy, dz)``
    (m) from the main apex, ``dz >= 0`` how far each sits above it."""

    radius: float
    cone_half_angle: float = np.radians(20.0)
    extra_apexes: tuple[tuple[float, float, float], ...] = ()

    @property
    def cone_start(self) -> float:
        """Distance (m) from the axis where the cone takes over from the paraboloid."""
        return self.radius / np.tan(self.cone_half_angle)

    def height(self, r: np.ndarray) -> np.ndarray:
        """Height (m) of one apex's surface above its lowest point at distance ``r`` (m) from its axis."""
        r = np.asarray(r, dtype=np.float64)
        r0 = self.cone_start
        return np.where(r <= r0, r**2 / (2 * self.radius), r0**2 / (2 * self.radius) + (r - r0) / np.tan(
            self.cone_half_angle))


def tip_dilation(height: np.ndarray, pixel: float, tip: Tip) -> np.ndarray:
    """Height (m) of the main apex when the tip touches the surface ``height`` (``[y, x]``, square
    pixels of ``pixel`` m): the grey-scale dilation by the tip's shape.

    The cone-capped paraboloid is the paraboloid dilated by the cone (an infimal convolution), so
    the paraboloid is applied exactly and separably and the cone after it, only where the surface
    is tall enough to reach it; each extra apex dilates the surface shifted by its offset.
    """
    single = _cone_dilation(paraboloid_dilation(height, pixel, tip.radius), pixel, tip)
    apex = single
    for dx, dy, dz in tip.extra_apexes:
        # with the main apex at r, the extra apex touches the surface at r + d, dz higher
        shifted = ndimage.shift(single, (-dy / pixel, -dx / pixel), order=1, mode="nearest")
        apex = np.maximum(apex, shifted - dz)
    return apex


def _cone_dilation(apex: np.ndarray, pixel: float, tip: Tip) -> np.ndarray:
    """Dilation by the cone ``-r / tan(angle)``, which only matters where the paraboloid-dilated
    surface spans more than the paraboloid's cap; computed on a grid coarse enough for a small
    structuring element (the cone is straight, so coarse sampling loses only sub-cell detail)."""
    cap = tip.cone_start**2 / (2 * tip.radius)
    span = float(np.ptp(apex))
    if span <= cap:
        return apex
    slope = 1.0 / np.tan(tip.cone_half_angle)
    reach = (span - cap) / slope  # lateral reach of the part of the cone that can touch
    factor = max(1, int(np.ceil(reach / pixel / _CONE_HALF_WIDTH)))
    coarse = _block_max(apex, factor)
    half = int(np.ceil(reach / (pixel * factor)))
    offsets = np.arange(-half, half + 1) * pixel * factor
    cone = -np.hypot(offsets[:, None], offsets[None, :]) * slope
    dilated = ndimage.grey_dilation(coarse, structure=cone, mode="nearest")
    fine = np.repeat(np.repeat(dilated, factor, axis=0), factor, axis=1)[: apex.shape[0], : apex.shape[1]]
    return np.maximum(apex, fine - (factor - 1) * pixel * slope)  # a block's maximum may sit a block away


_CONE_HALF_WIDTH = 24  # coarse-grid points of the cone's structuring element on each side


def _block_max(values: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return values
    ny, nx = (-(-s // factor) * factor for s in values.shape)
    padded = np.pad(values, ((0, ny - values.shape[0]), (0, nx - values.shape[1])), mode="edge")
    return padded.reshape(ny // factor, factor, nx // factor, factor).max(axis=(1, 3))


DERIVATIVE_FILTER = 10.0  # N: the controller's derivative rolls off above N / d


@dataclass(frozen=True)
class Feedback:
    """The z-loop: a PID controller driving a z actuator that responds in ``response_time`` (s) after
    a ``delay`` (s; sensing and electronics, as a first-order Padé term).

    ``proportional`` is dimensionless, ``integral`` in 1/s, ``derivative`` in s, all in the controller's
    nominal calibration; ``loop_gain`` (dimensionless) is what the loop really multiplies them by: the
    z piezo's sensitivity (m/V) and the slope of the error signal (the cantilever's deflection
    sensitivity, or the amplitude's slope against distance) differ from scanner to scanner and
    cantilever to cantilever. The derivative is filtered (``d s / (1 + s d / N)``,
    ``N = DERIVATIVE_FILTER``), as in real controllers. With ``C = p + i/s + d s / (1 + s d / N)`` and
    ``G = (1 - s T/2) / ((tau s + 1)(1 + s T/2))`` the z position follows the surface height as
    ``Z/S = g C G / (1 + g C G)``: a ramp of speed ``v`` is followed ``v / (g i)`` behind (the loop has
    one integrator); raising the gains shortens the lag until the loop rings and, past its stability
    limit, oscillates until the actuator saturates.
    """

    proportional: float
    integral: float
    derivative: float = 0.0
    response_time: float = 100e-6
    delay: float = 50e-6
    loop_gain: float = 1.0

    def closed_loop(self) -> tuple[np.ndarray, np.ndarray]:
        """Numerator and denominator (powers of ``s``, highest first) of ``Z/S``."""
        roll_off = [self.derivative / DERIVATIVE_FILTER, 1.0]  # the derivative filter's (1 + s d / N)
        controller = np.polyadd(np.polymul([self.proportional, self.integral], roll_off),
                                [self.derivative, 0.0, 0.0])  # C times s (1 + s d / N)
        numerator = np.polymul(self.loop_gain * controller, [-self.delay / 2, 1.0])
        plant = np.polymul([self.response_time, 1.0], [self.delay / 2, 1.0])
        denominator = np.polyadd(np.polymul([1.0, 0.0], np.polymul(plant, roll_off)), numerator)
        return numerator, denominator

    def is_stable(self) -> bool:
        return bool(np.all(np.roots(self.closed_loop()[1]).real < 0))

    def track(self, surface: np.ndarray, dt: float, z_range: float = 2e-6) -> np.ndarray:
        """z positions (m) following ``surface`` (m, sampled every ``dt`` s along the last axis),
        starting settled on its first value, the actuator limited to ``±z_range / 2`` about it.

        The loop is discretised with a first-order hold, which is exact for a surface that runs
        linearly between samples, however fast the loop is compared with ``dt``."""
        if self.integral <= 0.0:  # no integral action: z stays where the line started (open loop)
            return np.broadcast_to(surface[..., :1], surface.shape).copy()
        start = surface[..., :1]  # settled there: track the deviation from it from rest
        try:
            numerator, denominator = _discretised(self, float(dt))
        except np.linalg.LinAlgError:  # so unstable that it overflows within one sample
            return start + z_range / 2 * (-1.0) ** np.arange(surface.shape[-1])  # from stop to stop
        with np.errstate(all="ignore"):
            z = signal.lfilter(numerator, denominator, surface - start, axis=-1)
        z = np.nan_to_num(z, nan=z_range, posinf=z_range, neginf=-z_range)
        return np.clip(z, -z_range / 2, z_range / 2) + start


@functools.lru_cache(maxsize=64)
def _discretised(feedback: Feedback, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The loop's discrete filter (numerator, denominator) for samples ``dt`` (s) apart, first-order hold;
    worked out once for each loop and sampling (every line of a frame, and frame after frame, share it)."""
    with np.errstate(all="ignore"):
        numerator, denominator, _ = signal.cont2discrete(feedback.closed_loop(), dt, method="foh")
    numerator, denominator = np.ravel(numerator), np.asarray(denominator)
    numerator.flags.writeable = denominator.flags.writeable = False
    return numerator, denominator


def thermal_drift(t: np.ndarray, velocity: tuple[float, float], settling: float) -> np.ndarray:
    """Offset (m, ``(..., 2)``) of the sample under the scanner at instrument time ``t`` (s): drift
    at ``velocity`` (m/s) at first, slowing as the instrument settles thermally with time constant
    ``settling`` (s), so it never exceeds ``velocity * settling``."""
    travelled = settling * -np.expm1(-np.asarray(t, dtype=np.float64) / settling)
    return travelled[..., None] * np.asarray(velocity, dtype=np.float64)


@dataclass(frozen=True)
class Contact:
    """Tip-sample interaction (DMT): van der Waals attraction ``-H R / (6 d²)`` down to the
    intermolecular distance ``a0``, then adhesion plus Hertzian repulsion ``(4/3) E* sqrt(R) (a0 - d)^1.5``.
    ``hamaker`` in J, ``modulus`` (reduced, E*) in Pa, lengths in m; ``friction`` and
    ``contact_potential`` describe sliding and the electrostatics of the same spot."""

    hamaker: float = 1e-19
    modulus: float = 20e9
    a0: float = 0.3e-9
    friction: float = 0.02  # sliding friction coefficient (graphene-like: low)
    contact_potential: float = 0.0  # V, relative to the pristine surface
    loss: float = 0.0  # J per tap lost besides adhesion hysteresis (viscoelastic samples)

    def adhesion(self, tip_radius: float) -> float:
        """Pull-off force (N) of a tip of ``tip_radius`` (m): ``H R / (6 a0^2)``."""
        return self.hamaker * tip_radius / (6 * self.a0**2)

    def dissipation(self, tip_radius: float) -> float:
        """Energy (J) lost per tap: the adhesion hysteresis (pull-off force over ``a0``) plus ``loss``."""
        return self.adhesion(tip_radius) * self.a0 + self.loss

    def force(self, gap: np.ndarray, tip_radius: float) -> np.ndarray:
        """Force (N, > 0 repulsive) on a tip of ``tip_radius`` at ``gap`` (m) from the surface."""
        gap = np.asarray(gap, dtype=np.float64)
        attraction = -self.hamaker * tip_radius / (6 * np.maximum(gap, self.a0) ** 2)
        indentation = np.clip(self.a0 - gap, 0.0, None)
        return attraction + 4 / 3 * self.modulus * np.sqrt(tip_radius) * indentation**1.5


def force_curve(z: np.ndarray, contact: Contact, tip_radius: float, spring_constant: float,
                approaching: bool) -> np.ndarray:
    """Cantilever deflection (m, > 0 bent away from the sample) with its base at heights ``z`` (m,
    above the undeflected contact point), quasi-static: the tip stays on its branch of equilibria
    ``k delta = F(z + delta)`` until that branch ends, so it snaps in on approach and pulls off
    late on retraction (the jumps and the hysteresis of a real curve)."""
    adhesion = contact.adhesion(tip_radius) / spring_constant  # m of pull-in bending
    reach = 1.5 * adhesion + np.ptp(z) + 2e-9
    deflections = np.linspace(-reach, reach, 8001)  # candidate equilibria
    result = np.empty(len(z))
    previous = None
    order = range(len(z)) if approaching else range(len(z) - 1, -1, -1)
    for i in order:
        balance = spring_constant * deflections - contact.force(z[i] + deflections, tip_radius)
        roots = np.flatnonzero(np.diff(np.sign(balance)) > 0)  # stable: balance rises through zero
        if len(roots) == 0:
            result[i] = deflections[np.argmin(np.abs(balance))]
            previous = result[i]
            continue
        candidates = deflections[roots]
        if previous is None:
            pick = candidates[-1] if approaching else candidates[0]  # far away / pressed in
        else:
            pick = candidates[np.argmin(np.abs(candidates - previous))]
        result[i] = previous = pick
    return result


def worn_radius(radius: float, load: float, path: float, wear_rate: float) -> float:
    """Apex radius (m) after the tip slid ``path`` (m) under ``load`` (N): Archard-like wear, the
    radius growing by ``wear_rate`` (1/N) x load x path."""
    return radius + wear_rate * max(load, 0.0) * path


VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m


def tapping_phase(amplitude: np.ndarray, free_amplitude: float, dissipation: np.ndarray,
                  quality_factor: float, spring_constant: float) -> np.ndarray:
    """Phase lag (deg) of a cantilever driven at resonance while tapping, in the repulsive regime.

    Energy balance (Cleveland et al., APL 72, 2613, 1998): ``sin(phi) = A/A0 + Q E / (pi k A A0)``
    with ``E`` the energy (J) the tip dissipates per tap, so phase maps where the sample takes more
    energy (adhesion hysteresis, softness) at the same amplitude ``A`` (m). Repulsive regime:
    ``phi = 180 deg - arcsin(...)``, 90 deg when free.
    """
    amplitude = np.maximum(np.asarray(amplitude, dtype=np.float64), 1e-3 * free_amplitude)
    sine = amplitude / free_amplitude + quality_factor * dissipation / (
        np.pi * spring_constant * amplitude * free_amplitude)
    return 180.0 - np.degrees(np.arcsin(np.clip(sine, -1.0, 1.0)))


def driven_response(frequency: np.ndarray, resonance: float, quality_factor: float) -> np.ndarray:
    """The cantilever's response to a drive at ``frequency`` (Hz), relative to its static response
    (complex; a damped harmonic oscillator of ``resonance`` frequency (Hz) and ``quality_factor``):
    ``1 / (1 - (f/f0)² + i f / (f0 Q))``, so the amplitude peaks near ``f0`` at ``Q`` times the static
    one, over a width ``f0 / Q``, and the phase lags 90 deg at ``f0`` (returned with a negative angle)."""
    ratio = np.asarray(frequency, dtype=np.float64) / resonance
    return 1.0 / (1.0 - ratio**2 + 1j * ratio / quality_factor)


def lateral_force(load: float, adhesion: np.ndarray, friction: np.ndarray, slope: np.ndarray,
                  direction: int) -> np.ndarray:
    """Lateral force (N) on a tip sliding in contact: friction ``mu (L + F_ad)`` against the motion
    (``direction`` +1 forward, -1 backward) plus the part of the normal force a surface ``slope``
    (dz/dx along the scan) turns sideways, the same both ways. Half the forward-minus-backward
    difference is the friction; their mean is topographic crosstalk."""
    normal = load + np.asarray(adhesion)
    return direction * np.asarray(friction) * normal + normal * np.asarray(slope)


def electrostatic_force(voltage: float, contact_potential: np.ndarray, tip_radius: float,
                        gap: float) -> np.ndarray:
    """Attractive force (N) between a spherical apex of ``tip_radius`` (m) at ``gap`` (m, much less than
    the radius) and a conducting plane: ``pi eps0 R (V - V_cpd)^2 / gap``."""
    bias = voltage - np.asarray(contact_potential)
    return np.pi * VACUUM_PERMITTIVITY * tip_radius * bias**2 / gap


def electrostatic_lift(voltage: float, contact_potential: np.ndarray, tip_radius: float,
                       free_amplitude: float, spring_constant: float, quality_factor: float) -> np.ndarray:
    """How far (m) the amplitude loop lifts a tapping tip when a bias attracts it.

    The force gradient ``F' = pi eps0 R (V - V_cpd)^2 / A0^2`` (at the free amplitude's distance)
    detunes the cantilever by ``Q F' / k`` resonance half-widths; the amplitude drops to
    ``A0 / sqrt(1 + x^2)`` and the loop restores it by backing off about that much."""
    gradient = electrostatic_force(voltage, contact_potential, tip_radius, free_amplitude) / free_amplitude
    detuning = quality_factor * gradient / spring_constant
    return free_amplitude * (1.0 - 1.0 / np.sqrt(1.0 + detuning**2))


def piezo_creep(t: np.ndarray, moves: list[tuple[float, float, float]], per_decade: float,
                settling: float, onset: float) -> np.ndarray:
    """How far (m, ``(..., 2)``) the scanner still lags behind its commanded offset at instrument
    times ``t`` (s), after offset steps ``moves`` = ``[(time, dx, dy), ...]``.

    Logarithmic creep: a step ``D`` lags ``per_decade x D x log10(1 + settling / (t - t_step + onset))``,
    largest just after the step and fading as the piezo settles."""
    t = np.asarray(t, dtype=np.float64)
    lag = np.zeros((*t.shape, 2))
    for when, dx, dy in moves:
        since = np.maximum(t - when, 0.0)
        fraction = per_decade * np.log10(1.0 + settling / (since + onset)) * (t >= when)
        lag -= fraction[..., None] * np.array([dx, dy])
    return lag


# --- what each scan channel records ----------------------------------------------------------------
def loop_input(error: np.ndarray, setpoint: float, static: bool, deflection_sensitivity: float,
               free_amplitude: float) -> np.ndarray:
    """What the z-loop measures with the tip ``error`` (m) below the surface it follows (> 0: the
    surface pushes the tip up): the deflection (V, ``deflection_sensitivity`` m/V) around the setpoint
    in static modes, the amplitude (% of the ``free_amplitude``, m) in dynamic ones."""
    if static:
        return setpoint + error / deflection_sensitivity
    return np.clip(setpoint - error / free_amplitude * 100.0, 0.0, 100.0)


def phase_channel(amplitude: np.ndarray, hamaker: np.ndarray, loss: np.ndarray, tip_radius: float,
                  free_amplitude: float, quality_factor: float, spring_constant: float) -> np.ndarray:
    """Phase (deg) while tapping, from the ``amplitude`` (% of the free one) and the energy each tap
    loses to adhesion hysteresis (``hamaker``, J) and viscous ``loss`` (J) on the spot under the tip
    (:func:`tapping_phase`)."""
    dissipation = Contact(hamaker=hamaker, loss=loss).dissipation(tip_radius)
    return tapping_phase(amplitude / 100.0 * free_amplitude, free_amplitude, dissipation, quality_factor,
                         spring_constant)


def lateral_channel(load: float, hamaker: np.ndarray, friction: np.ndarray, tip_radius: float,
                    slope: np.ndarray, direction: int, lateral_sensitivity: float) -> np.ndarray:
    """Lateral deflection (V, ``lateral_sensitivity`` N/V) in contact: friction against the scan
    ``direction`` plus topographic crosstalk (:func:`lateral_force`)."""
    adhesion = Contact(hamaker=hamaker).adhesion(tip_radius)
    return lateral_force(load, adhesion, friction, slope, direction) / lateral_sensitivity
