# Rehearses: pycroscopy/pyAutoMic TEM/AutoScript/notebooks/drift_correction_AS.ipynb
# (a HAADF reference, a second image, the shift between them by cross-correlation, compensated with the
# beam shift, then a check image). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241")


def shift_between(reference, image):
    """(rows, columns) the image moved against the reference, by FFT cross-correlation."""
    product = np.fft.fft2(reference - reference.mean()) * np.conj(np.fft.fft2(image - image.mean()))
    peak = np.unravel_index(np.argmax(np.abs(np.fft.ifft2(product))), reference.shape)
    return [p - n if p > n // 2 else p for p, n in zip(peak, reference.shape, strict=True)]


reference = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 256, 4e-5).data.astype(float)
later = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 256, 4e-5)
pixel_x = later.metadata.binary_result.pixel_size.x
pixel_y = later.metadata.binary_result.pixel_size.y
rows, columns = shift_between(reference, later.data.astype(float))
old_x, old_y = microscope.optics.deflectors.beam_shift
microscope.optics.deflectors.beam_shift = [old_x + columns * pixel_x, old_y + rows * pixel_y]
check = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 256, 4e-5).data
assert check.shape == (256, 256) and pixel_x > 0
print("shift", rows, columns, "pixels of", pixel_x, "m")
print("rehearsal complete")
