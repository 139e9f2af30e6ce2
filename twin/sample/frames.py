"""Instrument frames: each instrument may see the sample turned and shifted, as two real instruments
never share axes. A point ``p`` in an instrument's frame is ``R(rotation) p + offset`` in the sample
frame. :class:`FramedSample` shows the sample to one instrument in its own frame; the ground truth stays
in the sample frame and each image's metadata records the transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from twin.constants import ANGSTROM
from twin.sample.specimen import Defect, Sample, Window

if TYPE_CHECKING:
    from twin.sample.defects import DefectField, DefectSpec
    from twin.sample.history import KnockOuts
    from twin.sample.lattice import Crystal2D
    from twin.sample.specimen import Layer
    from twin.sample.support import HoleyCarbon


@dataclass(frozen=True)
class InstrumentFrame:
    """An instrument's frame: ``rotation`` (rad, counter-clockwise) and ``offset`` (m) from the sample's."""

    rotation: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)

    @property
    def identity(self) -> bool:
        return self.rotation == 0.0 and self.offset == (0.0, 0.0)

    def to_sample(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Sample-frame coordinates (m) of instrument-frame points ``x``, ``y`` (m)."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return c * x - s * y + self.offset[0], s * x + c * y + self.offset[1]

    def from_sample(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Instrument-frame coordinates (m) of sample-frame points ``x``, ``y`` (m)."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        x, y = np.asarray(x, dtype=float) - self.offset[0], np.asarray(y, dtype=float) - self.offset[1]
        return c * x + s * y, -s * x + c * y

    def sample_window(self, window: Window) -> Window:
        """The sample-frame window that holds all of an instrument-frame ``window``."""
        xs, ys = self.to_sample([window.x_min, window.x_max, window.x_min, window.x_max],
                                [window.y_min, window.y_min, window.y_max, window.y_max])
        return Window(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    def as_dict(self) -> dict[str, Any]:
        return {"rotation": self.rotation, "offset": list(self.offset),
                "convention": "sample = R(rotation) instrument + offset"}


class FramedSample:
    """The shared sample as one instrument sees it.

    Positions go through the instrument's frame in :meth:`atoms_in_window`, :meth:`remove_atoms`,
    :meth:`defects_in_window` and :meth:`surface_height`: windows and points are in the instrument's
    frame, and so is what comes back. Everything else here is the sample's own and does not depend on
    the frame: its name and version, the crystal, species and densities, heights (z is the same in every
    frame), and the layers, film, defect fields and knock-out record, which stay in the *sample's*
    frame (turn them with :attr:`frame` before comparing them with an instrument's positions). Anything
    more is on :attr:`sample`, the sample itself.
    """

    def __init__(self, sample: Sample, frame: InstrumentFrame, revealed: bool = True) -> None:
        self.sample = sample
        self.frame = frame
        self.revealed = revealed  # whether images may tell their frame (not when ground truth is off)

    @property
    def frame_record(self) -> dict[str, Any] | str:
        """The frame as image metadata records it: the transform, or "hidden"."""
        return self.frame.as_dict() if self.revealed else "hidden"

    # --- the sample's own: the same in every frame ---------------------------------------------------
    @property
    def name(self) -> str:
        return self.sample.name

    @property
    def version(self) -> int:
        """How many times atoms were removed (caches of images key on it)."""
        return self.sample.version

    @property
    def crystal(self) -> Crystal2D:
        """The first layer's crystal (its name sets damage thresholds)."""
        return self.sample.crystal

    @property
    def species(self) -> list[str]:
        return self.sample.species

    @property
    def lattice_spacing(self) -> float:
        """First-order lattice spacing (m): the same along every direction of any frame."""
        return self.sample.lattice_spacing

    def atom_density(self) -> float:
        """Atoms per m² of the pristine stack and its support."""
        return self.sample.atom_density()

    @property
    def mean_plane(self) -> float:
        """Height (Å) of the layers' mean plane (a height: frames turn and shift in the plane only)."""
        return self.sample.mean_plane

    @property
    def floor_height(self) -> float:
        """Height (m) of the support's surface where no layer lies."""
        return self.sample.floor_height

    @property
    def defect_specs(self) -> tuple[DefectSpec, ...]:
        """The kinds of defects and features the layers hold (densities, not positions)."""
        return self.sample.defect_specs

    # --- the sample's own, positions in the SAMPLE frame (not this instrument's) ----------------------
    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers, their rotations, shifts and flakes in the sample frame."""
        return self.sample.layers

    @property
    def film(self) -> HoleyCarbon | None:
        """The holey support film (holes in the sample frame), or None."""
        return self.sample.film

    @property
    def fields(self) -> tuple[DefectField, ...]:
        """The layers' defect fields (sample frame)."""
        return self.sample.fields

    @property
    def knocked_out(self) -> KnockOuts:
        """Every atom the beam removed so far (sample frame)."""
        return self.sample.knocked_out

    # --- positions in the instrument's frame -----------------------------------------------------------
    def atoms_in_window(self, window: Window) -> Atoms:
        """The atoms inside the instrument-frame ``window``, positions in Å relative to its corner."""
        if self.frame.identity:
            return self.sample.atoms_in_window(window)
        outer = self.frame.sample_window(window)
        atoms = self.sample.atoms_in_window(outer)
        x, y = self.frame.from_sample(outer.x_min + atoms.positions[:, 0] * ANGSTROM,
                                      outer.y_min + atoms.positions[:, 1] * ANGSTROM)
        inside = (x >= window.x_min) & (x < window.x_max) & (y >= window.y_min) & (y < window.y_max)
        atoms = atoms[inside]
        atoms.positions[:, 0] = (x[inside] - window.x_min) / ANGSTROM
        atoms.positions[:, 1] = (y[inside] - window.y_min) / ANGSTROM
        atoms.cell = [window.width / ANGSTROM, window.height / ANGSTROM, 0.0]
        atoms.info["window"] = window.as_dict()
        atoms.info["frame"] = self.frame.as_dict()
        return atoms

    def remove_atoms(self, atoms: Atoms) -> int:
        """Empty the sites of ``atoms`` (as :meth:`atoms_in_window` returned them)."""
        if self.frame.identity or len(atoms) == 0:
            return self.sample.remove_atoms(atoms)
        window = atoms.info["window"]
        x, y = self.frame.to_sample(window["x_min"] + atoms.positions[:, 0] * ANGSTROM,
                                    window["y_min"] + atoms.positions[:, 1] * ANGSTROM)
        in_sample = atoms.copy()
        in_sample.positions[:, 0], in_sample.positions[:, 1] = x / ANGSTROM, y / ANGSTROM
        in_sample.info["window"] = {"x_min": 0.0, "y_min": 0.0}
        return self.sample.remove_atoms(in_sample)

    def defects_in_window(self, window: Window) -> list[Defect]:
        """Defects anchored in the instrument-frame ``window``, positions in that frame."""
        if self.frame.identity:
            return self.sample.defects_in_window(window)
        found = []
        for defect in self.sample.defects_in_window(self.frame.sample_window(window)):
            x, y = self.frame.from_sample(defect.x, defect.y)
            if window.x_min <= x < window.x_max and window.y_min <= y < window.y_max:
                found.append(Defect(**{**defect.__dict__, "x": float(x), "y": float(y)}))
        return found

    def surface_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Continuum top surface (m) at instrument-frame points ``x``, ``y`` (m)."""
        return self.sample.surface_height(*self.frame.to_sample(x, y))
