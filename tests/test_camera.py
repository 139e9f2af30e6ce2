"""The cameras as a beamtime user knows them: a scintillator camera's gain, gain noise, point spread and
dark offset, and a direct electron detector in counting mode, measured from flat and dark frames."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from twin.instruments.clock import Clock
from twin.instruments.tem import TemHardware, TemInstrument
from twin.physics.detectors import (
    camera_counts,
    counted_fraction,
    counting_counts,
    modulation_transfer,
    noise_power_ratio,
    point_spread,
    scintillator_light,
)
from twin.sample import build_sample

CETA = TemHardware().camera("BM-Ceta")
FALCON = TemHardware().camera("BM-Falcon")
EDGE = 16  # pixels left out at a frame's border, where the point spread's tail meets the edge


def _ceta_flat(dose: float, size: int = 256, seed: int = 0) -> np.ndarray:
    """A full-resolution (unbinned) Ceta frame of a uniform ``dose`` (electrons per pixel)."""
    rng = np.random.default_rng(seed)
    light = scintillator_light(np.full((size, size), dose), CETA.counts_per_electron, CETA.gain_variance, rng)
    return camera_counts(light, CETA.psf_sigma, CETA.read_noise, rng, tail=CETA.psf_tail,
                         tail_fraction=CETA.psf_tail_fraction, offset=CETA.offset).astype(float)


def _nps(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise power spectrum (counts² per pixel) of a flat frame and the radial frequency (cycles per
    pixel) of each of its points."""
    power = np.abs(np.fft.fft2(frame - frame.mean())) ** 2 / frame.size
    fy, fx = np.meshgrid(np.fft.fftfreq(frame.shape[0]), np.fft.fftfreq(frame.shape[1]), indexing="ij")
    return power, np.hypot(fx, fy)


def _mtf_squared(size: int) -> np.ndarray:
    """|MTF|² of the Ceta's point spread at every frequency of a ``size``² frame (the kernel's transform)."""
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    kernel = point_spread(delta, CETA.psf_sigma, CETA.psf_tail, CETA.psf_tail_fraction)
    return np.abs(np.fft.fft2(np.fft.ifftshift(kernel))) ** 2


@pytest.mark.parametrize("shape", [(256, 256), (61, 200)])
def test_point_spread_is_the_gaussian_filters_it_stands_for(shape):
    """The blur (computed by FFT) against SciPy's Gaussian filters applied along each axis, edges extended
    by their values: the core alone everywhere; core and tail (the core filtered again to the tail's width)
    wherever the two filters' edge handling agrees, more than their joint reach from the border."""
    image = np.random.default_rng(5).gamma(50.0, 2.0, shape)
    core, tail, fraction = CETA.psf_sigma, CETA.psf_tail, CETA.psf_tail_fraction
    blurred = ndimage.gaussian_filter(image, core, mode="nearest")
    np.testing.assert_allclose(point_spread(image, core), blurred, rtol=1e-5)
    wide = ndimage.gaussian_filter(blurred, np.sqrt(tail**2 - core**2), mode="nearest")
    expected = (1 - fraction) * blurred + fraction * wide
    inner = (slice(EDGE + 4, -EDGE - 4),) * 2
    np.testing.assert_allclose(point_spread(image, core, tail, fraction)[inner], expected[inner], rtol=1e-5)


def test_a_direct_beam_leaves_no_stripes_through_the_blur():
    """A diffraction pattern's direct beam (1e9 counts a pixel on 10): beyond the point spread's reach
    (its taps end 18 pixels out), its row and column keep the background, as SciPy's filters give it."""
    frame = np.full((512, 512), 10.0)
    frame[250:256, 250:256] = 1e9
    blurred = point_spread(frame, CETA.psf_sigma, CETA.psf_tail, CETA.psf_tail_fraction)
    far = np.abs(np.arange(512) - 253) > 24
    np.testing.assert_allclose(blurred[253, far], 10.0, atol=0.01)
    np.testing.assert_allclose(blurred[far, 253], 10.0, atol=0.01)


def test_scintillator_camera_gain_and_gain_noise_from_a_flat_exposure():
    """Scintillator 4k cameras give ~10 counts per primary electron at 200-300 kV (Faraday-cup
    calibrations: 9.9 counts/e for a Titan 4k camera, 10.5 for a CCD), with excess noise from each
    electron's varying light yield (Grob et al., Ultramicroscopy 133 (2013)). A flat frame then has
    variance = gain x (1 + relative gain variance) x noise transfer of the point spread x signal + read
    noise²."""
    dose = 200.0
    counts = _ceta_flat(dose)[EDGE:-EDGE, EDGE:-EDGE]
    gain = (counts.mean() - CETA.offset) / dose
    assert gain == pytest.approx(10.0, rel=0.01)  # the literature's ~10 counts per electron
    transfer = noise_power_ratio(CETA.psf_sigma, CETA.psf_tail, CETA.psf_tail_fraction)
    expected = CETA.counts_per_electron * (1 + CETA.gain_variance) * transfer
    ratio = (counts.var() - CETA.read_noise**2) / (counts.mean() - CETA.offset)
    assert ratio == pytest.approx(expected, rel=0.05)
    assert 1.5 < ratio < 2.2  # measured 1.85: not the ideal camera's 1, nor the gain of 10


def test_scintillator_noise_power_spectrum_falls_as_the_mtf_squared():
    """A flat exposure's noise power spectrum is the shot noise's white spectrum times |MTF|² (plus
    white read noise). Ceta-class scintillator cameras have an MTF of roughly 0.1-0.2 at the full
    frame's Nyquist frequency; the twin's point spread gives 0.15 there."""
    mtf_nyquist = float(modulation_transfer(0.5, CETA.psf_sigma, CETA.psf_tail, CETA.psf_tail_fraction))
    assert 0.1 < mtf_nyquist < 0.2
    dose, size = 200.0, 512
    power = np.mean([_nps(_ceta_flat(dose, size, seed))[0] for seed in range(3)], axis=0)
    mtf2 = _mtf_squared(size)
    f = np.abs(np.fft.fftfreq(size))
    near, far = np.minimum.outer(f, f) <= 0.05, np.maximum.outer(f, f)  # along an axis; the larger part
    low = (np.hypot.outer(f, f) > 0.01) & (np.hypot.outer(f, f) < 0.05)
    nyquist = near & (far >= 0.45)
    white = CETA.counts_per_electron**2 * (1 + CETA.gain_variance) * dose
    expected = white * mtf2 + CETA.read_noise**2
    assert power[low].mean() == pytest.approx(expected[low].mean(), rel=0.05)
    measured_ratio = power[nyquist].mean() / power[low].mean()
    assert measured_ratio == pytest.approx(expected[nyquist].mean() / expected[low].mean(), rel=0.1)
    assert measured_ratio < 0.06  # falls more than 15-fold toward Nyquist (the ideal camera: flat)


def test_scintillator_dqe_at_low_frequency_is_the_swank_factor():
    """DQE(f) = MTF(f)² mean² / (NPS(f) dose) from a flat frame; near zero frequency it is the Swank
    factor 1 / (1 + relative gain variance) = 0.67, a scintillator's DQE(0) well below 1 (McMullan et
    al., Ultramicroscopy 109 (2009) 1126: scintillator cameras about 0.3-0.7 at 120-300 kV)."""
    dose, size = 200.0, 512
    frame = _ceta_flat(dose, size, seed=3)
    power, radius = _nps(frame)
    chosen = (radius > 0.01) & (radius < 0.03)
    signal = frame.mean() - CETA.offset
    dqe = float(_mtf_squared(size)[chosen].mean() * signal**2 / (power[chosen].mean() * dose))
    assert dqe == pytest.approx(1 / (1 + CETA.gain_variance), rel=0.06)
    assert 0.3 < dqe < 0.8


def test_dark_frame_sits_on_the_offset_with_read_noise_unclipped():
    """A blanked-beam Ceta frame through the instrument: mean at the dark offset (100 counts, as CMOS
    cameras add a bias), spread of the read noise (5 counts, 0.5 e rms), no pixel clipped at 0, and the
    offset and gain in the metadata."""
    instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=1)
    instrument.set("optics.beam_blanked", True)
    frame = instrument.acquire_camera_image("BM-Ceta", 256, 1.0)
    dark = frame["data"].astype(float)
    result = frame["metadata"]["binary_result"]
    assert result["offset"] == 100.0 and result["counts_per_electron"] == 10.0
    assert dark.mean() == pytest.approx(result["offset"], abs=0.1)
    assert dark.std() == pytest.approx(result["read_noise"], rel=0.02)
    assert (dark == 0).sum() == 0 and dark.min() > 50


def test_counting_detector_is_poisson_with_a_flat_noise_power_spectrum():
    """A direct electron detector in counting mode records each detected electron as one count: about
    0.9 counts per primary electron at low dose rate (K2 counted mode's sensitivity, Leginon's notes;
    Falcon 4 counting DQE(0) ~0.9 at 300 kV), variance / mean 1, a flat noise power spectrum (a
    point-like single-electron response) and DQE(0) = 0.9."""
    dose, exposure, size = 4.0, 1.0, 512  # 4 e/pixel/s: the low dose rates counting is used at
    rng = np.random.default_rng(5)
    frame = counting_counts(np.full((size, size), dose), exposure, 1, FALCON.counts_per_electron,
                            FALCON.dead_time, rng).astype(float)
    assert frame.mean() / dose == pytest.approx(0.9 * float(counted_fraction(dose, 1.0, FALCON.dead_time)
                                                            / counted_fraction(dose, 1.0, 0.0)), rel=0.01)
    assert frame.var() / frame.mean() == pytest.approx(1.0, abs=0.02)
    power, radius = _nps(frame)
    low, high = power[(radius > 0.01) & (radius < 0.1)].mean(), power[radius > 0.45].mean()
    assert high / low == pytest.approx(1.0, abs=0.05)  # flat: no point spread
    dqe = frame.mean() ** 2 / (low * dose)
    assert dqe == pytest.approx(0.9, abs=0.05)


def test_counting_loses_events_at_high_dose_rate():
    """Coincidence loss of a counting detector: the non-paralysable law m = n / (1 + n tau); at the
    8 e/pixel/s often recommended for Falcon/K2 counting a few to ~10 % of electrons are lost, and at
    100 e/pixel/s over half."""
    loss = {rate: 1 - float(counted_fraction(rate, FALCON.counts_per_electron, FALCON.dead_time)
                            / FALCON.counts_per_electron) for rate in (1.0, 8.0, 100.0)}
    assert loss[1.0] < 0.02 and 0.03 < loss[8.0] < 0.12 and loss[100.0] > 0.5
    rng = np.random.default_rng(2)
    frame = counting_counts(np.full((128, 128), 100.0), 1.0, 1, FALCON.counts_per_electron, FALCON.dead_time,
                            rng)
    assert frame.mean() / 100.0 == pytest.approx(0.9 * (1 - loss[100.0]), rel=0.02)


def test_the_counting_camera_through_the_instrument():
    """BM-Falcon selected like any camera: counts with no offset, no read noise, variance / mean 1."""
    instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=1)
    instrument.settings.set("optics.magnification", 20_000.0)
    instrument.set("optics.spot_size_index", 11)  # a low dose rate, as counting needs
    frame = instrument.acquire_camera_image("BM-Falcon", 256, 0.1)
    result = frame["metadata"]["binary_result"]
    assert result["camera_type"] == "counting" and result["offset"] == 0.0
    counts = frame["data"].astype(float)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.05)
    instrument.set("optics.beam_blanked", True)
    assert not instrument.acquire_camera_image("BM-Falcon", 256, 0.1)["data"].any()


def test_a_script_converts_counts_to_electrons_with_the_metadata(microscope):
    """Through the client, as a beamtime script would: electrons per pixel = (counts - offset) /
    counts_per_electron agrees with the dose the metadata reports on the Ceta; on the Falcon (chosen
    with get_camera_detector(CameraType.BM_FALCON)) it falls short by the coincidence loss of the
    dose rate per sensor pixel, m = n / (1 + n tau)."""
    from clients.tem.enumerations import CameraType

    falcon = microscope.detectors.get_camera_detector(CameraType.BM_FALCON)
    assert falcon.name == "BM-Falcon" and falcon.exposure_time_limits.min == 4e-3
    assert "BM-Falcon" in microscope.detectors.camera_detectors
    optics = microscope.optics
    magnification, spot = optics.magnification.value, optics.spot_size_index
    optics.magnification.value = 20_000.0  # a uniform film
    optics.spot_size_index = 9  # a few e per sensor pixel per second on the Falcon
    size, exposure = 512, 1.0
    try:
        for camera in (CameraType.BM_CETA, CameraType.BM_FALCON):
            image = microscope.acquisition.acquire_camera_image(camera, size, exposure)
            result = image.metadata.binary_result
            electrons = (image.data.astype(float).mean() - result.offset) / result.counts_per_electron
            dose = image.metadata.optics.dose_per_area * result.pixel_size.x**2
            expected = 1.0
            if result.camera_type == "counting":
                rate = dose / exposure / (FALCON.pixels // size) ** 2
                expected = float(counted_fraction(rate, FALCON.counts_per_electron, FALCON.dead_time)
                                 / FALCON.counts_per_electron)
                assert 0.8 < expected < 0.95, rate
            assert electrons / dose == pytest.approx(expected, rel=0.01), camera
    finally:
        optics.magnification.value, optics.spot_size_index = magnification, spot
