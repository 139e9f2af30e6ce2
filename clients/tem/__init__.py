"""An AutoScript-TEM-shaped client for the digital twin (SI units: m, rad, s, V, A).

    from clients.tem import TemMicroscopeClient
    from clients.tem.enumerations import CameraType
    from clients.tem.structures import StagePosition

    microscope = TemMicroscopeClient()
    microscope.connect()                      # or connect("host", 9095)
    microscope.specimen.stage.absolute_move(StagePosition(x=1e-6, y=0.0))
    microscope.optics.defocus = -2.4e-9
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 1024, 0.1)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np

from clients._remote import Connection, RemoteSetting, open_proxy
from clients.errors import InvalidState, InvalidValue
from clients.ground_truth import GroundTruth
from clients.tem.enumerations import OpticalMode, OptiStemMethod, ProjectorMode
from clients.tem.spectra import AdornedSpectrum, SpectrumImage
from clients.tem.structures import (
    AdornedImage,
    Aperture,
    CameraAcquisitionSettings,
    CameraLengthData,
    EdsAcquisitionSettings,
    EdsSpectrumImageSettings,
    Limits,
    MagnificationData,
    Point,
    Region,
    RunAutoComaCorrectionSettings,
    RunBeamTiltAutoFocusResults,
    RunBeamTiltAutoFocusSettings,
    RunObjectiveAutoStigmatorResults,
    RunObjectiveAutoStigmatorSettings,
    RunOptiStemResults,
    RunOptiStemSettings,
    RunStemAutoFocusResults,
    RunStemAutoFocusSettings,
    StagePosition,
    StemAcquisitionSettings,
)
from twin.common import wire

__all__ = ["TemMicroscopeClient"]

_AXES = ("x", "y", "z", "a", "b")


class _Node:
    """A branch of the object tree; calls go to the client's TEM proxy."""

    def __init__(self, client: TemMicroscopeClient) -> None:
        self._client = client

    @property
    def _remote(self) -> Any:
        return self._client._remote


def _plain(value: Any) -> Any:
    """Enums as their values and points as ``[x, y]``, for the wire."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Point):
        return [value.x, value.y]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class _PointSetting(RemoteSetting):
    """A remote 2-vector setting read as a :class:`Point` and set from a Point, list or tuple."""

    def __get__(self, owner: Any, _type: type | None = None) -> Any:
        if owner is None:
            return self
        return Point(*getattr(owner, self.via).get(self.name))

    def __set__(self, owner: Any, value: Any) -> None:
        getattr(owner, self.via).set(self.name, _plain(value))


class _EnumSetting(RemoteSetting):
    """A remote setting read as a string enum (which compares equal to its plain string)."""

    def __init__(self, name: str, enum: type[Enum], doc: str = "") -> None:
        super().__init__(name, doc)
        self.enum = enum

    def __get__(self, owner: Any, _type: type | None = None) -> Any:
        if owner is None:
            return self
        return self.enum(owner._remote.get(self.name))

    def __set__(self, owner: Any, value: Any) -> None:
        owner._remote.set(self.name, _plain(value))


class Magnification(_Node):
    """``optics.magnification``: the current entry and the table to choose from (TEM mode)."""

    @property
    def available_values(self) -> list[MagnificationData]:
        return [_magnification(m) for m in self._client._describe()["magnifications"]]

    @property
    def value(self) -> MagnificationData:
        nominal = self._remote.get("optics.magnification")
        return next(m for m in self.available_values if m.nominal == nominal)

    @value.setter
    def value(self, value: MagnificationData | float) -> None:
        nominal = value.nominal if isinstance(value, MagnificationData) else value
        self._remote.set("optics.magnification", nominal)


def _magnification(entry: Mapping[str, float]) -> MagnificationData:
    nominal = entry["nominal"]
    label = f"{nominal / 1e6:g} Mx" if nominal >= 1e6 else f"{nominal / 1e3:g} kx"
    return MagnificationData(nominal=nominal, calibrated=entry["calibrated"], label=label)


class CameraLength(_Node):
    """``optics.camera_length``: the diffraction camera length (m) and the table to choose from."""

    @property
    def available_values(self) -> list[CameraLengthData]:
        return [CameraLengthData(nominal=c, calibrated=c, label=f"{c * 1e3:g} mm")
                for c in self._client._describe()["camera_lengths"]]

    @property
    def value(self) -> CameraLengthData:
        nominal = self._remote.get("optics.camera_length")
        return next(c for c in self.available_values if c.nominal == nominal)

    @value.setter
    def value(self, value: CameraLengthData | float) -> None:
        nominal = value.nominal if isinstance(value, CameraLengthData) else value
        self._remote.set("optics.camera_length", nominal)


class Stigmators(_Node):
    objective_stigmator = _PointSetting("optics.objective_stigmator", "Objective stigmator (≈ −1..1).")


class Deflectors(_Node):
    beam_shift = _PointSetting("optics.beam_shift", "Beam shift (m): moves the beam, or the STEM scan.")
    image_shift = _PointSetting("optics.image_shift", "Image shift (m): moves the imaged area.")
    beam_tilt = _PointSetting("optics.beam_tilt", "Beam tilt (rad): tilts the illumination.")
    image_tilt = _PointSetting("optics.image_tilt", "Diffraction shift (rad): moves the pattern.")
    _NAMES = {"BeamShift": "beam_shift", "ImageShift": "image_shift", "BeamTilt": "beam_tilt",
              "ImageTilt": "image_tilt"}

    def get_available_deflectors(self) -> list[str]:
        """The deflectors the twin's column has (by the names ``get_deflector_value`` takes)."""
        return list(self._NAMES)

    def get_deflector_value(self, name: str) -> Point:
        if name not in self._NAMES:
            raise InvalidValue(f"deflector = {name!r} is not on this microscope; allowed: "
                               f"{', '.join(self._NAMES)}")
        return getattr(self, self._NAMES[name])


class Monochromator(_Node):
    """``optics.monochromator``: its ``focus`` acts as the gun lens, scaling the beam current."""

    focus = RemoteSetting("optics.monochromator_focus", "Gun-lens focus; the current falls as it rises.")


class BeamStopper(_Node):
    @property
    def insertion_state(self) -> str:
        return "Retracted"  # the twin's column has a beam stopper that is never in the way


class ApertureMechanism(_Node):
    """One motorised aperture mechanism: list its ``apertures``, select one (``aperture = ...``, which
    inserts the mechanism), insert/retract it, enable/disable it. ``position`` is the selected
    aperture's alignment preset (m); the twin's apertures stay centred on the axis whatever it reads."""

    def __init__(self, client: TemMicroscopeClient, entry: Mapping[str, Any]) -> None:
        super().__init__(client)
        self._entry = entry
        self.name = entry["name"]
        self._prefix = f"apertures.{self.name}"

    @property
    def apertures(self) -> list[Aperture]:
        return [Aperture(a["name"], "Circular", a["diameter"]) for a in self._entry["apertures"]]

    @property
    def aperture(self) -> Aperture | None:
        """The selected aperture, None while the mechanism is retracted."""
        if not self._remote.get(f"{self._prefix}.inserted"):
            return None
        name = self._remote.get(f"{self._prefix}.aperture")
        return next(a for a in self.apertures if a.name == name)

    @aperture.setter
    def aperture(self, aperture: Aperture | str) -> None:
        self._remote.set(f"{self._prefix}.aperture", getattr(aperture, "name", aperture))

    @property
    def insertion_state(self) -> str:
        self._require_enabled()
        return "Inserted" if self._remote.get(f"{self._prefix}.inserted") else "Retracted"

    @property
    def is_enabled(self) -> bool:
        return self._remote.get(f"{self._prefix}.enabled")

    @property
    def is_retractable(self) -> bool:
        return bool(self._entry["retractable"])

    def enable(self) -> None:
        self._remote.set(f"{self._prefix}.enabled", True)

    def disable(self) -> None:
        self._remote.set(f"{self._prefix}.enabled", False)

    def insert(self) -> None:
        self._remote.set(f"{self._prefix}.inserted", True)

    def retract(self) -> None:
        self._remote.set(f"{self._prefix}.inserted", False)

    @property
    def position(self) -> Point | None:
        self._require_enabled()
        if not self._remote.get(f"{self._prefix}.inserted"):
            return None
        return Point(*self._remote.get(f"{self._prefix}.position"))

    @position.setter
    def position(self, value: Any) -> None:
        self._remote.set(f"{self._prefix}.position", [float(v) for v in value])

    def reset_positions(self) -> None:
        self._remote.set(f"{self._prefix}.position", [0.0, 0.0])

    def _require_enabled(self) -> None:
        if not self.is_enabled:
            raise InvalidState(f"aperture mechanism {self.name} is disabled; enable() it first")


class ApertureMechanisms(_Node):
    """``optics.aperture_mechanisms``: the motorised apertures this column has."""

    def get_available(self) -> list[str]:
        return [m["name"] for m in self._client._describe()["aperture_mechanisms"]]

    def get_mechanism(self, mechanism_type: Any) -> ApertureMechanism:
        entries = self._client._describe()["aperture_mechanisms"]
        for entry in entries:
            if entry["name"] == _plain(mechanism_type):
                return ApertureMechanism(self._client, entry)
        raise InvalidValue(f"aperture mechanism = {_plain(mechanism_type)!r} is not on this microscope; "
                           f"allowed: {', '.join(repr(e['name']) for e in entries)}")

    @property
    def C1(self) -> ApertureMechanism:
        return self.get_mechanism("C1")

    @property
    def C2(self) -> ApertureMechanism:
        return self.get_mechanism("C2")

    @property
    def C3(self) -> ApertureMechanism:
        return self.get_mechanism("C3")

    @property
    def objective(self) -> ApertureMechanism:
        return self.get_mechanism("Objective")

    @property
    def SA(self) -> ApertureMechanism:
        return self.get_mechanism("SA")


class Blanker(_Node):
    def blank(self) -> None:
        self._remote.set("optics.beam_blanked", True)

    def unblank(self) -> None:
        self._remote.set("optics.beam_blanked", False)

    @property
    def is_beam_blanked(self) -> bool:
        return self._remote.get("optics.beam_blanked")


class _Focus(_Node):
    """One focusing control: ``focus`` and ``defocus`` (m), as ``optics.focus``/``optics.defocus``."""

    focus = RemoteSetting("optics.focus", "Objective focus (m).")
    defocus = RemoteSetting("optics.defocus", "Objective defocus (m); negative is underfocus.")


class _CondenserFocus(_Node):
    """``focusing.stem.intensity``: probe focus by the condenser, which the twin does not model."""

    def _refuse(self) -> None:
        raise InvalidState("focusing.stem.intensity is not simulated: the twin focuses the probe with the "
                           "objective; use optics.focusing.stem.objective (or optics.defocus)")

    @property
    def focus(self) -> float:
        self._refuse()
        return 0.0

    @focus.setter
    def focus(self, value: float) -> None:
        self._refuse()

    defocus = focus


class _StemFocusing(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.objective = _Focus(client)
        self.intensity = _CondenserFocus(client)


class Focusing(_Node):
    """``optics.focusing`` (AutoScript 1.18): ``tem.focus/.defocus``, ``stem.objective.focus/.defocus``;
    the same objective lens in either mode."""

    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.tem = _Focus(client)
        self.stem = _StemFocusing(client)


class Optics(_Node):
    optical_mode = _EnumSetting("optics.optical_mode", OpticalMode, "OpticalMode.TEM or .STEM.")
    projector_mode = _EnumSetting("optics.projector_mode", ProjectorMode, "IMAGING or DIFFRACTION.")
    defocus = RemoteSetting("optics.defocus", "Objective defocus (m); negative is underfocus.")
    focus = RemoteSetting("optics.focus", "Objective focus (m); defocus is relative to reset_defocus().")
    scan_field_of_view = RemoteSetting("optics.scan_field_of_view", "STEM scan width (m).")
    scan_rotation = RemoteSetting("optics.scan_rotation", "STEM scan rotation (rad).")
    spot_size_index = RemoteSetting("optics.spot_size_index", "Spot size (1 = most current).")
    convergence_angle = RemoteSetting("optics.convergence_angle", "STEM probe semi-angle (rad).")
    intensity = RemoteSetting("optics.intensity", "C2 lens excitation (0..1): the TEM beam's crossover at "
                                                  "0.45, spread wider away from it.")
    paused_scan_beam_position = _PointSetting("optics.paused_scan_beam_position",
                                              "Parked STEM probe, as fractions (0..1) of the scan area.")

    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.magnification = Magnification(client)
        self.stigmators = Stigmators(client)
        self.deflectors = Deflectors(client)
        self.blanker = Blanker(client)
        self.focusing = Focusing(client)
        self.monochromator = Monochromator(client)
        self.beam_stopper = BeamStopper(client)
        self.aperture_mechanisms = ApertureMechanisms(client)
        self._camera_length = CameraLength(client)

    # the column's fixed configuration: a plain high-tension, non-EFTEM, two-condenser column
    is_accelerator_on = True
    is_eftem_on = False
    objective_lens_mode = "HM"

    @property
    def probe_mode(self) -> str:
        """Nanoprobe in STEM (a focused probe), microprobe in TEM (a parallel beam)."""
        return "Nanoprobe" if self.optical_mode == OpticalMode.STEM else "Microprobe"

    @property
    def illumination_mode(self) -> str:
        return "Probe" if self.optical_mode == OpticalMode.STEM else "Parallel"

    @property
    def acceleration_voltage(self) -> AccelerationVoltage:
        """The high tension (V) where AutoScript before 1.21 kept it; the same as ``source``'s."""
        return self._client.source.acceleration_voltage

    @acceleration_voltage.setter
    def acceleration_voltage(self, volts: float) -> None:
        self._client.source.acceleration_voltage = volts

    @property
    def camera_length(self) -> CameraLength:
        return self._camera_length

    @camera_length.setter
    def camera_length(self, value: CameraLengthData | float) -> None:
        self._camera_length.value = value

    def reset_defocus(self) -> None:
        """Make the present focus read as zero defocus."""
        self._remote.reset_defocus()

    @property
    def field_of_view(self) -> float:
        """Side (m) of the square area the camera sees at the current magnification (twin extra)."""
        return self._remote.field_of_view()

    # the pre-1.18 blanker API, kept as the instrument keeps it
    def blank(self) -> None:
        _moved("optics.blank()", "optics.blanker.blank()")
        self.blanker.blank()

    def unblank(self) -> None:
        _moved("optics.unblank()", "optics.blanker.unblank()")
        self.blanker.unblank()

    @property
    def is_beam_blanked(self) -> bool:
        _moved("optics.is_beam_blanked", "optics.blanker.is_beam_blanked")
        return self.blanker.is_beam_blanked


def _moved(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


class AccelerationVoltage(_Node):
    """``source.acceleration_voltage``: ``.value`` (V) and ``.limits``."""

    @property
    def value(self) -> float:
        return self._remote.get("source.acceleration_voltage")

    @value.setter
    def value(self, volts: float) -> None:
        self._remote.set("source.acceleration_voltage", volts)

    @property
    def limits(self) -> Limits:
        settings = self._client._describe()["settings"]
        entry = next(s for s in settings if s["name"] == "source.acceleration_voltage")
        return Limits(entry["min"], entry["max"])

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"AccelerationVoltage(value={self.value!r})"


class FieldEmissionGun(_Node):
    """``source.field_emission_gun``: a cold FEG whose emission falls after each flash."""

    @property
    def is_flashing_advised(self) -> bool:
        return self._remote.gun()["is_flashing_advised"]

    @property
    def emission(self) -> float:
        """The emission relative to just after a flash (twin extra)."""
        return self._remote.gun()["emission"]

    def flash(self) -> None:
        """Flash the tip: the emission is back to full (a few seconds of instrument time)."""
        self._remote.flash_gun()


class Source(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self._acceleration_voltage = AccelerationVoltage(client)
        self.field_emission_gun = FieldEmissionGun(client)

    @property
    def acceleration_voltage(self) -> AccelerationVoltage:
        return self._acceleration_voltage

    @acceleration_voltage.setter
    def acceleration_voltage(self, volts: float) -> None:
        self._acceleration_voltage.value = volts


class Stage(_Node):
    """``specimen.stage``: x, y, z in m and tilts a, b in rad (``b`` is None on a single-tilt holder)."""

    @property
    def position(self) -> StagePosition:
        return StagePosition(**self._remote.stage_position())

    @property
    def is_moving(self) -> bool:
        return self._remote.stage_is_moving()

    def absolute_move(self, position: Any) -> None:
        """Move to ``position`` (StagePosition, list, tuple or array); ``None`` axes stay."""
        self._remote.move_stage(_axes(position), False, False)

    def relative_move(self, position: Any) -> None:
        """Move by ``position``; ``None`` axes stay."""
        self._remote.move_stage(_axes(position), True, False)

    def absolute_move_safe(self, position: Any) -> None:
        """Like :meth:`absolute_move`, tilting to zero before translating (slower, never touches)."""
        self._remote.move_stage(_axes(position), False, True)

    def relative_move_safe(self, position: Any) -> None:
        self._remote.move_stage(_axes(position), True, True)

    def start_jogging(self, velocity: Any) -> None:
        """Move continuously at ``velocity`` (a StageVelocity: m/s for x, y, z; rad/s for a, b) until
        :meth:`stop_jogging`; ``position`` and every image follow the jog in instrument time."""
        self._remote.start_jogging(_axes(velocity))

    def stop_jogging(self) -> None:
        self._remote.stop_jogging()

    def get_axis_limits(self, axis: str) -> Limits:
        return Limits(*self._remote.stage_limits(axis))

    def get_holder_type(self) -> str:
        return self._client._describe()["holder_type"]


def _axes(position: Any) -> dict[str, Any]:
    if isinstance(position, Mapping):
        return dict(position)
    if isinstance(position, np.ndarray):
        position = position.tolist()
    if isinstance(position, (StagePosition, Sequence)) and not isinstance(position, str):
        values = list(position)
        if len(values) > len(_AXES):
            raise ValueError(f"position has {len(values)} values; allowed at most 5 (x, y, z, a, b)")
        return {axis: value for axis, value in zip(_AXES, values, strict=False) if value is not None}
    raise TypeError(f"position must be a StagePosition, list or tuple, got {position!r}")


class PiezoStage(_Node):
    """``specimen.piezo_stage``: the twin's holders have no piezo stage. It reads as disabled and never
    moving; everything that would move it says so."""

    is_enabled = False
    is_moving = False

    def _refuse(self, *_: Any) -> None:
        raise InvalidState("the twin's specimen holder has no piezo stage; use specimen.stage (its "
                           "start_jogging moves continuously)")

    enable = disable = start_jogging = stop = stop_jogging = _refuse
    absolute_move = relative_move = _refuse


class Specimen(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.stage = Stage(client)
        self.piezo_stage = PiezoStage(client)


class Acquisition(_Node):
    def acquire_camera_image(self, camera_detector: Any, size: Any, exposure_time: float) -> AdornedImage:
        """A camera image of ``size``² pixels exposed for ``exposure_time`` s."""
        reply = self._remote.acquire_camera_image(_plain(camera_detector), _plain(size), exposure_time)
        return AdornedImage(reply["data"], reply["metadata"])

    def acquire_camera_image_advanced(self, settings: CameraAcquisitionSettings) -> AdornedImage:
        """A camera image as ``settings`` say: a readout area of the sensor, ``frame_combining`` frames of
        ``exposure_time`` summed (the twin takes them as one exposure of the summed time)."""
        frames = settings.frame_combining
        if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= 1000:
            raise InvalidValue(f"frame_combining = {frames!r} is out of range; allowed 1 to 1000")
        reply = self._remote.acquire_camera_image(_plain(settings.camera_detector), _plain(settings.size),
                                                  settings.exposure_time * frames,
                                                  _plain(settings.fixed_readout_area))
        return AdornedImage(reply["data"], reply["metadata"])

    def acquire_stem_image(self, scanning_detector: Any, size: Any, dwell_time: float,
                           mode: str | None = None) -> AdornedImage:
        """A ``size``² STEM image from one detector, ``dwell_time`` s per pixel (STEM mode).
        ``mode`` (twin only): ``"interactive"``, ``"exact"`` or ``"prism"`` for this request."""
        replies = self._remote.acquire_stem_images([_plain(scanning_detector)], _plain(size), dwell_time,
                                                   None, mode)
        return AdornedImage(replies[0]["data"], replies[0]["metadata"])

    def acquire_stem_images_advanced(self, settings: StemAcquisitionSettings) -> list[AdornedImage]:
        """One scan read by every detector in ``settings.detector_types``, images in that order."""
        if settings.detector_segments is not None:
            raise ValueError(f"detector_segments = {settings.detector_segments!r}: the twin's detectors are "
                             "not segmented; allowed: None")
        pixels = settings.region is not None and _plain(settings.region.coordinate_system) == "Pixels"
        replies = self._remote.acquire_stem_images(
            [_plain(d) for d in settings.detector_types], FULL_FRAME if pixels else _plain(settings.size),
            settings.dwell_time, _rectangle(settings.region), settings.mode,
        )
        return [AdornedImage(r["data"], r["metadata"]) for r in replies]


FULL_FRAME = 4096  # pixels of the scan generator's full frame: what a PIXELS region counts in


def _rectangle(region: Region | None) -> list[float] | None:
    """A region as (left, top, width, height) fractions of the scan field."""
    if region is None:
        return None
    system = _plain(region.coordinate_system)
    if system not in ("Relative", "Pixels"):
        raise InvalidValue(f"region coordinate system = {region.coordinate_system!r} is not allowed; "
                           "allowed: 'Relative', 'Pixels'")
    r = region.rectangle
    left, top, width, height = (r.left, r.top, r.width, r.height) if not isinstance(r, (list, tuple)) else r
    scale = FULL_FRAME if system == "Pixels" else 1
    return [left / scale, top / scale, width / scale, height / scale]


class AutoFunctions(_Node):
    """Image-based alignment routines: they acquire images, as the instrument's do."""

    def run_stem_auto_focus(self, settings: Any = None, size: Any = None, dwell_time: Any = None,
                            auto_stigmate: bool = False, reset_beam_blanker_afterwards: bool = False,
                            ) -> RunStemAutoFocusResults:
        """Focus (and stigmate) the probe; pass a RunStemAutoFocusSettings or (detector, size, dwell, ...)."""
        if not isinstance(settings, RunStemAutoFocusSettings):
            settings = RunStemAutoFocusSettings(settings or "HAADF", size or 1024, dwell_time or 1e-6,
                                                auto_stigmate, None, reset_beam_blanker_afterwards)
        reply = self._remote.run_auto_function(
            "stem_auto_focus", {"detector": _plain(settings.scanning_detector), "size": settings.size,
                                "dwell_time": settings.dwell_time, "auto_stigmate": settings.auto_stigmate},
            settings.reset_beam_blanker_afterwards,
        )
        return RunStemAutoFocusResults(reply["defocus"], Point(*reply["astigmatism"]))

    def run_opti_stem(self, settings: RunOptiStemSettings) -> RunOptiStemResults:
        """OptiSTEM: ``C1`` focuses, ``C1_A1`` focuses and stigmates (a through-focus series of HAADF
        scans, as the STEM autofocus takes); ``B2_A2`` would correct axial coma and three-fold
        astigmatism, which the twin's column does not have: it refines focus only and reports both zero."""
        method = _plain(settings.method)
        allowed = [m.value for m in OptiStemMethod]
        if method not in allowed:
            raise InvalidValue(f"method = {settings.method!r} is not allowed; allowed: {', '.join(allowed)}")
        found = self.run_stem_auto_focus(RunStemAutoFocusSettings(
            "HAADF", settings.size, settings.dwell_time, auto_stigmate=method == "C1A1"))
        return RunOptiStemResults(found.defocus, found.astigmatism, Point(0.0, 0.0), Point(0.0, 0.0))

    def run_auto_coma_correction(self, settings: RunAutoComaCorrectionSettings) -> None:
        """Needs the probe corrector's tableau and correction hardware, which the twin does not simulate
        (its column has no axial coma: only a residual Cs)."""
        raise InvalidState("auto coma correction needs an aberration corrector, which the twin does not "
                           "simulate; its column has no coma to correct (residual Cs only)")

    def run_beam_tilt_auto_focus(self, settings: RunBeamTiltAutoFocusSettings) -> RunBeamTiltAutoFocusResults:
        reply = self._remote.run_auto_function("beam_tilt_auto_focus", {
            "camera": _plain(settings.camera_detector), "size": settings.size,
            "exposure_time": settings.exposure_time, "auto_stigmate": settings.auto_stigmate,
            "maximum_focus_change": settings.maximum_focus_change,
            "maximum_iterations": settings.maximum_iterations,
        })
        return RunBeamTiltAutoFocusResults(reply["defocus"], Point(*reply["astigmatism"]),
                                           Point(*reply["drift"]))

    def run_objective_auto_stigmator(self, settings: RunObjectiveAutoStigmatorSettings,
                                     ) -> RunObjectiveAutoStigmatorResults:
        reply = self._remote.run_auto_function("objective_auto_stigmator", {
            "camera": _plain(settings.camera_detector), "size": settings.size,
            "exposure_time": settings.exposure_time, "maximum_iterations": settings.maximum_iterations,
        })
        return RunObjectiveAutoStigmatorResults(
            Point(*reply["astigmatism"]), reply["astigmatism_orientation"], reply["astigmatism_fit_error"],
            reply["is_reliable"],
        )


class _Detector(_Node):
    """A camera or a scanning detector: name, insertion and what it records."""

    def __init__(self, client: TemMicroscopeClient, entry: Mapping[str, Any]) -> None:
        super().__init__(client)
        self._entry = entry
        self.name = self.display_name = entry["name"]
        self.is_insertable = entry["retractable"]

    @property
    def insertion_state(self) -> str:
        return "Inserted" if self._remote.get(f"detectors.{self.name}.inserted") else "Retracted"

    def insert(self) -> None:
        self._remote.set(f"detectors.{self.name}.inserted", True)

    def retract(self) -> None:
        self._remote.set(f"detectors.{self.name}.inserted", False)


class CameraDetector(_Detector):
    @property
    def pixel_size(self) -> Point:
        """The sensor's pixel pitch (m)."""
        return Point(self._entry["pitch"], self._entry["pitch"])

    @property
    def exposure_time_limits(self) -> Limits:
        """The shortest and longest exposure (s) the camera takes."""
        return Limits(*self._entry["exposure_time_limits"])


class EdsDetector(_Detector):
    """An EDS detector: its read-outs (channel counts, dispersions in eV per channel, shaping times in s)."""

    @property
    def bin_counts(self) -> list[int]:
        return list(self._entry["bin_counts"])

    @property
    def dispersions(self) -> list[float]:
        return list(self._entry["dispersions"])

    @property
    def shaping_times(self) -> list[float]:
        return list(self._entry["shaping_times"])

    @property
    def exposure_time_limits(self) -> Limits:
        return Limits(*self._entry["exposure_time_limits"])


class ScanningDetector(_Detector):
    @property
    def collection_angle_limits(self) -> Limits:
        """The scattering angles (rad) the detector collects."""
        return Limits(self._entry["inner"], self._entry["outer"])


class Screen(_Node):
    @property
    def position(self) -> str:
        return "Inserted" if self._remote.get("detectors.screen_inserted") else "Retracted"

    def insert(self) -> None:
        self._remote.set("detectors.screen_inserted", True)

    def retract(self) -> None:
        self._remote.set("detectors.screen_inserted", False)

    def measure_current(self) -> float:
        """The beam current reaching the screen (A)."""
        return self._remote.screen_current()


class Detectors(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.screen = Screen(client)

    @property
    def camera_detectors(self) -> list[str]:
        return [c["name"] for c in self._client._describe()["cameras"]]

    @property
    def scanning_detectors(self) -> list[str]:
        return [d["name"] for d in self._client._describe()["scanning_detectors"]]

    def get_camera_detector(self, camera_type: Any) -> CameraDetector:
        return CameraDetector(self._client, self._find("cameras", camera_type))

    def get_scanning_detector(self, detector_type: Any) -> ScanningDetector:
        return ScanningDetector(self._client, self._find("scanning_detectors", detector_type))

    @property
    def eds_detectors(self) -> list[str]:
        return [d["name"] for d in self._client._describe()["eds_detectors"]]

    def get_eds_detector(self, detector_type: Any) -> EdsDetector:
        return EdsDetector(self._client, self._find("eds_detectors", detector_type))

    def _find(self, kind: str, name: Any) -> Mapping[str, Any]:
        entries = self._client._describe()[kind]
        for entry in entries:
            if entry["name"] == _plain(name):
                return entry
        known = ", ".join(repr(e["name"]) for e in entries)
        raise ValueError(f"detector = {_plain(name)!r} is not on this microscope; allowed: {known}")


class Eds(_Node):
    """EDS acquisitions: a spectrum where the beam is (the parked probe in STEM, the illuminated area in
    TEM) and spectrum images along a STEM scan."""

    def acquire_spectrum(self, settings: EdsAcquisitionSettings) -> AdornedSpectrum:
        """A spectrum as ``settings`` say; ``data`` is the detector segments' spectra one after another."""
        _require(settings, ("eds_detector", "dispersion", "shaping_time", "exposure_time"))
        if settings.detector_segments is not None:
            raise InvalidValue(f"detector_segments = {settings.detector_segments!r}: the twin reads every "
                               "segment; allowed: None")
        reply = self._remote.acquire_eds_spectrum(_plain(settings.eds_detector), settings.dispersion,
                                                  settings.shaping_time, settings.exposure_time,
                                                  _plain(settings.exposure_time_type))
        return AdornedSpectrum(reply["data"], reply["metadata"])

    def acquire_spectrum_image(self, settings: EdsSpectrumImageSettings) -> SpectrumImage:
        """A spectrum image as ``settings`` say, with the images of ``settings.scanning_detectors``."""
        _require(settings, ("eds_detector", "dispersion", "shaping_time", "dwell_time"))
        if settings.detector_segments is not None:
            raise InvalidValue(f"detector_segments = {settings.detector_segments!r}: the twin reads every "
                               "segment; allowed: None")
        pixels = settings.region is not None and _plain(settings.region.coordinate_system) == "Pixels"
        reply = self._remote.acquire_eds_spectrum_image(
            _plain(settings.eds_detector), settings.dispersion, settings.shaping_time, settings.dwell_time,
            FULL_FRAME if pixels else _plain(settings.size), [_plain(d) for d in settings.scanning_detectors],
            _rectangle(settings.region), settings.mode,
        )
        images = [AdornedImage(r["data"], r["metadata"]) for r in reply["images"]]
        return SpectrumImage(reply["pixel"], reply["channel"], reply["shape"], reply["metadata"], images)


def _require(settings: Any, fields: Sequence[str]) -> None:
    for name in fields:
        if getattr(settings, name) is None:
            raise InvalidValue(f"{type(settings).__name__}.{name} is not set; set it before acquiring")


class Analysis(_Node):
    """Analytical acquisitions: ``eds`` (and the older ``acquire_eds_spectrum``)."""

    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.eds = Eds(client)

    def acquire_eds_spectrum(self, settings: EdsAcquisitionSettings) -> AdornedSpectrum:
        """The place of :meth:`Eds.acquire_spectrum` in AutoScript releases before ``analysis.eds``."""
        return self.eds.acquire_spectrum(settings)


class ColumnValves(_Node):
    def open(self) -> None:
        self._remote.set("vacuum.column_valves_open", True)

    def close(self) -> None:
        self._remote.set("vacuum.column_valves_open", False)

    @property
    def state(self) -> str:
        return "Opened" if self._remote.get("vacuum.column_valves_open") else "Closed"


class Vacuum(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.column_valves = ColumnValves(client)

    @property
    def state(self) -> str:
        return "Ready"


class _System(_Node):
    @property
    def name(self) -> str:
        return self._client._describe()["system"]["name"]

    @property
    def version(self) -> str:
        return self._client._describe()["system"]["version"]

    @property
    def serial_number(self) -> str:
        return self._client._describe()["system"]["serial_number"]


class _Versioned:
    def __init__(self, version: str) -> None:
        self.version = version


class _AutoScript(_Node):
    """``service.autoscript``: the server's and this client's versions (the twin's own)."""

    @property
    def server(self) -> _Versioned:
        return _Versioned(self._client._describe()["system"]["version"])

    @property
    def client(self) -> _Versioned:
        from twin import __version__

        return _Versioned(__version__)


class Service(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.system = _System(client)
        self.autoscript = _AutoScript(client)


class TemTwin(GroundTruth):
    """Ground truth plus the column's hidden state, which a real microscope would not let you set."""

    focus_offset = RemoteSetting("twin.focus_offset", "Focus (m) at which C10 = 0.", via="_tem")
    objective_astigmatism = _PointSetting("twin.objective_astigmatism",
                                          "The column's own astigmatism (C12a, C12b), m.", via="_tem")
    stage_errors = RemoteSetting("twin.stage_errors", "Stage error and backlash on/off.", via="_tem")
    drift = RemoteSetting("twin.drift", "Specimen drift on/off.", via="_tem")

    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(lambda: client._connected[wire.SAMPLE_OBJECT])
        self._client = client

    @property
    def _tem(self) -> Any:
        return self._client._remote

    def progress(self) -> dict[str, Any] | None:
        """The acquisition running on this microscope now (``task``, ``fraction`` done, ``elapsed`` and
        ``seconds_left`` s, the estimate), or None; asks over a connection of its own, so another
        thread may call it while an acquisition blocks."""
        connection = self._client._connected
        proxy = open_proxy(wire.TEM_OBJECT, connection.host, connection.port, connection.instance)
        try:
            return proxy.progress()
        finally:
            proxy._pyroRelease()


class TemMicroscopeClient:
    """The microscope: connect, then use ``optics``, ``source``, ``specimen.stage``, ``acquisition``,
    ``detectors``, ``vacuum`` and ``service`` as on the instrument. ``twin`` reads and sets what only
    a digital twin can: the sample's ground truth and the column's hidden state.
    """

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._description: dict[str, Any] | None = None
        self.server_host: str | None = None
        self.optics = Optics(self)
        self.source = Source(self)
        self.specimen = Specimen(self)
        self.acquisition = Acquisition(self)
        self.detectors = Detectors(self)
        self.vacuum = Vacuum(self)
        self.service = Service(self)
        self.auto_functions = AutoFunctions(self)
        self.analysis = Analysis(self)
        self.twin = TemTwin(self)

    def connect(self, host: str | None = None, port: int | None = None, instance: str | None = None) -> None:
        """Connect to the twin at ``host:port`` (default: the local server on port 9095); ``instance``:
        your twin's name or token on a server hosting several (default: $TWIN_INSTANCE or the only one)."""
        self.disconnect()
        connection = Connection(host, port, instance)
        connection[wire.TEM_OBJECT]  # fail now, not at the first call, if nothing listens there
        self._connection = connection
        self.server_host = connection.host

    def disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._description = None

    @property
    def _connected(self) -> Connection:
        if self._connection is None:
            raise ConnectionError("not connected; call connect(host, port) first")
        return self._connection

    @property
    def _remote(self) -> Any:
        return self._connected[wire.TEM_OBJECT]

    def _describe(self) -> dict[str, Any]:
        if self._description is None:
            self._description = self._remote.describe()
        return self._description
