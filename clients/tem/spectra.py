"""EDS results as AutoScript hands them over: an adorned spectrum and a spectrum image, with files that
open in the usual readers (EMD, the Berkeley/NCEM HDF5 flavour that HyperSpy/RosettaSciIO read, and the
EMSA/MAS text format for single spectra). Energies in eV, lengths in m."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from clients.tem.structures import AdornedImage, Metadata

_ROWS_PER_BLOCK = 16  # spectrum-image rows written to a file at a time


def _energies(metadata: Metadata, channels: int) -> np.ndarray:
    detector = metadata.detectors.analytical_detector
    first = detector[0] if isinstance(detector, list) else detector
    return first["offset_energy"] + first["dispersion"] * np.arange(channels)


class AdornedSpectrum:
    """An EDS spectrum with its metadata. ``data`` (uint32) holds the detector segments' spectra one
    after another, as the instrument returns them; :attr:`segments` splits them, :attr:`energies` gives
    each channel's energy (eV)."""

    def __init__(self, data: np.ndarray, metadata: Mapping[str, Any]) -> None:
        self.data = np.asarray(data)
        self.metadata = metadata if isinstance(metadata, Metadata) else Metadata(metadata)
        self.encoding = "UInt32"

    @property
    def _raw_data(self) -> bytes:
        """The counts as little-endian uint32 bytes (what older scripts decode by hand)."""
        return self.data.astype("<u4").tobytes()

    @property
    def segments(self) -> np.ndarray:
        """The counts as ``[segment, channel]``."""
        return self.data.reshape(int(self.metadata.binary_result.segments), -1)

    @property
    def energies(self) -> np.ndarray:
        """Each channel's energy (eV): ``OffsetEnergy + i * Dispersion``."""
        return _energies(self.metadata, self.segments.shape[1])

    def save(self, path: str | Path) -> Path:
        """Write the summed spectrum as EMD (``.emd``, default) or EMSA/MAS (``.msa``); returns the path."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".emd")
        counts = self.segments.sum(axis=0)
        if path.suffix.lower() == ".msa":
            _write_msa(path, counts, self.energies, self.metadata)
        elif path.suffix.lower() == ".emd":
            with _emd(path, self.metadata) as group:
                group.create_dataset("data", data=counts)
                _axis(group, 1, self.energies, "Energy", "eV")
        else:
            raise ValueError(f"path = {str(path)!r}: write .emd or .msa")
        return path

    def __repr__(self) -> str:
        rows, channels = self.segments.shape
        return f"AdornedSpectrum({rows} segments x {channels} channels, {int(self.data.sum())} counts)"


class SpectrumImage:
    """An EDS spectrum image: every count recorded along a STEM scan, by pixel and channel (all segments
    summed), with the images the scanning detectors took at the same time. ``data`` builds the dense
    cube ``[row, column, channel]`` (rows along +y, as the images; it can be large: rows x columns x
    channels x 2 bytes); :meth:`map` and :attr:`spectrum` work from the counts directly."""

    def __init__(self, pixel: np.ndarray, channel: np.ndarray, shape: tuple[int, int, int],
                 metadata: Mapping[str, Any], images: list[AdornedImage]) -> None:
        self.pixel = np.asarray(pixel)
        self.channel = np.asarray(channel)
        self.shape = tuple(int(n) for n in shape)
        self.metadata = metadata if isinstance(metadata, Metadata) else Metadata(metadata)
        self.images = images

    @property
    def energies(self) -> np.ndarray:
        return _energies(self.metadata, self.shape[2])

    @property
    def spectrum(self) -> np.ndarray:
        """The sum spectrum over every pixel (counts per channel)."""
        return np.bincount(self.channel, minlength=self.shape[2])

    def map(self, low: float, high: float) -> np.ndarray:
        """Counts per pixel with energies in ``[low, high)`` eV (an element map from its line's window)."""
        energies = self.energies[self.channel]
        chosen = self.pixel[(energies >= low) & (energies < high)]
        return np.bincount(chosen, minlength=self.shape[0] * self.shape[1]).reshape(self.shape[:2])

    @property
    def data(self) -> np.ndarray:
        return self._rows(0, self.shape[0])

    def _rows(self, first: int, last: int) -> np.ndarray:
        rows, columns, channels = self.shape
        lo, hi = np.searchsorted(self.pixel, [first * columns, last * columns])
        flat = (self.pixel[lo:hi].astype(np.int64) - first * columns) * channels + self.channel[lo:hi]
        cube = np.bincount(flat, minlength=(last - first) * columns * channels)
        dtype = np.uint16 if cube.size == 0 or cube.max() <= np.iinfo(np.uint16).max else np.uint32
        return cube.astype(dtype).reshape(last - first, columns, channels)

    def save(self, path: str | Path) -> Path:
        """Write the cube (y, x, energy with their units) and the simultaneous images as EMD, north up:
        the file's first row is the field's top (its ``y`` axis descends), as HyperSpy and every viewer
        show row 0 at the top. Returns the path (``.emd`` added when it has no suffix). As the EMD readers
        expect, the file stores each array with its axes reversed, ``dim1`` the last:
        ``[channel, column, row]`` and ``[column, row]``."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".emd")
        if path.suffix.lower() != ".emd":
            raise ValueError(f"path = {str(path)!r}: a spectrum image is written as .emd")
        rows, columns, channels = self.shape
        step = self.metadata.binary_result.pixel_size
        window = self.metadata.twin.window
        with _emd(path, self.metadata, "spectrum_image") as group:
            cube = group.create_dataset("data", shape=self.shape[::-1], dtype=np.uint32, compression="gzip",
                                        chunks=(channels, min(columns, 64), min(rows, _ROWS_PER_BLOCK)))
            for first in range(0, rows, _ROWS_PER_BLOCK):  # rows along +y, written top row first
                last = min(rows, first + _ROWS_PER_BLOCK)
                cube[:, :, rows - last:rows - first] = self._rows(first, last)[::-1].transpose(2, 1, 0)
            y = window.y_min + (np.arange(rows)[::-1] + 0.5) * step.y
            x = window.x_min + (np.arange(columns) + 0.5) * step.x
            _axis(group, 1, self.energies, "Energy", "eV")
            _axis(group, 2, x, "x", "m")
            _axis(group, 3, y, "y", "m")
            for image in self.images:
                picture = group.parent.create_group(str(image.metadata.binary_result.detector))
                picture.attrs["emd_group_type"] = 1
                picture.create_dataset("data", data=np.asarray(image.data)[::-1].T)
                _axis(picture, 1, x, "x", "m")
                _axis(picture, 2, y, "y", "m")
        return path

    def __repr__(self) -> str:
        rows, columns, channels = self.shape
        return f"SpectrumImage({rows}x{columns} pixels x {channels} channels, {len(self.pixel)} counts)"


class _emd:
    """An EMD file (Berkeley/NCEM flavour, version 0.2) holding one data group ``name``; the metadata as
    the ``microscope`` group's attributes."""

    def __init__(self, path: Path, metadata: Metadata, name: str = "spectrum") -> None:
        self.path, self.metadata, self.name = path, metadata, name

    def __enter__(self) -> Any:
        import h5py

        self.file = h5py.File(self.path, "w")
        self.file.attrs["version_major"] = 0
        self.file.attrs["version_minor"] = 2
        optics = self.metadata.optics
        microscope = self.file.create_group("microscope")
        microscope.attrs["high_tension"] = float(optics.acceleration_voltage)
        microscope.attrs["metadata_xml"] = self.metadata.metadata_as_xml
        group = self.file.create_group("data").create_group(self.name)
        group.attrs["emd_group_type"] = 1
        return group

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def _axis(group: Any, index: int, values: np.ndarray, name: str, units: str) -> None:
    dim = group.create_dataset(f"dim{index}", data=np.asarray(values, dtype=np.float64))
    dim.attrs["name"] = name
    dim.attrs["units"] = units


def _write_msa(path: Path, counts: np.ndarray, energies: np.ndarray, metadata: Metadata) -> None:
    """An EMSA/MAS spectral data file (version 1.0), one column of counts (``#DATATYPE: Y``)."""
    when = datetime.fromisoformat(str(metadata.acquisition.acquisition_date_time))
    detector = metadata.detectors.analytical_detector
    first = detector[0] if isinstance(detector, list) else detector
    header = {
        "FORMAT": "EMSA/MAS Spectral Data File", "VERSION": "1.0", "TITLE": "EDS spectrum (digital twin)",
        "DATE": when.strftime("%d-%b-%Y").upper(), "TIME": when.strftime("%H:%M"), "OWNER": "microscope-twin",
        "NPOINTS": f"{len(counts)}", "NCOLUMNS": "1", "XUNITS": "eV", "YUNITS": "counts", "DATATYPE": "Y",
        "XPERCHAN": f"{first['dispersion']:.6g}", "OFFSET": f"{energies[0]:.6g}", "SIGNALTYPE": "EDS",
        "BEAMKV": f"{metadata.optics.acceleration_voltage / 1e3:.6g}",
        "LIVETIME": f"{metadata.acquisition.live_time:.6g}",
        "REALTIME": f"{metadata.acquisition.real_time:.6g}",
    }
    lines = [f"#{key:<13}: {value}" for key, value in header.items()]
    lines += ["#SPECTRUM    : Spectral Data Starts Here", *(f"{int(c)}," for c in counts),
              "#ENDOFDATA   : End Of Data and File"]
    path.write_text("\r\n".join(lines) + "\r\n")
