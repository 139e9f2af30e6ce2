"""Energy-dispersive X-ray spectroscopy (EDS) on the TEM/STEM: a spectrum where the beam is, and a
spectrum image along a STEM scan.

The X-rays come from the atoms of the shared sample that the beam actually crosses: in STEM the
parked probe weighs every atom by its intensity there (a spectrum image, at every scan position); in
TEM the illuminated disk counts them all. :mod:`twin.physics.xray` turns atoms into counts; the same
electrons count toward the dose budget and knock atoms out as any image's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from scipy import constants, ndimage

from twin import validation
from twin.constants import ANGSTROM
from twin.instruments.tem.hardware import EdsDetector
from twin.instruments.tem.illumination import beam_diameter
from twin.instruments.tem.imaging import atoms_in_view
from twin.instruments.tem.irradiation import irradiate_disk
from twin.instruments.tem.metadata import Exposure, acquisition_metadata
from twin.instruments.tem.scanning import SHORTEST_DWELL, Scan, scan_region
from twin.instruments.work import Cost
from twin.physics import stem as stem_physics
from twin.physics import xray
from twin.physics.ctf import Aberrations, electron_wavelength
from twin.physics.damage import displaced
from twin.sample import Window

if TYPE_CHECKING:
    from twin.instruments.tem.instrument import State, TemInstrument

EXPOSURE_TIME_TYPES = ("LiveTime", "RealTime")
LONGEST_REAL_TIME = 3600.0  # s: a live-time spectrum whose dead time would stretch it beyond this is refused
MOST_EVENTS = 20_000_000  # counts one spectrum image may hold (~ 120 MB on the wire)
BROAD_BEAM_SIDE = 100e-9  # m: a broad beam's atoms are counted in at most this square at its centre
_STREAM_EDS = 0x454453  # random stream tag for X-ray counts
_STREAM_EDS_DAMAGE = 0x454444  # random stream tag for knock-ons under a parked probe


@dataclass(frozen=True)
class Readout:
    """How the spectrometer is read: which detector, ``dispersion`` (eV per channel), ``shaping_time``
    (s) and ``channels`` per segment."""

    detector: EdsDetector
    dispersion: float
    shaping_time: float
    channels: int

    @property
    def dead_time(self) -> float:
        """Seconds each recorded event keeps a segment's pulse processor busy."""
        return self.detector.dead_time_factor * self.shaping_time

    @property
    def offset(self) -> float:
        return self.detector.offset_energy

    def per_atom(self, element: str, beam_energy: float) -> np.ndarray:
        """Expected counts per channel in the whole detector, per incident electron per atom of
        ``element`` per m⁻² of beam density (float64)."""
        return _spectrum_per_atom(element, beam_energy, self.channels, self.dispersion, self.offset,
                                  self.detector.noise_at(self.shaping_time), self.detector.thickness,
                                  self.detector.dead_layer) * self.detector.solid_angle

    def describe(self) -> dict[str, Any]:
        return {"dispersion": self.dispersion, "offset_energy": self.offset,
                "shaping_time": self.shaping_time, "bin_count": self.channels, "energy_unit": "eV",
                "dead_time_per_event": self.dead_time}


@lru_cache(maxsize=64)
def _spectrum_per_atom(element: str, beam_energy: float, channels: int, dispersion: float, offset: float,
                       noise: float, thickness: float, dead_layer: float) -> np.ndarray:
    spectrum = xray.spectrum_per_atom(element, atomic_numbers[element], beam_energy, channels, dispersion,
                                      offset, noise, thickness, dead_layer)
    spectrum.flags.writeable = False
    return spectrum


def _closest(name: str, value: Any, allowed: tuple[float, ...], unit: str) -> float:
    """``value`` if it is one of ``allowed`` (to 1e-6 relative), else a ValueError naming them."""
    number = validation.real(name, value, min(allowed) * 0.5, max(allowed) * 2, unit)
    for choice in allowed:
        if abs(number - choice) <= 1e-6 * choice:
            return choice
    offered = ", ".join(f"{a:g}" for a in allowed)
    raise ValueError(f"{name} = {number!r} {unit} is not offered; allowed: {offered}")


class EdsSpectrometer:
    """The EDS detectors of one :class:`TemInstrument`."""

    def __init__(self, tem: TemInstrument) -> None:
        self.tem = tem
        self.hardware = tem.hardware

    def readout(self, detector: Any, dispersion: Any, shaping_time: Any) -> Readout:
        """A checked read-out: ``detector`` by name, ``dispersion`` and ``shaping_time`` as offered."""
        names = [d.name for d in self.hardware.eds_detectors]
        unit = self.hardware.eds_detector(validation.one_of("eds_detector", detector, names))
        chosen = _closest("dispersion", dispersion, unit.dispersions, "eV")
        shaping = _closest("shaping_time", shaping_time, unit.shaping_times, "s")
        return Readout(unit, chosen, shaping, unit.bin_counts[0])

    def _check_inserted(self, state: State, readout: Readout) -> None:
        if not state[f"detectors.{readout.detector.name}.inserted"]:
            raise RuntimeError(f"EDS detector {readout.detector.name} is retracted; insert() it first")

    # --- one spectrum ------------------------------------------------------------------------------
    def acquire_spectrum(self, detector: Any, dispersion: Any, shaping_time: Any, exposure_time: Any,
                         exposure_time_type: Any = "LiveTime") -> dict[str, Any]:
        """A spectrum where the beam is: ``{"data": uint32 [segments * channels], "metadata": {...}}``,
        the segments' spectra one after another. ``exposure_time`` (s) is live time (counting time,
        the acquisition lasting longer by the dead time) or real time, as ``exposure_time_type`` says."""
        tem = self.tem
        readout = self.readout(detector, dispersion, shaping_time)
        exposure = validation.real("exposure_time", exposure_time, *readout.detector.exposure_limits, "s")
        kind = validation.one_of("exposure_time_type", exposure_time_type, EXPOSURE_TIME_TYPES)
        state = tem.snapshot()
        self._check_inserted(state, readout)
        stage, offset = tem.stage_reading(state)
        energy = state["source.acceleration_voltage"]
        beam_on = tem.beam_on_specimen(state)
        stem_mode = state["optics.optical_mode"] == "Stem"
        if stem_mode:
            centre = tem.parked_probe(state, stage, offset)
            atoms, density = self.under_probe(state, stage, centre)
            diameter = 0.0
        else:
            centre = tem.view_centre(state, stage, offset, "optics.beam_shift")
            diameter = beam_diameter(state, tem.hardware, tem.field_of_view(state["optics.magnification"]))
            atoms, density = self._under_broad_beam(centre, diameter)
        per_electron = self._expected(atoms.numbers, density, readout, energy)  # counts per electron
        electrons_per_second = tem.beam_current(state) / constants.e if beam_on else 0.0
        segments = readout.detector.segments
        rate = per_electron.sum() * electrons_per_second / segments  # per segment
        throughput = float(xray.paralyzable_throughput(rate, readout.dead_time))
        if kind == "LiveTime":
            live, real = exposure, exposure / throughput
        else:
            live, real = exposure * throughput, exposure
        if real > LONGEST_REAL_TIME:
            raise ValueError(
                f"exposure_time = {exposure!r} s of live time needs {real:.4g} s at {rate:.3g} counts/s per "
                f"segment ({100 * (1 - throughput):.0f} % dead time); allowed at most "
                f"{LONGEST_REAL_TIME:g} s of real time: lower the beam current or the live time"
            )
        electrons = electrons_per_second * real
        task = f"an EDS spectrum of {live:.3g} s live time"
        with tem.acquisition(task, Cost(0.0, 64 * readout.channels), beam_on, electrons, real) as taken:
            frame_index = taken.frame_index
            rng = np.random.default_rng([tem.seed, _STREAM_EDS, frame_index])
            expected = per_electron * electrons_per_second * live / segments
            counts = rng.poisson(np.broadcast_to(expected, (segments, readout.channels))).astype(np.uint32)
            knocked_out = 0
            if beam_on and stem_mode:
                damage = np.random.default_rng([tem.seed, _STREAM_EDS_DAMAGE, frame_index])
                hit = displaced(atoms.numbers, electrons * density, energy, tem.sample.crystal.name, damage)
                knocked_out = tem.sample.remove_atoms(atoms[hit])
            elif beam_on:
                knocked_out = irradiate_disk(tem, centre, diameter, electrons / (np.pi * diameter**2 / 4),
                                             energy, frame_index)
        metadata = acquisition_metadata(tem, state, stage, taken, "eds")
        detectors = [{"detector_name": f"{readout.detector.name}{k + 1}", "segment": k + 1,
                      **readout.describe(), "live_time": live, "real_time": real,
                      "input_count_rate": float(rate), "dead_time_fraction": 1 - throughput}
                     for k in range(segments)]
        metadata["detectors"] = {"analytical_detector": detectors}
        metadata["binary_result"] = {"detector": readout.detector.name, "encoding": "uint32",
                                     "segments": segments, "bin_count": readout.channels, "bit_depth": 32}
        metadata["acquisition"] |= {"exposure_time": exposure, "exposure_time_type": kind,
                                    "live_time": live, "real_time": real}
        metadata["optics"] |= {"electrons": electrons, "beam_diameter": diameter if not stem_mode else None,
                               "convergence_angle": state["optics.convergence_angle"] if stem_mode else None}
        metadata["twin"] |= {"beam_centre": {"x": float(centre[0]), "y": float(centre[1])},
                             "atoms_knocked_out": knocked_out, "beam_reaches_detector": beam_on,
                             "specimen_offset": offset.tolist(),
                             "atoms_per_nm2_under_beam": _areal_densities(atoms.numbers, density)}
        return {"data": counts.reshape(-1), "metadata": metadata}

    def under_probe(self, state: State, stage: State, centre: np.ndarray) -> tuple[Any, np.ndarray]:
        """The atoms within the parked probe's reach and the probe's intensity on each (1/m²)."""
        energy, alpha = state["source.acceleration_voltage"], state["optics.convergence_angle"]
        aberrations = self.tem.aberrations(state, stage)
        reach = stem_physics.probe_reach(energy, alpha, aberrations)
        window = Window.around(float(centre[0]), float(centre[1]), 2 * reach, 2 * reach)
        atoms = self.tem.sample.atoms_in_window(window)
        xy = atoms.positions[:, :2] * ANGSTROM + [window.x_min, window.y_min]
        return atoms, probe_on_atoms(xy - centre, energy, alpha, aberrations, reach)

    def _under_broad_beam(self, centre: np.ndarray, diameter: float) -> tuple[Any, np.ndarray]:
        """The atoms in the illuminated disk (or, for a disk wider than :data:`BROAD_BEAM_SIDE`, in
        that square at its centre, standing for the whole) and the beam's density on each (1/m²)."""
        side = min(diameter, BROAD_BEAM_SIDE)
        window = Window.around(float(centre[0]), float(centre[1]), side, side)
        atoms = self.tem.sample.atoms_in_window(window)
        if diameter <= BROAD_BEAM_SIDE:
            xy = atoms.positions[:, :2] * ANGSTROM + [window.x_min, window.y_min]
            atoms = atoms[np.hypot(*(xy - centre).T) <= diameter / 2]
            return atoms, np.full(len(atoms), 1.0 / (np.pi * diameter**2 / 4))
        return atoms, np.full(len(atoms), 1.0 / side**2)

    @staticmethod
    def _expected(numbers: np.ndarray, density: np.ndarray, readout: Readout, energy: float) -> np.ndarray:
        """Expected counts per channel in the whole detector per incident electron."""
        total = np.zeros(readout.channels)
        weight = np.bincount(numbers, density, minlength=1) if len(numbers) else np.zeros(1)
        for z in np.flatnonzero(weight):
            total += weight[z] * readout.per_atom(chemical_symbols[z], energy)
        return total

    # --- spectrum image ----------------------------------------------------------------------------
    def acquire_spectrum_image(self, detector: Any, dispersion: Any, shaping_time: Any, dwell_time: Any,
                               size: Any, scanning_detectors: Any = (), region: Any = None,
                               mode: Any = None) -> dict[str, Any]:
        """A STEM scan recording X-rays at every position (and images from ``scanning_detectors``):
        ``{"pixel": uint32 [events], "channel": uint16 [events], "shape": [rows, columns, channels],
        "metadata": {...}, "images": [...]}``: every recorded count, by pixel (``row * columns +
        column``) and channel, all segments summed. ``dwell_time`` is real time per pixel."""
        tem = self.tem
        readout = self.readout(detector, dispersion, shaping_time)
        state = tem.snapshot()
        self._check_inserted(state, readout)
        recorder = _SpectrumImageRecorder(self, readout)
        self._check_events(state, readout, size, dwell_time, region)
        images, recorded = tem.stem_scan(list(scanning_detectors or ()), size, dwell_time, region, mode,
                                         during=recorder)
        pixel, channel, metadata = recorded
        return {"pixel": pixel, "channel": channel, "shape": [*recorder.shape, readout.channels],
                "metadata": metadata, "images": images}

    def _check_events(self, state: State, readout: Readout, size: Any, dwell_time: Any, region: Any) -> None:
        """Refuse, before anything happens, a spectrum image that would hold more than :data:`MOST_EVENTS`
        counts (estimated from the sample's mean composition)."""
        size = validation.integer("size", size, 16, 4096)
        dwell = validation.real("dwell_time", dwell_time, SHORTEST_DWELL, 1.0, "s")
        _, _, width, height = scan_region(region)
        pixels = max(1, int(size * size * width * height))
        energy = state["source.acceleration_voltage"]
        centre = (0.0, 0.0)
        atoms, density = self._under_broad_beam(np.array(centre), BROAD_BEAM_SIDE * 0.2)
        per_electron = self._expected(atoms.numbers, density, readout, energy).sum()
        expected = per_electron * self.tem.beam_current(state) / constants.e * dwell * pixels
        if expected > MOST_EVENTS:
            raise ValueError(
                f"a spectrum image of {pixels} pixels at dwell_time = {dwell!r} s would record about "
                f"{expected:.3g} counts; allowed at most {MOST_EVENTS:.3g}: use fewer pixels, a shorter "
                "dwell time or less beam current"
            )


class _SpectrumImageRecorder:
    """Records X-rays along a STEM scan: the atoms' probe-weighted densities at every scan position,
    element by element (:func:`twin.physics.stem.probe_weighted_sum`), times each element's spectrum;
    every count drawn as a Poisson event and thinned by the dead time at that pixel's rate."""

    def __init__(self, spectrometer: EdsSpectrometer, readout: Readout) -> None:
        self.spectrometer = spectrometer
        self.readout = readout
        self.name = f"EDS ({readout.detector.name})"
        self.shape: tuple[int, int] = (0, 0)

    def __call__(self, scan: Scan, state: State, stage: State, offset: np.ndarray, dwell_time: float,
                 frame_index: int, beam_on: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        started = datetime.now(timezone.utc)
        tem, readout = self.spectrometer.tem, self.readout
        self.shape = rows, cols = scan.shape
        energy, alpha = state["source.acceleration_voltage"], state["optics.convergence_angle"]
        aberrations = tem.aberrations(state, stage)
        tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
        reach = stem_physics.probe_reach(energy, alpha, aberrations)
        atoms = atoms_in_view(tem.sample, scan.bounding_window(reach), tilt)
        window = atoms.info["window"]
        u, v = scan.to_scan(window["x_min"] + atoms.positions[:, 0] * ANGSTROM,
                            window["y_min"] + atoms.positions[:, 1] * ANGSTROM)
        pu, pv = scan.scan_coordinates()
        origin = (pu[0] - scan.step / 2, pv[0] - scan.step / 2)
        rng = np.random.default_rng([tem.seed, _STREAM_EDS, frame_index])
        electrons = tem.beam_current(state) * dwell_time / constants.e
        counts, spectra = {}, {}
        for z in np.unique(atoms.numbers) if beam_on else ():
            mine = atoms.numbers == z
            density = stem_physics.probe_weighted_sum(
                np.column_stack([u[mine], v[mine]]), np.ones(mine.sum()), origin, scan.step, scan.shape,
                energy, alpha, aberrations)
            spectra[z] = readout.per_atom(chemical_symbols[z], energy)
            counts[z] = np.clip(density, 0.0, None) * spectra[z].sum() * electrons
        total = sum(counts.values()) if counts else np.zeros(scan.shape)
        rate = total / dwell_time / readout.detector.segments
        throughput = xray.paralyzable_throughput(rate, readout.dead_time)
        pixels, channels = [], []
        for z, expected in counts.items():
            n = rng.poisson(expected * throughput).ravel()
            cumulative = np.cumsum(spectra[z])
            pixels.append(np.repeat(np.arange(rows * cols, dtype=np.uint32), n))
            drawn = rng.random(int(n.sum())) * cumulative[-1]
            channels.append(np.searchsorted(cumulative, drawn).astype(np.uint16))
        pixel = np.concatenate(pixels) if pixels else np.zeros(0, np.uint32)
        channel = np.concatenate(channels) if channels else np.zeros(0, np.uint16)
        order = np.argsort(pixel, kind="stable")
        recorded = Exposure(frame_index, None, started, datetime.now(timezone.utc))
        metadata = acquisition_metadata(tem, state, stage, recorded, "eds")
        metadata["detectors"] = {"analytical_detector": [{
            "detector_name": readout.detector.name, **readout.describe(), "dwell_time": dwell_time,
            "mean_dead_time_fraction": float(1 - throughput.mean()),
        }]}
        metadata["binary_result"] = {"detector": readout.detector.name, "encoding": "events",
                                     "image_size": {"x": cols, "y": rows}, "bin_count": readout.channels,
                                     "pixel_size": {"x": scan.step, "y": scan.step}, "pixel_size_unit": "m"}
        metadata["scan_settings"] = {"dwell_time": dwell_time, "scan_size": scan.size,
                                     "frame_time": rows * cols * dwell_time, "scan_rotation": scan.rotation,
                                     "field_of_view": scan.field_of_view}
        metadata["optics"] |= {"convergence_angle": alpha,
                               "electrons_per_pixel": electrons if beam_on else 0.0}
        metadata["twin"] |= {"window": scan.unrotated_window().as_dict(), "scan_rotation": scan.rotation,
                             "scan_centre": {"x": scan.centre[0], "y": scan.centre[1]},
                             "beam_reaches_detector": beam_on, "specimen_offset": offset.tolist()}
        return pixel[order], channel[order], metadata


def probe_on_atoms(offsets: np.ndarray, energy: float, convergence_angle: float, aberrations: Aberrations,
                   reach: float) -> np.ndarray:
    """The probe's intensity (1/m², integrating to 1) at ``offsets`` (N, 2) m from its centre: |probe|²
    on a grid of ``lambda / (8 alpha)`` spanning ``2 reach``, interpolated linearly (zero beyond reach)."""
    step = electron_wavelength(energy) / (8 * convergence_angle)
    half = int(np.ceil(reach / step)) + 1
    n = 2 * half + 1
    intensity = np.fft.fftshift(stem_physics.probe_intensity((n, n), step, energy, convergence_angle,
                                                             aberrations))
    centre = n // 2
    coordinates = [offsets[:, 1] / step + centre, offsets[:, 0] / step + centre]
    values = ndimage.map_coordinates(intensity, coordinates, order=1, mode="constant", cval=0.0)
    return np.where(np.hypot(offsets[:, 0], offsets[:, 1]) <= reach, values, 0.0)


def _areal_densities(numbers: np.ndarray, density: np.ndarray) -> dict[str, float]:
    """Atoms per nm² of each element as the beam sees them: ``sum_i I(r_i)`` over the element's atoms,
    with the beam's intensity ``I`` normalised to one electron (1/m²)."""
    return {chemical_symbols[z]: float(density[numbers == z].sum()) * 1e-18 for z in np.unique(numbers)}
