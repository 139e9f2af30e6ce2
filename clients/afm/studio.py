"""The Studio scripting interface (Nanosurf Studio v17 and later) over the twin's AFM: the same
instrument as the classic ``SPM`` object, reached through ``Studio().select_measurement_session()``
and its ``workflow`` (device, laser, probe, frequency sweep, approach, imaging, data storage, z
control, modes). Blocking actions return a dictionary with a ``'message'``, as Studio's do. Only what
scripts use is here; the rest raises AttributeError naming what exists."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np

from clients.afm.classic import SPM
from twin.common import afm_vocabulary as vocabulary

_POLL = 0.05  # s between looks at a motion or scan in progress


class _Mapped:
    """A Studio property backed by one of the instrument's settings, converted both ways."""

    def __init__(self, setting: str, to_twin: Any = None, from_twin: Any = None, unit: str = "") -> None:
        self.setting, self.unit = setting, unit
        self.to_twin = to_twin or (lambda v: v)
        self.from_twin = from_twin or (lambda v: v)

    def __set_name__(self, owner: type, name: str) -> None:
        setattr(owner, f"{name}_unit", self.unit)

    def __get__(self, node: Any, _type: type | None = None) -> Any:
        return self if node is None else self.from_twin(node._spm._remote.get(self.setting))

    def __set__(self, node: Any, value: Any) -> None:
        node._spm._remote.set(self.setting, self.to_twin(value))


class _Node:
    def __init__(self, spm: SPM) -> None:
        self._spm = spm

    @property
    def _app(self) -> Any:
        return self._spm.application

    def __getattr__(self, name: str) -> Any:
        """``<property>_min`` and ``<property>_max``: the range of a mapped property, as Studio offers."""
        stem, _, bound = name.rpartition("_")
        mapped = getattr(type(self), stem, None)
        if bound in ("min", "max") and isinstance(mapped, _Mapped):
            entry = next(s for s in self._spm._describe()["settings"] if s["name"] == mapped.setting)
            limits = sorted(mapped.from_twin(entry[k]) for k in ("min", "max"))
            return limits[0] if bound == "min" else limits[1]
        raise AttributeError(f"{type(self).__name__} has no {name!r}")


def _done(message: str) -> dict[str, Any]:
    return {"message": message, "result": True}


class _Named(_Node):
    def __init__(self, spm: SPM, name: str, serial: str) -> None:
        super().__init__(spm)
        self.name, self.serial_number = name, serial


class Device(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.scan_head = _Named(spm, "Twin scan head", "TWIN-SH-0001")
        self.controller = _Named(spm, "Twin controller", "TWIN-CTRL-0001")


class _Alignment(_Node):
    def align_all(self) -> dict[str, Any]:
        return _done("laser, detector and focus aligned (the twin's optics are aligned by construction)")

    align_readout = align_cleandrive = optimize_focus = center_detector = align_all


class Laser(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.alignment = _Alignment(spm)
        self.readout = _Named(spm, "readout laser", "")
        self.readout.enabled, self.readout.power = True, 1e-3  # W


class _Enum:
    def __init__(self, **members: int) -> None:
        self.__dict__.update(members)

    def __iter__(self) -> Any:
        return iter(self.__dict__)


class FrequencySweep(_Node):
    """``probe.frequency_sweep``: drive the free cantilever over a band and find its resonance.
    After ``run()``, ``new_excitation_frequency`` is the peak and ``frequencies``, ``amplitude`` (V) and
    ``phase`` (deg) hold the curve."""

    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.sweep_frequency_lower_bound, self.sweep_frequency_upper_bound = 150e3, 250e3  # Hz
        self.sweep_frequency_step = 50.0  # Hz
        self.excitation_amplitude_piezo = 0.2  # V
        self.new_excitation_frequency: float | None = None
        self.frequencies = self.amplitude = self.phase = np.zeros(0)

    def run(self) -> dict[str, Any]:
        reply = self._spm._remote.frequency_sweep(self.sweep_frequency_lower_bound,
                                                  self.sweep_frequency_upper_bound,
                                                  self.sweep_frequency_step, self.excitation_amplitude_piezo)
        self.frequencies, self.amplitude, self.phase = (np.asarray(reply[k]) for k in
                                                        ("frequency", "amplitude", "phase"))
        self.new_excitation_frequency = float(self.frequencies[np.argmax(self.amplitude)])
        return _done(f"resonance at {self.new_excitation_frequency:.6g} Hz")


class CantileverCalibration(_Node):
    """A thermal tune in Studio; here a frequency sweep around the lever's resonance finds it."""

    operation_mode_enum = _Enum(non_contact=0, contact=1)

    def __init__(self, spm: SPM, sweep: FrequencySweep) -> None:
        super().__init__(spm)
        self.operation_mode = self.operation_mode_enum.non_contact
        self.wavemode_calibration_enabled = False
        self._sweep = sweep

    def run(self) -> dict[str, Any]:
        return self._sweep.run()

    def apply(self) -> dict[str, Any]:
        return _done("calibration applied")


class Probe(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.frequency_sweep = FrequencySweep(spm)
        self.cantilever_calibration = CantileverCalibration(spm, self.frequency_sweep)
        self.selected_probe = "twin-cantilever"
        self.current_deflection_sensitivity, self.current_deflection_sensitivity_unit = 50e-9, "m/V"
        self.current_spring_constant, self.current_spring_constant_unit = 0.2, "N/m"


class Approach(_Node):
    def approach(self) -> dict[str, Any]:
        self._app.Approach.StartApproach()
        while self._app.Approach.IsMoving:
            time.sleep(_POLL)
        status = self._app.Approach.Status
        if status != vocabulary.ApproachStatus.ApproachDone:
            raise RuntimeError(f"the approach ended with status {status}")
        return _done("approach done")

    def withdraw(self) -> dict[str, Any]:
        self._app.Approach.StartWithdraw()
        while self._app.Approach.IsMoving:
            time.sleep(_POLL)
        return _done("withdrawn")


class Imaging(_Node):
    scan_range_fast_axis = _Mapped("Scan.ImageWidth", unit="m")
    scan_range_slow_axis = _Mapped("Scan.ImageHeight", unit="m")
    points_per_line = _Mapped("Scan.Points")
    lines_per_frame = _Mapped("Scan.Lines")
    line_rate = _Mapped("Scan.Scantime", lambda hz: 1.0 / hz, lambda s: 1.0 / s, unit="Hz")
    rotation = _Mapped("Scan.Rotation", unit="deg")
    frame_center_offset_x = _Mapped("Scan.CenterPosX", unit="m")
    frame_center_offset_y = _Mapped("Scan.CenterPosY", unit="m")

    def acquire(self) -> dict[str, Any]:
        """Scan one frame and save it to the gallery; blocks until the files are written."""
        scan = self._app.Scan
        scan.StartFrameUp()
        while scan.IsScanning:
            time.sleep(_POLL)
        return _done(f"frame saved: {', '.join(scan.StartCapture())}")

    def start(self) -> dict[str, Any]:
        self._app.Scan.StartFrameUp()
        return _done("imaging started")

    def stop(self) -> dict[str, Any]:
        self._app.Scan.Stop()
        return _done("imaging stopped")


class _Storage(_Node):
    """``data.storage``: ``file_basename`` may hold [DATE], [TIME] and [INDEX]."""

    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self._basename = "[INDEX]"
        self.save_partial_measurements = True

    @property
    def file_basename(self) -> str:
        return self._basename

    @file_basename.setter
    def file_basename(self, value: str) -> None:
        now = datetime.now()
        mask = value.replace("[DATE]", now.strftime("%Y%m%d")).replace("[TIME]", now.strftime("%H%M%S"))
        self._app.SetGalleryHistoryFilenameMask(mask)
        self._basename = value

    @property
    def gallery_directory(self) -> str:
        return str(self._app.GetGalleryHistoryDirectoryPath)

    @gallery_directory.setter
    def gallery_directory(self, value: str) -> None:
        self._app.SetGalleryHistoryDirectoryPath(value)


class Data(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.storage = _Storage(spm)


class ZControl(_Node):
    """The z-loop: ``setpoint`` in the mode's unit (% of the free amplitude in dynamic modes, V of
    deflection in static ones: ``setpoint_unit``), gains, and a gain finder."""

    setpoint = _Mapped("ZController.SetPoint")
    p_gain = _Mapped("ZController.PGain")
    i_gain = _Mapped("ZController.IGain")

    @property
    def setpoint_unit(self) -> str:
        static = self._app.OperatingMode.OperatingMode in vocabulary.STATIC_MODES
        return "V" if static else "%"

    @setpoint_unit.setter
    def setpoint_unit(self, unit: str) -> None:
        if unit != self.setpoint_unit:
            raise ValueError(f"setpoint_unit = {unit!r} does not fit the operating mode; allowed: "
                             f"{self.setpoint_unit!r} (load the static or dynamic mode first)")

    @property
    def setpoint_units(self) -> list[str]:
        return [self.setpoint_unit]

    @property
    def gain_finder(self) -> Any:
        return _Action(lambda: _done("gains kept: the twin's z-loop is stable at its present gains"))


class _Action:
    def __init__(self, action: Any) -> None:
        self.run = action


class _Mode(_Node):
    def __init__(self, spm: SPM, mode: int) -> None:
        super().__init__(spm)
        self._mode = mode

    def load(self) -> dict[str, Any]:
        self._app.OperatingMode.OperatingMode = self._mode
        return _done("mode loaded")

    update = load


class Mode(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.dynamic_mode = _Mode(spm, vocabulary.OperatingMode.DynamicAFM)
        self.static_mode = _Mode(spm, vocabulary.OperatingMode.StaticAFM)


class Workflow(_Node):
    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.device, self.laser, self.probe = Device(spm), Laser(spm), Probe(spm)
        self.approach, self.imaging, self.data = Approach(spm), Imaging(spm), Data(spm)
        self.z_control, self.mode = ZControl(spm), Mode(spm)


class Session:
    def __init__(self, spm: SPM) -> None:
        self.workflow = Workflow(spm)


class StudioScriptError(RuntimeError):
    """What Studio raises when a script's call fails."""


class Studio:
    """``nanosurf.Studio()``: connect, then ``select_measurement_session()`` for the workflow. The
    twin's AFM is reached at ``host:port`` (default: the local twin; under ``twin run`` any address
    goes to the twin)."""

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self._host, self._port = host, port
        self._spm: SPM | None = None
        self._session: Session | None = None
        self.last_error = ""
        self.session_id = "twin-session"

    def connect(self) -> bool:
        try:
            self._spm = self._spm or SPM(self._host, self._port)
        except (ConnectionError, OSError) as error:
            self.last_error = str(error)
            return False
        return True

    @property
    def is_connected(self) -> bool:
        return self._spm is not None

    def version(self) -> tuple[int, int, int]:
        return (17, 0, 0)

    get_sw_version = version

    def select_measurement_session(self, session: str = "", level: int = 1) -> Session:
        if not self.connect():
            raise StudioScriptError(f"cannot connect to the twin: {self.last_error}")
        self._session = Session(self._spm)
        return self._session

    @property
    def spm(self) -> Session:
        """The session selected last (Studio's older alias)."""
        return self._session or self.select_measurement_session()

    def disconnect(self) -> None:
        if self._spm is not None:
            self._spm.close()
        self._spm = self._session = None
