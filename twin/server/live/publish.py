"""What the instruments put on the live :class:`~twin.server.live.board.Board` after each acquisition:
the image (by reference; a large one binned to the page's size, so that a server of many instances never
holds their full frames for the page) with its metadata, and the place imaged with its dose, for the
map. Nothing is encoded here: the page's server does that when a page asks."""

from __future__ import annotations

from typing import Any

from twin.instruments.afm.scanning import Frame
from twin.instruments.clock import Clock
from twin.instruments.disclosure import public_metadata
from twin.server.live.board import Board
from twin.server.live.pictures import binned

TEM_CHANNELS = ("tem.image", "tem.stem", "tem.diffraction")
AFM_CHANNEL = "afm.frame"


def camera_channel(metadata: dict[str, Any]) -> str:
    """The live channel of a camera frame: a diffraction pattern (diffraction mode, or a parked STEM
    probe's convergent-beam pattern) or an image."""
    optics = metadata.get("optics", {})
    pattern = optics.get("projector_mode") == "Diffraction" or optics.get("optical_mode") == "Stem"
    return "tem.diffraction" if pattern else "tem.image"


def dose_per_area(metadata: dict[str, Any]) -> float:
    """Electrons per m² an acquisition gave the area it imaged (0 when its metadata has no dose)."""
    optics = metadata.get("optics", {})
    if "dose_per_area" in optics:
        return float(optics["dose_per_area"])
    pixel = metadata.get("binary_result", {}).get("pixel_size")
    if "electrons_per_pixel" in optics and pixel:
        return float(optics["electrons_per_pixel"]) / (pixel["x"] * pixel["y"])
    return 0.0


def publish_tem_images(board: Board, images: list[dict[str, Any]], channel: str | None = None) -> None:
    """A camera frame or one scan's detector images (``{"data", "metadata"}`` as the client receives
    them): the first on its channel (``channel``, or by :func:`camera_channel`) as ``{"data" (binned),
    "shape" (the frame's), "metadata"}``; one footprint per acquisition."""
    if not images:
        return
    data, metadata = images[0]["data"], images[0]["metadata"]
    board.publish(channel or camera_channel(metadata),
                  {"data": binned(data), "shape": data.shape, "metadata": metadata})
    window = metadata.get("twin", {}).get("window")
    if window is not None:
        board.note_footprint("tem", window, dose_per_area(metadata))


def publish_afm_frame(board: Board, frame: Frame, clock: Clock, reveal: bool) -> None:
    """A new AFM frame (simulated whole as it starts; the page shows the lines the clock has reached,
    ``frame.lines_done(clock)``); its window as the instrument reports it unless ``reveal``."""
    board.publish(AFM_CHANNEL, (frame, clock))
    metadata = frame.metadata if reveal else public_metadata(frame.metadata)
    board.note_footprint("afm", metadata["twin"]["window"], 0.0)
