"""Remote faces of the twin: thin Pyro5 objects that forward to the instruments.

They add nothing but argument plumbing; validation and state live in the instruments. Every
public method here is callable by clients, with plain values and numpy arrays as arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from Pyro5.api import expose

from twin import __version__, starting_state, validation
from twin.digital_twin import DigitalTwin
from twin.instruments.afm import AfmInstrument
from twin.instruments.disclosure import public_metadata
from twin.instruments.tem import TemInstrument
from twin.sample import Window, truth
from twin.sample.frames import InstrumentFrame
from twin.server.live.board import Board
from twin.server.live.publish import publish_tem_images
from twin.server.signatures import checked_calls
from twin.validation import brief

MAX_ATOMS_WINDOW_AREA = (200e-9) ** 2  # m²: a few million atoms at most per request
MAX_DEFECTS_WINDOW_AREA = (1e-6) ** 2  # m²: ~17 000 defects, about a second


def frame_from(value: Any) -> InstrumentFrame:
    """An instrument frame from ``{"rotation": rad, "offset": [x, y] m}`` (None: the sample's own)."""
    if value is None:
        return InstrumentFrame()
    if not isinstance(value, dict) or set(value) - {"rotation", "offset", "convention"}:
        raise ValueError(f"frame = {brief(value)}: give {{'rotation': rad, 'offset': [x, y] m}} or None")
    offset = value.get("offset", (0.0, 0.0))
    if not isinstance(offset, (list, tuple)) or len(offset) != 2:
        raise ValueError(f"frame offset = {offset!r}: give [x, y] in m")
    return InstrumentFrame(validation.real("frame rotation", value.get("rotation", 0.0), -10.0, 10.0, "rad"),
                           (validation.real("frame offset x", offset[0], -1.0, 1.0, "m"),
                            validation.real("frame offset y", offset[1], -1.0, 1.0, "m")))


def window_from(value: Any, max_area: float) -> Window:
    """A :class:`Window` from ``{"x_min", "y_min", "x_max", "y_max"}`` (m), checked."""
    if not isinstance(value, dict):
        raise TypeError(f"window must be a mapping with x_min, y_min, x_max, y_max (m), got {brief(value)}")
    try:
        bounds = {k: validation.real(f"window {k}", value[k], -1.0, 1.0, "m")
                  for k in ("x_min", "y_min", "x_max", "y_max")}
    except KeyError as missing:
        raise ValueError(f"window is missing {missing}; give x_min, y_min, x_max, y_max (m)") from None
    window = Window(**bounds)
    if window.width <= 0 or window.height <= 0:
        raise ValueError(f"window = {brief(value)} is empty; x_max must exceed x_min and y_max exceed y_min")
    if window.width * window.height > max_area:
        raise ValueError(
            f"window area = {window.width * window.height:.3g} m² is too large; "
            f"allowed up to {max_area:.3g} m²"
        )
    return window


def _open_setting(twin: DigitalTwin, name: Any) -> Any:
    """``name``, unless it is one of the simulation's own settings (``twin.*``: the tip, drift, focus
    offset, ...) and the ground truth is off, when they are part of what a challenge hides."""
    if isinstance(name, str) and name.startswith("twin.") and not twin.ground_truth:
        raise PermissionError(f"{name} is part of the simulation's hidden state on this server (ground "
                              "truth is off); the instrument's own settings are open")
    return name


def public_image(twin: DigitalTwin, image: dict[str, Any]) -> dict[str, Any]:
    """``image`` as a client may see it: whole with the ground truth on; otherwise its metadata tells
    only what the instrument knows (the window where the stage believes it is, no simulation state)."""
    return image if twin.ground_truth else {**image, "metadata": public_metadata(image["metadata"])}


@expose
@checked_calls("tem")
class TemService:
    """The TEM/STEM as seen over the network; what it acquires goes on the live ``board`` too."""

    def __init__(self, twin: DigitalTwin, board: Board | None = None) -> None:
        self._twin = twin
        self._board = board or Board()

    @property
    def _tem(self) -> TemInstrument:
        return self._twin.tem  # a new one after a reset

    def describe(self) -> dict[str, Any]:
        return self._tem.describe()

    def get(self, name: str) -> Any:
        return self._tem.get(_open_setting(self._twin, name))

    def set(self, name: str, value: Any) -> Any:
        return self._tem.set(_open_setting(self._twin, name), value)

    def reset_defocus(self) -> None:
        self._tem.reset_defocus()

    def stage_position(self) -> dict[str, Any]:
        return self._tem.stage.position()

    def move_stage(self, target: Any, relative: bool = False, safe: bool = False) -> dict[str, Any]:
        return self._tem.move_stage(target, relative, safe)

    def stage_limits(self, axis: str) -> tuple[float, float]:
        return self._tem.stage.limits(axis)

    def stage_is_moving(self) -> bool:
        return self._tem.stage.is_moving

    def start_jogging(self, velocity: Any) -> None:
        """Move the stage continuously at ``velocity`` (axis -> m/s or rad/s) until stop_jogging()."""
        self._tem.stage.start_jogging(velocity)

    def stop_jogging(self) -> None:
        self._tem.stage.stop_jogging()

    def field_of_view(self) -> float:
        return self._tem.field_of_view()

    def progress(self) -> dict[str, Any] | None:
        """The acquisition running now: task, fraction done, seconds so far and left; None if none."""
        return self._tem.progress()

    def screen_current(self) -> float:
        return self._tem.screen_current()

    def gun(self) -> dict[str, Any]:
        """The gun: its emission (relative to just after a flash) and whether a flash is due."""
        return {"emission": self._tem.emission(), "is_flashing_advised": self._tem.is_flashing_advised()}

    def flash_gun(self) -> None:
        self._tem.flash()

    def acquire_camera_image(self, camera: Any, size: Any, exposure_time: Any,
                             readout_area: Any = "Full") -> dict[str, Any]:
        image = public_image(self._twin, self._tem.acquire_camera_image(camera, size, exposure_time,
                                                                        readout_area))
        publish_tem_images(self._board, [image])
        return image

    def run_auto_function(self, name: Any, arguments: Any, reset_blanker: Any = False) -> dict[str, Any]:
        return self._tem.run_auto_function(name, arguments, reset_blanker)

    def acquire_stem_images(self, detectors: Any, size: Any, dwell_time: Any, region: Any = None,
                            mode: Any = None) -> list[dict[str, Any]]:
        images = self._tem.acquire_stem_images(detectors, size, dwell_time, region, mode)
        shown = [public_image(self._twin, image) for image in images]
        publish_tem_images(self._board, shown, "tem.stem")
        return shown

    def acquire_eds_spectrum(self, detector: Any, dispersion: Any, shaping_time: Any, exposure_time: Any,
                             exposure_time_type: Any = "LiveTime") -> dict[str, Any]:
        return public_image(self._twin, self._tem.eds.acquire_spectrum(detector, dispersion, shaping_time,
                                                                       exposure_time, exposure_time_type))

    def acquire_eds_spectrum_image(self, detector: Any, dispersion: Any, shaping_time: Any, dwell_time: Any,
                                   size: Any, scanning_detectors: Any = (), region: Any = None,
                                   mode: Any = None) -> dict[str, Any]:
        result = public_image(self._twin, self._tem.eds.acquire_spectrum_image(
            detector, dispersion, shaping_time, dwell_time, size, scanning_detectors, region, mode))
        images = [public_image(self._twin, image) for image in result["images"]]
        publish_tem_images(self._board, images, "tem.stem")
        return {**result, "images": images}


@expose
@checked_calls("afm")
class AfmService:
    """The AFM as seen over the network."""

    def __init__(self, twin: DigitalTwin) -> None:
        self._twin = twin

    @property
    def _afm(self) -> AfmInstrument:
        return self._twin.afm  # a new one after a reset

    def describe(self) -> dict[str, Any]:
        return self._afm.describe()

    def get(self, name: str) -> Any:
        return self._afm.settings.get(_open_setting(self._twin, name))

    def set(self, name: str, value: Any) -> Any:
        return self._afm.set(_open_setting(self._twin, name), value)

    def start_approach(self) -> None:
        self._afm.start_approach()

    def approach_status(self) -> int:
        return self._afm.approach_status()

    def approach_is_moving(self) -> bool:
        return self._afm.approach_is_moving()

    def start_frame_up(self) -> None:
        self._afm.start_frame_up()

    def start_frame_down(self) -> None:
        self._afm.start_frame_down()

    def start(self) -> None:
        self._afm.start()

    def spec_clear_positions(self) -> None:
        self._afm.spec.clear_positions()

    def spec_add_position(self, x: Any, y: Any, z: Any = 0.0) -> None:
        self._afm.spec.add_position(x, y, z, self._afm.hardware.scanner_range / 2)

    def spec_start(self) -> None:
        self._afm.start_spec()

    def spec_is_measuring(self) -> bool:
        return self._afm.spec.is_measuring()

    def spec_is_moving(self) -> bool:
        return self._afm.spec.is_moving()

    def spec_current_line(self) -> int:
        return self._afm.spec.current_line()

    def spec_get_line(self, group: Any, channel: Any, line: Any, data_filter: Any = 0,
                      conversion: Any = 1) -> list[float] | list[int]:
        return self._afm.spec.get_line(group, channel, line, data_filter, conversion)

    def capture(self) -> list[str]:
        return self._afm.capture()

    def set_file_mask(self, mask: Any) -> str:
        return self._afm.set_file_mask(mask)

    def set_file_index(self, index: Any) -> int:
        return self._afm.set_file_index(index)

    def frequency_sweep(self, lower: Any, upper: Any, step: Any, drive: Any) -> dict[str, Any]:
        return self._afm.frequency_sweep(lower, upper, step, drive)

    def save_video_frame(self, path: Any, source: Any) -> bool:
        return self._afm.save_video_frame(path, source)

    def stop_motors(self) -> None:
        self._afm.motion.stop()
        self._afm.motion.stop_stage()

    def set_gallery(self, path: Any) -> str:
        return self._afm.set_gallery(path)

    def gallery(self) -> str:
        return self._afm.gallery()

    def start_withdraw(self) -> None:
        self._afm.start_withdraw()

    def start_retract(self) -> None:
        self._afm.start_retract()

    def stop_approach_motor(self) -> None:
        self._afm.motion.stop()

    def clear_move_transaction(self) -> None:
        self._afm.motion.clear_move_transaction()

    def append_to_move_transaction(self, axis: Any, value: Any, relative: Any) -> None:
        self._afm.motion.append_to_move_transaction(axis, value, relative)

    def commit_move_transaction(self) -> None:
        self._afm.motion.commit_move_transaction()

    def stage_state(self) -> int:
        return self._afm.motion.stage_state()

    def axis_position(self, axis: Any) -> float:
        return self._afm.motion.axis_position(axis)

    def stage_stop(self) -> None:
        self._afm.motion.stop_stage()

    def stage_reference_search(self) -> None:
        self._afm.motion.reference_search()

    def stage_is_referenced(self) -> bool:
        return self._afm.motion.is_referenced()

    def stage_set_axis_zero(self, axis: Any) -> None:
        self._afm.motion.set_axis_zero(axis)

    def stage_axis_zero(self, axis: Any) -> float:
        return self._afm.motion.axis_zero(axis)

    def stage_set_speed_percent(self, percent: Any) -> None:
        self._afm.motion.set_speed_percent(percent)

    def stage_speed_percent(self) -> float:
        return self._afm.motion.speed_percent()

    def stage_set_locked(self, locked: Any) -> None:
        self._afm.motion.set_locked(validation.flag("locked", locked))

    def stop(self) -> None:
        self._afm.stop()

    def is_scanning(self) -> bool:
        return self._afm.is_scanning()

    def current_line(self) -> int:
        return self._afm.current_line()

    def get_line(self, group: Any, channel: Any, line: Any, data_filter: Any, conversion: Any) -> str:
        return self._afm.get_line(group, channel, line, data_filter, conversion)

    def get_frame(self, group: Any, channel: Any) -> dict[str, Any]:
        return public_image(self._twin, self._afm.get_frame(group, channel))


@expose
@checked_calls("sample")
class SampleService:
    """Ground truth of the shared sample, plus transport diagnostics."""

    def __init__(self, twin: DigitalTwin) -> None:
        self._twin = twin

    def info(self) -> dict[str, Any]:
        sample = self._twin.sample.describe()
        if not self._twin.ground_truth:  # name and material only: no seed, densities or layers
            sample = {key: sample[key] for key in ("name", "material")}
        return {
            "version": __version__,
            "sample": sample,
            "seed": self._twin.seed if self._twin.ground_truth else None,
            "time_scale": self._twin.clock.time_scale,
            "ground_truth": self._twin.ground_truth,
        }

    def _truth(self) -> None:
        if not self._twin.ground_truth:
            raise PermissionError("ground truth is off on this server (twin serve --ground-truth off), "
                                  "as in a challenge; images and their metadata are what you get")

    def defects(self, window: Any) -> list[dict[str, Any]]:
        """Every defect or feature anchored in ``window`` (kind, species, host, x, y, z, size in m)."""
        self._truth()
        area = window_from(window, MAX_DEFECTS_WINDOW_AREA)
        return [d.as_dict() for d in self._twin.sample.defects_in_window(area)]

    def labels(self, window: Any, rows: Any, columns: Any, frame: Any = None) -> dict[str, Any]:
        """Label masks on ``window`` cut into ``rows x columns`` pixels: per-pixel class and instance ids,
        the class names and the defects the instance ids number (1 = the first); ``window`` and the
        defects in an instrument ``frame`` (``{"rotation", "offset"}``; the sample's by default)."""
        self._truth()
        area = window_from(window, MAX_DEFECTS_WINDOW_AREA)
        shape = (validation.integer("rows", rows, 1, 4096), validation.integer("columns", columns, 1, 4096))
        classes, instances, defects = truth.label_masks(self._twin.sample, area, shape, frame_from(frame))
        return {"classes": classes, "instances": instances, "class_names": truth.CLASSES,
                "defects": [d.as_dict() for d in defects], "window": area.as_dict()}

    def heights(self, window: Any, rows: Any, columns: Any, frame: Any = None) -> dict[str, Any]:
        """The van der Waals top surface (m) on ``window`` (in an instrument ``frame``) cut into
        ``rows x columns`` pixels."""
        self._truth()
        area = window_from(window, MAX_ATOMS_WINDOW_AREA)
        shape = (validation.integer("rows", rows, 1, 4096), validation.integer("columns", columns, 1, 4096))
        heights = truth.height_map(self._twin.sample, area, shape, frame_from(frame))
        return {"heights": heights, "window": area.as_dict()}

    def atoms(self, window: Any) -> dict[str, Any]:
        """The atoms in ``window``: symbols, positions (Å, relative to its lower-left corner), cell."""
        self._truth()
        area = window_from(window, MAX_ATOMS_WINDOW_AREA)
        atoms = self._twin.sample.atoms_in_window(area)
        return {
            "numbers": atoms.numbers.astype(np.int16),
            "positions": atoms.positions,
            "cell": np.asarray(atoms.cell.lengths()),
            "window": area.as_dict(),
        }

    def reset(self, state: Any = None, settings: Any = None) -> dict[str, Any]:
        """Return the twin to its start-up state without restarting the server: both instruments as
        they started (the server's ``--state`` and ``--set``), the sample without beam damage, the
        clock at zero. With ``state`` (a preset: tem, stem, diffraction, overnight) and ``settings``
        (``["NAME=VALUE", ...]``, at most 256) those instead. Returns ``{"state", "set"}``: what was
        applied (the simulation's own ``twin.*`` settings only with the ground truth on). Refused in a
        challenge."""
        server_preset, server_texts = self._twin.starting
        preset = server_preset if state is None else state
        texts = settings if settings is not None else server_texts if state is None else ()
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"settings = {brief(settings)}: give a list of 'NAME=VALUE' strings")
        if len(texts) > 256:
            raise ValueError(f"settings = a list of {len(texts)}: allowed at most 256")
        if settings is not None:
            for text in texts:  # hidden state stays hidden: neither set nor echoed
                _open_setting(self._twin, text.split("=", 1)[0].strip().rpartition(":")[2])
        changes = starting_state.resolve(self._twin, preset, tuple(texts))  # refused here: nothing reset
        self._twin.reset()
        try:
            done = starting_state.apply_changes(self._twin, changes)
        except (ValueError, TypeError, RuntimeError):  # a value out of range: back to the server's own start
            self._twin.reset()
            starting_state.apply_changes(self._twin, starting_state.resolve(self._twin, *self._twin.starting))
            raise
        return {"state": preset, "set": [text for text in done if self._twin.ground_truth
                                         or not text.startswith("twin.")]}

    def echo(self, value: Any) -> Any:
        """Return ``value`` unchanged (transport checks and benchmarks)."""
        return value

    def ping(self) -> bool:
        return True
