"""Ground truth of the shared sample, read from the twin (not available on a real instrument)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from twin.common.cf import nested_attributes
from twin.common.geometry import Defect, Window, pixel_centres

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["Defect", "GroundTruth"]


def _window(x_min: float, y_min: float, x_max: float, y_max: float) -> dict[str, float]:
    return {"x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max}


class GroundTruth:
    """Queries about the sample itself, in metres in the sample frame."""

    def __init__(self, sample_proxy: Callable[[], Any]) -> None:
        self._sample_proxy = sample_proxy

    def reset(self, state: str | None = None, settings: list[str] | None = None) -> dict[str, Any]:
        """Return the twin to its start-up state, as a fresh server would be, without restarting it:
        both instruments (settings, stage, tip, scans), the sample without beam damage, the clock at
        zero; then the server's ``--state`` and ``--set``, or ``state`` (tem, stem, diffraction,
        overnight) and ``settings`` (``["NAME=VALUE", ...]``) if given. The same calls then give the same
        data as on a server just started. Every client of this twin sees the reset; refused in a
        challenge. Returns what was applied: ``{"state", "set"}``."""
        return self._sample_proxy().reset(state, settings)

    def info(self) -> dict[str, Any]:
        """Sample name, material, seed, defect densities and the server's time scale."""
        return self._sample_proxy().info()

    def defects(self, x_min: float, y_min: float, x_max: float, y_max: float) -> list[Defect]:
        """Every defect or feature anchored in the window (m); at most 1 µm² per query."""
        names = [f.name for f in fields(Defect)]
        found = self._sample_proxy().defects(_window(x_min, y_min, x_max, y_max))
        return [Defect(**{name: d[name] for name in names}) for d in found]

    def atoms(self, x_min: float, y_min: float, x_max: float, y_max: float) -> Atoms:
        """The atoms in the window; positions in Å relative to ``(x_min, y_min)``, z in the sample frame."""
        from ase import Atoms  # only here: a client needs ASE for atoms alone

        reply = self._sample_proxy().atoms(_window(x_min, y_min, x_max, y_max))
        cell = np.zeros(3)
        cell[:2] = reply["cell"][:2]
        atoms = Atoms(numbers=reply["numbers"], positions=reply["positions"], cell=cell)
        atoms.info["window"] = reply["window"]
        return atoms

    def labels(self, x_min: float, y_min: float, x_max: float, y_max: float, rows: int, columns: int,
               frame: dict[str, Any] | None = None) -> xr.Dataset:
        """Label masks on the window (m) cut into ``rows x columns`` pixels (pixel centres as in every
        image of the twin): ``classes`` (ids named by its ``flag_meanings``), ``instances`` (0 none,
        k the k-th entry of the ``defect`` dimension) and the defects themselves (kind, species, x, y,
        z, size); at most 1 µm² and 4096² pixels. With an instrument ``frame`` (from an image's
        ``metadata.twin.frame``), the window and the defects are in that instrument's coordinates."""
        reply = self._sample_proxy().labels(_window(x_min, y_min, x_max, y_max), rows, columns, frame)
        x, y = pixel_centres(Window(**reply["window"]), (rows, columns))
        names = sorted(reply["class_names"], key=reply["class_names"].get)
        flags = {"flag_values": [reply["class_names"][n] for n in names], "flag_meanings": " ".join(names)}
        defects = reply["defects"]
        columns_of_defects = {
            f"defect_{key}": ("defect", np.array([d[key] if d[key] is not None else "" for d in defects]))
            for key in ("kind", "species", "x", "y", "z", "size", "layer")
        }
        dataset = xr.Dataset(
            {
                "classes": (("y", "x"), reply["classes"], flags),
                "instances": (("y", "x"), reply["instances"], {"long_name": "defect number, 0 for none"}),
                **columns_of_defects,
            },
            coords={"x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"}),
                    "defect": ("defect", np.arange(1, len(defects) + 1))},
        )
        return dataset

    def height_map(self, x_min: float, y_min: float, x_max: float, y_max: float, rows: int, columns: int,
                   frame: dict[str, Any] | None = None) -> xr.DataArray:
        """The van der Waals top surface (m) on the window (in an instrument ``frame``, if given) cut
        into ``rows x columns`` pixels."""
        reply = self._sample_proxy().heights(_window(x_min, y_min, x_max, y_max), rows, columns, frame)
        x, y = pixel_centres(Window(**reply["window"]), (rows, columns))
        return xr.DataArray(reply["heights"], dims=("y", "x"), name="height", attrs={"units": "m"},
                            coords={"x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})})

    def for_image(self, image: Any) -> xr.Dataset:
        """Ground truth on exactly the pixel grid of ``image`` (an ``xarray`` image with ``x``/``y``
        pixel-centre coordinates, as ``AdornedImage.to_xarray()`` and ``SPM.get_frame()`` give):
        labels and heights, ready to stack with it."""
        if hasattr(image, "to_xarray"):
            image = image.to_xarray()
        x, y = np.asarray(image.x), np.asarray(image.y)
        px, py = abs(x[1] - x[0]), abs(y[1] - y[0])
        window = (x.min() - px / 2, y.min() - py / 2, x.max() + px / 2, y.max() + py / 2)
        frame = nested_attributes(image.attrs).get("twin", {}).get("frame")
        if frame == "hidden":
            raise PermissionError("this image's instrument frame is hidden: ground truth is off")
        truth = self.labels(*window, len(y), len(x), frame)
        truth["height"] = self.height_map(*window, len(y), len(x), frame)
        truth.attrs["frame"] = str(frame)
        if y[0] > y[-1]:  # rows in scan order downwards (StartFrameDown)
            truth = truth.isel(y=slice(None, None, -1))
        return truth.assign_coords(x=image.x, y=image.y)

