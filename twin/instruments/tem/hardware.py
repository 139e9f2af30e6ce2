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
    """A pixelated camera: full-frame size, pixel pitch (m) and how it turns electrons into counts.

    An integrating (scintillator + CMOS) camera gives ``counts_per_electron`` on average per electron,
    each electron's light yield fluctuating with relative variance ``gain_variance`` (gamma-distributed:
    DQE(0) = 1 / (1 + gain_variance)); the scintillator spreads the light over a Gaussian core of
    ``psf_sigma`` sensor pixels plus a wide Gaussian tail of ``psf_tail`` pixels carrying
    ``psf_tail_fraction`` of it, blurring signal and shot noise alike; the read-out adds Gaussian
    ``read_noise`` (counts) on a dark ``offset`` (counts).

    A ``counting`` camera (a direct electron detector in counting mode) records each detected electron
    as one count at its pixel: ``counts_per_electron`` is its detection efficiency (the DQE(0) at low
    dose rate), ``dead_time`` (s) how long a pixel is blind after an event (coincidence loss), no blur,
    no read noise, no offset.
    """

    name: str
    pixels: int = 4096
    pitch: float = 14e-6
    # Ceta-class 4k scintillator cameras: dose calibrations of 4k scintillator cameras against a Faraday
    # cup / the screen current report ~10 counts per primary electron at 200-300 kV (facility notes:
    # 9.9 for a Titan 4k camera, 10.5 for a CCD); one value at every high tension here.
    counts_per_electron: float = 10.0
    # Light-yield spread of a scintillator camera (the excess noise of Grob et al., Ultramicroscopy 133
    # (2013), and the Swank factor): relative variance 0.5 gives DQE(0) = 0.67.
    gain_variance: float = 0.5
    read_noise: float = 5.0  # counts rms, 0.5 e: a CMOS read-out
    offset: float = 100.0  # counts: the dark level (bias), so read noise is never clipped at zero
    # Gaussian core 0.7 sensor pixels (sampled kernel: MTF 0.18 at Nyquist) plus a 4-pixel tail with 15 %
    # of the light (the low-frequency drop and long tails of a scintillator): MTF 0.15 at the full-frame
    # Nyquist frequency, as scintillator CMOS cameras of the Ceta class.
    psf_sigma: float = 0.7
    psf_tail: float = 4.0
    psf_tail_fraction: float = 0.15
    counting: bool = False
    dead_time: float = 0.0  # s, counting only
    retractable: bool = True
    exposure_limits: tuple[float, float] = (1e-3, 100.0)  # s: the read-out's shortest frame, the longest

    @property
    def kind(self) -> str:
        return "counting" if self.counting else "integrating"

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
    cameras: tuple[Camera, ...] = (
        Camera("BM-Ceta"),
        # the screen camera views the phosphor of the small screen: fewer counts per electron
        Camera("Flucam", pixels=1024, pitch=56e-6, counts_per_electron=3.0, gain_variance=0.8, read_noise=2.0,
               retractable=False),
        # A Falcon-4-class direct electron detector in counting mode: ~0.9 counts per primary electron
        # at low dose rate (the counted-mode sensitivity of direct detectors, and their DQE(0) ~0.9 at
        # 300 kV); each event blinds ~3 pixels of one 4 ms internal frame (250 frames/s), a dead time of
        # ~12 ms per pixel: 8 % coincidence loss at 8 e/pixel/s. 4 ms is its shortest exposure.
        Camera("BM-Falcon", counts_per_electron=0.9, gain_variance=0.0, read_noise=0.0, offset=0.0,
               psf_sigma=0.0, psf_tail=0.0, psf_tail_fraction=0.0, counting=True, dead_time=12e-3,
               exposure_limits=(4e-3, 100.0)),
    )
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
    tem_engine: str = "fast"  # plane-wave exit waves: "fast" (twin.physics.fast_multislice) or "abtem"
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
