"""A first look at a running twin: the same area through both instruments, saved as one PNG.

It drives the server through the public clients, exactly as a user script would.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from twin.physics.ctf import scherzer_defocus


def first_look(host: str, port: int, path: str | Path, cs: float) -> str:
    """Acquire a 1024² HRTEM image and a 256² AFM frame of the TEM's field of view; save a PNG.

    The TEM's defocus is set to Scherzer for the image and the AFM's frame moved onto the TEM's
    view; both are restored afterwards (the tip stays approached). Returns a one-line summary.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

        app = spm.application
        app.Approach.StartApproach()
        while app.Approach.IsMoving:
            time.sleep(0.05)
        scan = app.Scan
        geometry = (scan.ImageWidth, scan.ImageHeight, scan.CenterPosX, scan.CenterPosY)
        scan.ImageSize(fov, fov)
        scan.CenterPosX, scan.CenterPosY = stage.x, stage.y
        started = time.perf_counter()
        scan.StartFrameUp()
        while scan.IsScanning:
            time.sleep(0.05)
        afm_seconds = time.perf_counter() - started
        topography = spm.get_frame(channel=spm.ScanChannel.Topography)
        scan.ImageWidth, scan.ImageHeight, scan.CenterPosX, scan.CenterPosY = geometry
        half = fov / 2
        defects = microscope.twin.defects(stage.x - half, stage.y - half, stage.x + half, stage.y + half)
    finally:
        microscope.disconnect()
        spm.close()

    extent_nm = [v * 1e9 for v in (stage.x - half, stage.x + half, stage.y - half, stage.y + half)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 6.4), constrained_layout=True)
    left.imshow(image.data, cmap="gray", origin="lower", extent=extent_nm)
    left.set_title(f"HRTEM 1024², {energy / 1e3:g} kV, Scherzer defocus, 1 s")
    heights = right.imshow(topography.values * 1e10, cmap="afmhot", origin="lower", extent=extent_nm)
    figure.colorbar(heights, ax=right, label="height (Å, sample frame)", shrink=0.8)
    right.set_title("AFM topography 256², same area")
    for axes in (left, right):
        for d in defects:
            marker = {"vacancy": "o", "substitution": "s"}[d.kind]
            axes.plot(d.x * 1e9, d.y * 1e9, marker, mfc="none", mec="tab:cyan", ms=12, mew=1.5)
            axes.annotate(d.species or "vac", (d.x * 1e9, d.y * 1e9), xytext=(8, 8),
                          textcoords="offset points", color="tab:cyan")
        axes.set_xlabel("x (nm, sample frame)")
        axes.set_ylabel("y (nm)")
    figure.suptitle("One sample, two instruments: ground-truth defects circled")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    kinds = ", ".join(sorted({d.label for d in defects})) or "none"
    return (
        f"first look saved to {path}: TEM 1024² in {tem_seconds:.2f} s, AFM 256² in {afm_seconds:.2f} s, "
        f"{len(defects)} defects in view ({kinds}), mean {np.mean(image.data):.0f} e-/pixel"
    )
