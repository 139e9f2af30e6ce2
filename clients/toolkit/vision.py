"""Quick looks at images and spectra, as lab scripts call them: shown in a window where there is a
display, written as PNG files (``twin-figures/`` or ``$TWIN_FIGURES``) where there is none."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

FIGURES_VARIABLE = "TWIN_FIGURES"
_numbers = itertools.count()


def _pyplot() -> Any:
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(figure: Any, kind: str) -> Path | None:
    """Show ``figure`` on a display, else save it; returns the file written (None when shown)."""
    plt = _pyplot()
    if plt.get_backend().lower() != "agg":
        plt.show()
        return None
    folder = Path(os.environ.get(FIGURES_VARIABLE, "twin-figures"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{os.getpid()}-{next(_numbers):04d}.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _extent(image: Any) -> tuple[list[float] | None, str]:
    """The image's extent in nm from its pixel size (None if it has none) and the axis label."""
    try:
        pixel = image.metadata.binary_result.pixel_size.x
        unit = image.metadata.binary_result.pixel_size_unit
    except AttributeError:
        return None, "pixels"
    rows, columns = np.asarray(image.data).shape[:2]
    if unit == "m":
        return [0.0, columns * pixel * 1e9, 0.0, rows * pixel * 1e9], "nm"
    return None, "pixels"


def plot_image(image: Any, title: str | None = None) -> Path | None:
    """One image (an AdornedImage or an array), grey, with its physical extent where known."""
    return plot_images([image], [title] if title else None)


def plot_images(images: list[Any], titles: list[str] | None = None) -> Path | None:
    """Several images side by side."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 4), squeeze=False)
    for k, (axis, image) in enumerate(zip(axes[0], images, strict=True)):
        data = np.asarray(getattr(image, "data", image))
        extent, unit = _extent(image)
        axis.imshow(data, cmap="gray", extent=extent, origin="lower")  # rows run along +y: north up
        axis.set_xlabel(unit)
        detector = getattr(getattr(getattr(image, "metadata", None), "binary_result", None), "detector", "")
        axis.set_title(titles[k] if titles else str(detector))
    return _finish(figure, "image")


def add_scale_bar(image: Any) -> Any:
    """The image with a scale bar burnt into its lower right corner as shown (north up: rows run along
    +y), a round length about a fifth of the width; an image without a pixel size comes back unchanged."""
    extent, unit = _extent(image)
    if extent is None:
        return image
    data = np.array(image.data, copy=True)
    rows, columns = data.shape[:2]
    width_nm = extent[1]
    target = width_nm / 5
    length = 10 ** np.floor(np.log10(target))
    length *= 5 if target / length >= 5 else 2 if target / length >= 2 else 1
    bar = max(1, int(round(length / width_nm * columns)))
    thickness = max(2, rows // 64)
    right = columns - 2 * thickness
    bright = np.iinfo(data.dtype).max if data.dtype.kind in "ui" else data.max()
    data[2 * thickness : 3 * thickness, right - bar : right] = bright
    return type(image)(data, image.metadata)


def plot_spectrum(spectrum: Any, title: str = "") -> Path | None:
    """A spectrum's counts against energy (keV) where its metadata says how (detector segments summed)."""
    plt = _pyplot()
    counts = np.asarray(getattr(spectrum, "segments", getattr(spectrum, "data", spectrum)), dtype=float)
    counts = counts.sum(axis=0) if counts.ndim == 2 else counts
    energies = getattr(spectrum, "energies", None)
    figure, axis = plt.subplots(figsize=(8, 3))
    if energies is not None:
        axis.plot(np.asarray(energies) / 1e3, counts)
        axis.set_xlabel("energy (keV)")
    else:
        axis.plot(counts)
        axis.set_xlabel("channel")
    axis.set_ylabel("counts")
    axis.set_title(title)
    return _finish(figure, "spectrum")


def plot_spectra(spectra: Any, title: str = "") -> Path | None:
    """A spectrum image: the sum spectrum, against energy where the spectrum image says how."""
    if hasattr(spectra, "spectrum") and hasattr(spectra, "energies"):
        return plot_spectrum(_Summed(spectra.spectrum, spectra.energies), title)
    data = np.asarray(getattr(spectra, "data", spectra), dtype=float)
    return plot_spectrum(data.reshape(-1, data.shape[-1]).sum(axis=0), title)


class _Summed:
    def __init__(self, data: np.ndarray, energies: np.ndarray) -> None:
        self.data, self.energies = data, energies
