"""A first look at a running twin: the same area through both instruments, saved as one PNG.

It drives the server through the public clients, exactly as a user script would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from twin.common.geometry import Window
from twin.physics.ctf import scherzer_defocus

#: a defect is visible when its contrast reaches this many noise standard deviations (Rose's criterion)
VISIBLE_SNR = 3.0
#: 1/m: spatial frequencies above this may carry the lattice (Bragg peaks); below, the background
LATTICE_FREQUENCY = 1e9
#: a Bragg peak's Fourier amplitude over the median amplitude (noise alone exceeds 10 x with odds e^-69)
PEAK_FACTOR = 10.0
#: the band-pass filters: a Gaussian of width sigma minus one of 1.6 sigma (a difference of Gaussians
#: that approximates a Laplacian of Gaussian); a blob of radius ~1.4 sigma answers most
_WIDER = 1.6
#: m: the zoom's side at least, and its Gaussian smoothing (what the eye does with shot noise: the
#: lattice's 1.2 Å spacings are kept)
ZOOM_SIDE, ZOOM_BLUR = 1.5e-9, 0.4e-10


def lattice_peaks(spectrum: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    """Where the image's Fourier transform ``spectrum`` has the ideal lattice's Bragg peaks (sharp maxima
    PEAK_FACTOR x the median amplitude above LATTICE_FREQUENCY; ``kx``, ``ky`` in 1/m), grown by two
    pixels for the leakage of a field that holds no whole number of unit cells."""
    amplitude = np.abs(spectrum)
    peaks = (amplitude > PEAK_FACTOR * np.median(amplitude)) & (np.hypot(kx, ky) >= LATTICE_FREQUENCY)
    return ndimage.binary_dilation(peaks, iterations=2)


def _pixels(points: list[tuple[float, float]], window: Window, shape: tuple[int, int]
            ) -> tuple[list[tuple[int, int]], list[bool]]:
    """The (row, column) of each point (m) on an image of ``shape`` over ``window``, and whether it is in."""
    rows, columns = shape
    where = [(int(np.floor((y - window.y_min) / window.height * rows)),
              int(np.floor((x - window.x_min) / window.width * columns))) for x, y in points]
    return where, [0 <= i < rows and 0 <= j < columns for i, j in where]


def _scales(shape: tuple[int, int]) -> list[float]:
    """Band-pass widths (pixels) from one pixel to a sixteenth of the field, doubling."""
    largest, sigma, scales = min(shape) / 16, 1.0, []
    while sigma <= largest:
        scales.append(sigma)
        sigma *= 2
    return scales


def contrast_to_noise(image: np.ndarray, window: Window, points: list[tuple[float, float]],
                      avoid: list[tuple[float, float]] | None = None) -> np.ndarray:
    """Each point's contrast in ``image`` over the noise, at the scale where it stands out most.

    The ideal lattice (the image's Bragg peaks) is removed first, so what is left is the noise, the
    slow background and whatever breaks the lattice. That rest is band-passed at widths from a pixel to
    a sixteenth of the field; at each width the noise is the spread (1.4826 x the median absolute
    deviation) of the band-passed image away from every point and from the edges, and a point's
    contrast is its band-passed value's distance from their median, in those noise units. ``window``:
    the image's extent (m), rows along y; ``points``: (x, y) in m; ``avoid``: where the noise is not
    measured (default: ``points``). A point outside the image, or too near its edge for any width,
    gets 0.
    """
    data = np.asarray(image, dtype=float)
    rows, columns = data.shape
    pixel_x, pixel_y = window.width / columns, window.height / rows
    spectrum = np.fft.fft2(data - data.mean())
    ky, kx = np.meshgrid(np.fft.fftfreq(rows, pixel_y), np.fft.fftfreq(columns, pixel_x), indexing="ij")
    spectrum[lattice_peaks(spectrum, kx, ky)] = 0.0
    where, inside = _pixels(points, window, data.shape)
    marks = np.ones(data.shape, dtype=bool)
    for (i, j), ok in zip(*(_pixels(avoid, window, data.shape) if avoid is not None else (where, inside)),
                          strict=True):
        if ok:
            marks[i, j] = False
    from_points = ndimage.distance_transform_edt(marks) if not marks.all() else np.full(data.shape, np.inf)
    r, c = np.indices(data.shape)
    from_edge = np.minimum(np.minimum(r, rows - 1 - r), np.minimum(c, columns - 1 - c))
    k2 = (kx * pixel_x) ** 2 + (ky * pixel_y) ** 2  # cycles per pixel, squared
    best = np.zeros(len(points))
    for sigma in _scales(data.shape):
        band = np.exp(-2 * np.pi**2 * sigma**2 * k2) - np.exp(-2 * np.pi**2 * (_WIDER * sigma) ** 2 * k2)
        response = np.real(np.fft.ifft2(spectrum * band))
        reach = 3 * _WIDER * sigma  # pixels the filter sees around a point
        reference = response[(from_edge >= reach) & (from_points >= 2 * reach)]
        if reference.size < 100:
            continue
        level = np.median(reference)
        noise = 1.4826 * np.median(np.abs(reference - level))
        for n, ((i, j), ok) in enumerate(zip(where, inside, strict=True)):
            if ok and from_edge[i, j] >= reach and noise > 0:
                best[n] = max(best[n], abs(response[i, j] - level) / noise)
    return best


def first_look(host: str, port: int, path: str | Path, cs: float) -> str:
    """Acquire a 1024² HRTEM image and a 256² AFM frame of the TEM's field of view; save a PNG of both
    with the ground-truth defects circled (dashed where a defect does not stand out of the noise) and a
    zoom on the clearest one.

    The TEM's defocus is set to Scherzer for the image and the AFM's frame moved onto the TEM's
    view; both are restored afterwards (the tip stays approached). Returns a one-line summary.
    """
    from clients.afm import SPM
    from clients.tem import TemMicroscopeClient
    from clients.tem.enumerations import CameraType

    microscope = TemMicroscopeClient()
    microscope.connect(host, port)
    spm = SPM(host, port)
    try:
        stage = microscope.specimen.stage.position
        fov = microscope.optics.field_of_view
        previous_defocus = microscope.optics.defocus
        energy = microscope.source.acceleration_voltage.value
        microscope.optics.defocus = scherzer_defocus(cs, energy)
        started = time.perf_counter()
        image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 1024, 1.0)
        tem_seconds = time.perf_counter() - started
        microscope.optics.defocus = previous_defocus
        view = _tem_window(image, stage, fov)  # where the image is (the stage reads with errors)

        app = spm.application
        app.Approach.StartApproach()
        while app.Approach.IsMoving:
            time.sleep(0.05)
        scan = app.Scan
        geometry = (scan.ImageWidth, scan.ImageHeight, scan.CenterPosX, scan.CenterPosY)
        scan.ImageSize(view.width, view.height)
        scan.CenterPosX, scan.CenterPosY = view.centre
        started = time.perf_counter()
        scan.StartFrameUp()
        while scan.IsScanning:
            time.sleep(0.05)
        afm_seconds = time.perf_counter() - started
        topography = spm.get_frame(channel=spm.ScanChannel.Topography)
        scan.ImageWidth, scan.ImageHeight, scan.CenterPosX, scan.CenterPosY = geometry
        defects = microscope.twin.defects(view.x_min, view.y_min, view.x_max, view.y_max)
    finally:
        microscope.disconnect()
        spm.close()

    tem = Panel(f"HRTEM 1024², {energy / 1e3:g} kV, Scherzer defocus, 1 s", np.asarray(image.data), view,
                "gray", "")
    positions, drift = _drifted(defects, topography)
    afm = Panel(f"AFM topography 256², same area (circles moved with the drift, {drift * 1e9:.1f} nm in all)",
                topography.values * 1e10, _frame_window(topography), "afmhot", "height (Å, sample frame)",
                positions)
    figure, seen = draw(tem, afm, defects)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    kinds = ", ".join(sorted({d.label for d in defects})) or "none"
    return (
        f"first look saved to {path}: TEM 1024² in {tem_seconds:.2f} s, AFM 256² in {afm_seconds:.2f} s, "
        f"{len(defects)} defects in view ({kinds}), above the noise (contrast >= {VISIBLE_SNR:g} x noise) "
        f"{seen[0]} in the TEM image and {seen[1]} in the AFM frame, mean {np.mean(image.data):.0f} e-/pixel"
    )


def _tem_window(image, stage, fov: float) -> Window:
    """Where the image lies in the sample frame: its metadata's window, else the stage's reading."""
    try:
        return Window(**image.metadata.twin.to_dict()["window"])
    except (AttributeError, KeyError, TypeError):
        return Window.around(stage.x, stage.y, fov, fov)


def _frame_window(frame) -> Window:
    """The extent of an AFM frame from its pixel-centre coordinates ``x``, ``y`` (m)."""
    x, y = frame.x.values, frame.y.values
    step_x, step_y = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)
    return Window(x[0] - step_x / 2, y[0] - step_y / 2, x[-1] + step_x / 2, y[-1] + step_y / 2)


def _drifted(defects: list, frame) -> tuple[list[tuple[float, float]], float]:
    """Where each defect shows in an AFM ``frame`` (m): its place moved by the scanner's drift when the
    tip crossed its line (thermal drift and piezo creep, from the frame's metadata, linear from the first
    line to the last); and how far the drift went over the frame (m)."""
    first = np.asarray(frame.attrs.get("twin.drift_offset.first_line", (0.0, 0.0)), dtype=float)
    last = np.asarray(frame.attrs.get("twin.drift_offset.last_line", (0.0, 0.0)), dtype=float)
    window, lines = _frame_window(frame), frame.shape[0]
    places = []
    for defect in defects:
        line = (defect.y - window.y_min) / window.height * lines - 0.5
        done = float(np.clip(line / max(lines - 1, 1), 0.0, 1.0))
        if frame.attrs.get("acquisition.direction") == "down":
            done = 1.0 - done
        shift = first + (last - first) * done
        places.append((defect.x + shift[0], defect.y + shift[1]))
    return places, float(np.hypot(*(last - first)))


@dataclass(frozen=True)
class Panel:
    """One image of the figure: its title, pixels (rows along y), extent (m), colour map, the label of
    its colour bar ("" for none) and where the defects show in it (m; None: at their own places)."""

    title: str
    data: np.ndarray
    window: Window
    colours: str
    unit: str
    positions: list[tuple[float, float]] | None = None


def _name(defect) -> str:
    return defect.species or ("vac" if defect.kind == "vacancy" else defect.kind)


def _circle(axes, defect, place: tuple[float, float], radius: float, contrast: float, label: bool = True
            ) -> None:
    """Circle ``defect`` at ``place`` (m) on ``axes`` (in nm, ``radius`` too): solid if ``contrast`` (in
    noise units) makes it visible there, dashed if not."""
    from matplotlib.patches import Circle

    visible = contrast >= VISIBLE_SNR
    centre = (place[0] * 1e9, place[1] * 1e9)
    axes.add_patch(Circle(centre, radius, fill=False, edgecolor="tab:cyan", linewidth=1.5,
                          linestyle="-" if visible else "--", alpha=1.0 if visible else 0.8))
    if label:
        axes.annotate(f"{_name(defect)} {contrast:.1f}σ", centre, xytext=(7, 7), textcoords="offset points",
                      color="tab:cyan", fontsize=8)


def _show(axes, panel: Panel, window: Window | None = None, blur: float = 0.0):
    """``panel`` on ``axes`` in nm, cropped to ``window`` if given, smoothed by a Gaussian of ``blur``
    pixels."""
    data, extent = panel.data, panel.window
    if window is not None:
        rows, columns = data.shape
        dx, dy = extent.width / columns, extent.height / rows
        c0, c1 = (int(np.clip(np.floor((v - extent.x_min) / dx), 0, columns)) for v in (window.x_min,
                                                                                           window.x_max))
        r0, r1 = (int(np.clip(np.floor((v - extent.y_min) / dy), 0, rows)) for v in (window.y_min,
                                                                                   window.y_max))
        data = data[r0:r1, c0:c1]
    if blur >= 0.5:
        data = ndimage.gaussian_filter(np.asarray(data, dtype=float), blur)
        extent = Window(extent.x_min + c0 * dx, extent.y_min + r0 * dy, extent.x_min + c1 * dx,
                        extent.y_min + r1 * dy)
    shown = axes.imshow(data, cmap=panel.colours, origin="lower",
                        extent=[v * 1e9 for v in (extent.x_min, extent.x_max, extent.y_min, extent.y_max)])
    axes.set_xlabel("x (nm, sample frame)")
    axes.set_ylabel("y (nm)")
    return shown


def draw(tem: Panel, afm: Panel, defects: list) -> tuple[object, tuple[int, int]]:
    """The figure: both panels with every defect circled (solid where it stands out of that panel's
    noise by VISIBLE_SNR, dashed where it does not) and a zoom on the TEM's clearest defect; returns it
    and how many defects each panel shows above the noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    places = {name: panel.positions or [(d.x, d.y) for d in defects] for name, panel in (("tem", tem),
                                                                                          ("afm", afm))}
    contrast = {name: contrast_to_noise(panel.data, panel.window, places[name]) if defects else np.zeros(0)
                for name, panel in (("tem", tem), ("afm", afm))}
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(19, 6.4), constrained_layout=True,
                                                 gridspec_kw={"width_ratios": [1, 1.12, 1]})
    _show(left, tem)
    heights = _show(middle, afm)
    figure.colorbar(heights, ax=middle, label=afm.unit, shrink=0.8)
    for axes, panel, name in ((left, tem, "tem"), (middle, afm, "afm")):
        axes.set_title(panel.title)
        for defect, place, value in zip(defects, places[name], contrast[name], strict=True):
            _circle(axes, defect, place, panel.window.width * 1e9 / 45, value)
    _zoom(right, tem, defects, places["tem"], contrast["tem"])
    figure.legend(handles=[Patch(facecolor="none", edgecolor="tab:cyan", linestyle="-",
                                 label=f"visible there: contrast ≥ {VISIBLE_SNR:g} σ of the noise"),
                           Patch(facecolor="none", edgecolor="tab:cyan", linestyle="--",
                                 label=f"below the noise there (< {VISIBLE_SNR:g} σ)")],
                  loc="outside lower center", ncols=2)
    figure.suptitle("One sample, two instruments: ground-truth defects circled")
    return figure, tuple(int(np.sum(contrast[name] >= VISIBLE_SNR)) for name in ("tem", "afm"))


def _zoom(axes, tem: Panel, defects: list, places: list[tuple[float, float]], contrast: np.ndarray
          ) -> None:
    """A close view of the TEM image around its clearest defect (the image's centre if it has none)."""
    pixel = tem.window.width / tem.data.shape[1]
    side = max(ZOOM_SIDE, 64 * pixel)
    if len(defects):
        best = int(np.argmax(contrast))
        centre, what = places[best], f"{defects[best].label}, {contrast[best]:.1f}σ"
    else:
        centre, what = tem.window.centre, "no defect in view"
    _show(axes, tem, Window.around(*centre, side, side), ZOOM_BLUR / pixel)
    for defect, place, value in zip(defects, places, contrast, strict=True):
        if abs(place[0] - centre[0]) < side / 2 and abs(place[1] - centre[1]) < side / 2:
            _circle(axes, defect, place, side * 1e9 / 7, value, label=False)
    axes.set_title(f"HRTEM zoom: {what} (smoothed over {ZOOM_BLUR * 1e10:.1f} Å)")
