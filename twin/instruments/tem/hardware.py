"""Fixed properties of the simulated column, cameras, detectors and stage (SI units)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.physics.ctf import Coherence
from twin.physics.xray import MN_K_ALPHA, resolution

# Nominal magnifications of the imaging (SA/Mh) range; the camera sees nominal × post-magnification.
NOMINAL_MAGNIFICATIONS = (
    1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0, 38_000.0, 57_000.0, 88_000.0, 145_000.0,
    195_000.0, 285_000.0, 380_000.0, 490_000.0, 640_000.0, 810_000.0, 1_050_000.0, 1_300_000.0,
    1_650_000.0, 2_050_000.0, 2_550_000.0, 3_200_000.0, 4_000_000.0,
)
CAMERA_LENGTHS = (0.029, 0.037, 0.048, 0.058, 0.073, 0.091, 0.115, 0.145, 0.185, 0.23, 0.29, 0.36,
                  0.46, 0.58, 0.73, 0.91, 1.15, 1.45, 1.85, 2.3)  # m
STAGE_AXES = ("x", "y", "z", "a", "b")


@dataclass(frozen=True)
class Camera:
    """A pixelated camera: full-frame size, pixel pitch (m), read noise (counts) and the scintillator's
    Gaussian light spread (sensor pixels; 0.6 gives an MTF of ~0.17 at the full-frame Nyquist frequency),
    which blurs signal and shot noise alike, as in an integrating camera."""

    name: str
    pixels: int = 4096
    pitch: float = 14e-6
    counts_per_electron: float = 1.0
    read_noise: float = 0.5
    psf_sigma: float = 0.6
    retractable: bool = True
    exposure_limits: tuple[float, float] = (1e-3, 100.0)  # s: the read-out's shortest frame, the longest

    @property
    def sizes(self) -> tuple[int, ...]:
        """Read-out sizes by binning the full frame (square)."""
        return tuple(self.pixels // 2**k for k in range(7))

    @property
    def width(self) -> float:
        """Sensor width (m)."""
        return self.pixels * self.pitch


@dataclass(frozen=True)
class ScanningDetector:
    """A STEM detector collecting scattering angles ``inner`` to ``outer`` (rad); its electronics add
    Gaussian ``read_noise`` (counts) to every pixel."""

    name: str
    inner: float
    outer: float
    retractable: bool = True
    read_noise: float = 0.5


@dataclass(frozen=True)
class ApertureMechanism:
    """A motorised aperture strip: its ``apertures`` (name, diameter in m), which one is in at start
    (``None``: retracted) and whether it can be retracted."""

    name: str
    apertures: tuple[tuple[str, float], ...]
    default: str | None
    retractable: bool = True

    def diameter(self, aperture: str) -> float:
        return dict(self.apertures)[aperture]


@dataclass(frozen=True)
class EdsDetector:
    """An energy-dispersive X-ray detector of ``segments`` silicon drift detectors sharing
    ``solid_angle`` (sr) around the specimen: ``thickness`` and ``dead_layer`` of silicon (m), the
    ``resolution`` (eV FWHM) at Mn K-alpha with the longest shaping time (the datasheet's figure; shorter
    shaping times add electronic noise as ``1/sqrt(shaping time)``), a dead time of ``dead_time_factor``
    shaping times per event, and the read-outs it offers: channel counts, dispersions (eV per channel),
    shaping times (s)."""

    name: str = "SuperX"
    segments: int = 4
    solid_angle: float = 0.7
    thickness: float = 450e-6
    dead_layer: float = 30e-9
    resolution: float = 130.0  # eV FWHM at Mn K-alpha (5898.75 eV)
    dead_time_factor: float = 2.0
    bin_counts: tuple[int, ...] = (4096,)
    dispersions: tuple[float, ...] = (1.25, 2.5, 5.0)
    shaping_times: tuple[float, ...] = (1e-6, 2e-6, 3e-6)
    offset_energy: float = -100.0  # eV: the energy of channel 0
    retractable: bool = True
    exposure_limits: tuple[float, float] = (1e-3, 3600.0)  # s

    def noise_at(self, shaping_time: float) -> float:
        """The electronics' noise (eV FWHM) at ``shaping_time`` (s): what the resolution at Mn K-alpha
        leaves beyond silicon's Fano statistics, growing as ``1/sqrt(shaping time)``."""
        fano = float(resolution(MN_K_ALPHA, 0.0))
        return float(np.sqrt(self.resolution**2 - fano**2) * np.sqrt(max(self.shaping_times) / shaping_time))


@dataclass(frozen=True)
class TemHardware:
    """The column, its detectors and its stage (SI units)."""

    spherical_aberration: float = 1.0e-6  # residual Cs of an aberration-corrected objective
    chromatic_aberration: float = 1.2e-3
    energy_spread: float = 0.3  # eV, FWHM of the source
    illumination_semiangle: float = 0.1e-3  # rad, angular spread of the parallel TEM beam
    current_at_spot_1: float = 16e-9  # A; each spot size step halves the current
    min_beam_diameter: float = 100e-9  # the condenser never spreads the TEM beam less than this
    post_magnification: float = 1.5  # camera magnification / nominal magnification
    stigmator_strength: float = 50e-9  # m of two-fold astigmatism per stigmator unit
    multislice_atom_limit: int = 4_000_000  # atoms one multislice may handle
    grid_point_limit: int = 12288  # points per side of any simulation grid (~1.2 GB per complex wave)
    multislice_cell_limit: float = 1.5e9  # grid points x slices of one multislice (~1.5 min of work)
    exact_probe_limit: int = 16384  # probe positions of one exact multislice scan (128², minutes)
    prism_probe_limit: int = 262144  # probe positions of one PRISM scan (512²)
    diffraction_area: tuple[float, float] = (5e-9, 50e-9)  # m: selected area a pattern simulates
    damage_atom_limit: int = 2_000_000  # beyond this many atoms in the beam, knock-ons are sampled
    cache_bytes: int = 384 * 2**20  # exit-wave spectra
    kernel_cache_bytes: int = 128 * 2**20  # lens transfer functions
    cameras: tuple[Camera, ...] = (Camera("BM-Ceta"), Camera("Flucam", pixels=1024, pitch=56e-6,
                                                              read_noise=2.0, retractable=False))
    scanning_detectors: tuple[ScanningDetector, ...] = (
        ScanningDetector("HAADF", 80e-3, 200e-3, retractable=False),
        ScanningDetector("ADF", 35e-3, 80e-3),
        ScanningDetector("ABF", 11e-3, 22e-3),
        ScanningDetector("BF", 0.0, 11e-3),
        ScanningDetector("BF-S", 0.0, 11e-3),  # the segmented bright-field detector, read as a whole
        ScanningDetector("DF-S", 22e-3, 60e-3),  # the segmented dark-field detector, read as a whole
    )
    eds_detectors: tuple[EdsDetector, ...] = (EdsDetector(),)
    aperture_mechanisms: tuple[ApertureMechanism, ...] = (
        ApertureMechanism("C2", (("150", 150e-6), ("70", 70e-6), ("50", 50e-6), ("30", 30e-6)), "50",
                          retractable=False),
        ApertureMechanism("Objective", (("100", 100e-6), ("70", 70e-6), ("40", 40e-6), ("10", 10e-6)), None),
        ApertureMechanism("SA", (("800", 800e-6), ("200", 200e-6), ("40", 40e-6), ("10", 10e-6)), None),
    )
    reference_c2: float = 50e-6  # m: the C2 aperture the spot sizes' currents are quoted for
    convergence_per_c2: float = 30e-3 / 50e-6  # rad per m of C2 diameter: the largest probe semi-angle
    objective_focal_length: float = 1.7e-3  # m: an objective aperture of diameter d stops angles > d / 2f
    sa_magnification: float = 55.0  # the SA plane's magnification: an SA aperture d selects d / 55
    crossover_intensity: float = 0.45  # optics.intensity that focuses the TEM beam to its crossover
    default_intensity: float = 0.6  # ... and that spreads it just over the camera's field of view
    crossover_diameter: float = 10e-9  # m: the TEM beam at crossover
    emission_lifetime: float = 75 * 3600.0  # s: a cold FEG's emission falls by 1/e in this after a flash
    flash_advised_after: float = 8 * 3600.0  # s after a flash
    holder: str = "DoubleTilt"
    stem_mode: str = "interactive"  # the server's default STEM physics
    stage_limits: tuple[tuple[float, float], ...] = (
        (-1e-3, 1e-3), (-1e-3, 1e-3), (-0.375e-3, 0.375e-3), (-0.61, 0.61), (-0.52, 0.52)
    )
    stage_speeds: tuple[float, ...] = (25e-6, 25e-6, 10e-6, 0.087, 0.087)  # m/s and rad/s per axis
    stage_error: float = 20e-9  # m, RMS error of each x/y move
    stage_backlash: float = 50e-9  # m, lost when an axis reverses direction
    drift_rate: float = 2e-11  # m/s of specimen drift (1.2 nm per minute)

    def coherence(self, energy: float) -> Coherence:
        """Focal spread (1/e) from Cc and the energy spread at ``energy`` (eV), plus angular spread."""
        sigma_energy = self.energy_spread / (2 * np.sqrt(2 * np.log(2)))
        focal_spread = np.sqrt(2) * self.chromatic_aberration * sigma_energy / energy
        return Coherence(focal_spread=float(focal_spread), angular_spread=self.illumination_semiangle)

    def beam_current(self, spot_size_index: int) -> float:
        """Beam current (A) at a spot size index (1 = largest)."""
        return self.current_at_spot_1 * 0.5 ** (spot_size_index - 1)

    def camera(self, name: str) -> Camera:
        return next(c for c in self.cameras if c.name == name)

    def detector(self, name: str) -> ScanningDetector:
        return next(d for d in self.scanning_detectors if d.name == name)

    def aperture_mechanism(self, name: str) -> ApertureMechanism:
        return next(m for m in self.aperture_mechanisms if m.name == name)

    def eds_detector(self, name: str) -> EdsDetector:
        return next(d for d in self.eds_detectors if d.name == name)
