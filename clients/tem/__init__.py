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

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np

from clients._remote import Connection, RemoteSetting
from clients.ground_truth import GroundTruth
from clients.tem.structures import AdornedImage, Limits, MagnificationData, StagePosition
from twin.server import wire

__all__ = ["TemMicroscopeClient"]

_AXES = ("x", "y", "z", "a", "b")


class _Node:
    """A branch of the object tree; calls go to the client's TEM proxy."""

    def __init__(self, client: TemMicroscopeClient) -> None:
        self._client = client

    @property
    def _remote(self) -> Any:
        return self._client._remote


class Magnification(_Node):
    """``optics.magnification``: the current entry and the table to choose from."""

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


class Optics(_Node):
    defocus = RemoteSetting("optics.defocus", "Objective defocus (m); negative is underfocus.")

    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.magnification = Magnification(client)

    @property
    def field_of_view(self) -> float:
        """Side (m) of the square area the camera sees at the current magnification."""
        return self._remote.field_of_view()


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


class Source(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self._acceleration_voltage = AccelerationVoltage(client)

    @property
    def acceleration_voltage(self) -> AccelerationVoltage:
        return self._acceleration_voltage

    @acceleration_voltage.setter
    def acceleration_voltage(self, volts: float) -> None:
        self._acceleration_voltage.value = volts


class Stage(_Node):
    """``specimen.stage``: x, y, z in m and tilts a, b in rad."""

    @property
    def position(self) -> StagePosition:
        return StagePosition(**self._remote.stage_position())

    @property
    def is_moving(self) -> bool:
        return False  # moves complete before the call returns

    def absolute_move(self, position: StagePosition | Sequence[float | None] | Mapping[str, Any]) -> None:
        """Move to ``position``; axes given as ``None`` stay where they are."""
        self._remote.move_stage(_axes(position), False)

    def relative_move(self, position: StagePosition | Sequence[float | None] | Mapping[str, Any]) -> None:
        """Move by ``position``; axes given as ``None`` stay where they are."""
        self._remote.move_stage(_axes(position), True)

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


class Specimen(_Node):
    def __init__(self, client: TemMicroscopeClient) -> None:
        super().__init__(client)
        self.stage = Stage(client)


class Acquisition(_Node):
    def acquire_camera_image(self, camera_detector: Any, size: Any, exposure_time: float) -> AdornedImage:
        """A camera image of ``size``² pixels exposed for ``exposure_time`` s."""
        reply = self._remote.acquire_camera_image(_plain(camera_detector), _plain(size), exposure_time)
        return AdornedImage(reply["data"], reply["metadata"])


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class Detectors(_Node):
    @property
    def camera_detectors(self) -> list[str]:
        return self._remote.camera_detectors()


class TemMicroscopeClient:
    """The microscope: connect, then use ``optics``, ``source``, ``specimen.stage``,
    ``acquisition`` and ``detectors`` as on the instrument. ``twin`` reads the sample's ground truth.
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
        self.twin = GroundTruth(lambda: self._connected[wire.SAMPLE_OBJECT])

    def connect(self, host: str | None = None, port: int | None = None) -> None:
        """Connect to the twin at ``host:port`` (default: the local server on port 9095)."""
        self.disconnect()
        connection = Connection(host, port)
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
