# Rehearses: matao1984/ta4D ta4D/src/ta4D/ta4D.py (tilt-averaged diffraction: inside the toolkit's
# blanker_context, calibrate how the diffraction shift (image tilt) and the beam tilt move the pattern on
# the Flucam by stepping each 0.03 from its original value and cross-correlating frames, then step the
# beam tilt around a circle while the diffraction shift holds the pattern still; restore both). The
# source's series is cut to 4 tilts. Written for the twin; only API names and values follow the source.
# twin run: --serve --state diffraction
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import CameraType
from autoscript_tem_toolkit.context_managers import blanker_context

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
deflectors = microscope.optics.deflectors
STEP = 0.03


def grab():
    with blanker_context(microscope.optics.blanker):
        image = microscope.acquisition.acquire_camera_image(camera_detector=CameraType.FLUCAM, size=1024,
                                                            exposure_time=0.1)
    return image


def moved(reference, frame):
    """(x, y) pixels the frame's pattern moved against the reference (phase correlation)."""
    cross = np.fft.fft2(frame) * np.conj(np.fft.fft2(reference))
    peak = np.unravel_index(np.argmax(np.abs(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))), frame.shape)
    rows, columns = (p - n if p > n // 2 else p for p, n in zip(peak, frame.shape, strict=True))
    return np.array([columns, rows], dtype=float)


first = grab()
reference = first.data.astype(float)
pixel_angle = first.metadata.optics.pixel_angle
calibration = {}
for name in ("image_tilt", "beam_tilt"):
    original = getattr(deflectors, name)
    columns = []
    for step in ((STEP, 0.0), (0.0, STEP)):
        setattr(deflectors, name, original + step)
        columns.append(moved(reference, grab().data.astype(float)) / STEP)  # pixels per unit
    setattr(deflectors, name, original)
    calibration[name] = np.array(columns).T
    print(name, "moves the pattern by", calibration[name].round(1).tolist(), "pixels per unit")
assert np.allclose(calibration["image_tilt"], np.eye(2) / pixel_angle, rtol=0.05, atol=2.0)
tilt_original, shift_original = deflectors.beam_tilt, deflectors.image_tilt
compensation = -np.linalg.solve(calibration["image_tilt"], calibration["beam_tilt"])
frames = []
for azimuth in np.radians([0, 90, 180, 270]):
    tilt = 0.005 * np.array([np.cos(azimuth), np.sin(azimuth)])
    deflectors.beam_tilt = tilt_original + tuple(tilt)
    deflectors.image_tilt = shift_original + tuple(compensation @ tilt)
    frame = grab()
    frame.save(f"tilt_{np.degrees(azimuth):03.0f}.tiff")
    frames.append(frame.data.astype(float))
deflectors.beam_tilt, deflectors.image_tilt = tilt_original, shift_original
assert all(np.abs(moved(reference, f)).max() <= 1 for f in frames)  # the pattern held still
print("tilt-averaged pattern", np.mean(frames, axis=0).shape)
print("rehearsal complete")
