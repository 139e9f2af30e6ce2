"""The camera's fast samplers against the distributions they stand for (SciPy's), against NumPy's own
samplers, and for reproducibility: a frame is a function of the generator's state alone."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import stats

from twin.physics import random_draws
from twin.physics.detectors import gain_draw, shot_noise

DRAWS = 200_000


def _chi_square_p(draws: np.ndarray, mean: float) -> float:
    """Pearson's chi-square p-value of whole-number ``draws`` against Poisson(``mean``), counts binned
    so that every bin expects at least 20 draws (the tails pooled into the end bins)."""
    dist = stats.poisson(mean)
    low, high = int(dist.ppf(1e-4)), int(dist.isf(1e-4))
    edges = np.arange(low, high + 1)
    observed = np.array([np.sum(draws <= low)] + [np.sum(draws == k) for k in edges[1:-1]]
                        + [np.sum(draws >= high)])
    expected = len(draws) * np.diff(np.concatenate([[0.0], dist.cdf(edges[:-1]), [1.0]]))
    keep = expected >= 20
    observed = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    return float(stats.chisquare(observed, expected).pvalue)


@pytest.mark.parametrize("mean", [0.04, 0.7, 3.3, 17.2, 140.6, 2500.3])
def test_table_draws_are_poisson(mean):
    """A flat frame of each mean (table steps 1/8 to 2 electrons, the thinned fraction in every one):
    Pearson's chi-square against Poisson(mean), and the mean and variance within 5 standard errors."""
    rng = np.random.default_rng(3)
    draws = random_draws.poisson_by_tables(np.full((DRAWS // 500, 500), mean), rng)
    assert draws is not None and draws.dtype == np.float32
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    assert _chi_square_p(draws.ravel(), mean) > 1e-3
    assert draws.mean() == pytest.approx(mean, abs=5 * np.sqrt(mean / DRAWS))
    assert draws.var() == pytest.approx(mean, abs=5 * mean * np.sqrt(2 / DRAWS) + 5 * np.sqrt(mean / DRAWS))


def test_a_frame_of_varying_means_is_poisson_pixel_by_pixel():
    """A frame of means 9 to 25 (many tables): in its upper half a smooth image, whose standardised
    residuals (n - λ)/√λ have mean 0 and variance 1; in its lower half three means in turn, whose pixels
    each follow their Poisson distribution."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[:256, :512]
    levels = (9.5, 17.0, 24.5)
    means = np.concatenate([17.0 + 8.0 * np.sin(x / 9.0) * np.cos(y / 13.0), np.take(levels, x % 3)])
    draws = random_draws.poisson_by_tables(means, rng)
    residual = ((draws - means) / np.sqrt(means))[:256]
    assert residual.mean() == pytest.approx(0.0, abs=5 / np.sqrt(residual.size))
    assert residual.var() == pytest.approx(1.0, abs=5 * np.sqrt(2 / residual.size))
    for level in levels:
        assert _chi_square_p(draws[256:][means[256:] == level], level) > 1e-3


def test_wide_frames_are_left_to_numpy_and_still_poisson():
    """A diffraction-like frame (means 0.01 to 10⁶) needs too many tables: the table sampler declines
    without touching the generator, and shot noise draws it all the same."""
    rng = np.random.default_rng(5)
    means = np.geomspace(0.01, 1e6, 64 * 64).reshape(64, 64)
    state = rng.bit_generator.state
    assert random_draws.poisson_by_tables(means, rng) is None
    assert rng.bit_generator.state == state
    draws = shot_noise(np.repeat(means[None], 50, axis=0), rng)
    residual = (draws - means) / np.sqrt(means)
    assert residual.var() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("gain_variance", [0.5, 3.0])
def test_scintillator_light_is_numpys_compound_poisson_gamma(gain_variance):
    """The light of Poisson electrons with gamma yields, drawn in one pass, against the same compound
    drawn by NumPy (Poisson, then one gamma draw per pixel: :func:`gain_draw`), by a two-sample
    Kolmogorov-Smirnov test, and its mean and variance against λ g and λ g² (1 + v). A gain variance of 3
    gives a single electron a gamma shape below 1."""
    mean, gain = 2.3, 10.0
    means = np.full((DRAWS // 500, 500), mean)
    light = random_draws.scintillator_light(means, gain, gain_variance, np.random.default_rng(6))
    electrons = np.random.default_rng(7).poisson(means)
    reference = gain_draw(electrons, gain, gain_variance, np.random.default_rng(8))
    assert stats.ks_2samp(light.ravel(), reference.ravel()).pvalue > 1e-3
    variance = mean * gain**2 * (1 + gain_variance)
    assert light.mean() == pytest.approx(mean * gain, abs=5 * np.sqrt(variance / DRAWS))
    assert light.var() == pytest.approx(variance, rel=0.05)


def test_a_bright_flat_frame_draws_in_memory_of_its_own_size():
    """3 x 10⁸ electrons a pixel (a flat beam, one table): the light's mean and variance as the compound
    gives them, and the memory the draw holds bounded by the frame and one table (a few MB), not by the
    number of electrons."""
    mean, gain, variance_ratio = 3e8, 10.0, 0.5
    means = np.full((128, 128), mean)
    tracemalloc.start()
    light = random_draws.scintillator_light(means, gain, variance_ratio, np.random.default_rng(13))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20
    light, variance = light.astype(float), mean * gain**2 * (1 + variance_ratio)
    assert light.mean() == pytest.approx(mean * gain, abs=5 * np.sqrt(variance / light.size))
    assert light.var() == pytest.approx(variance, rel=5 * np.sqrt(2 / light.size))


def test_read_noise_is_gaussian():
    """Read-out noise (the ziggurat) of 1000 counts rms, so that rounding is negligible: normal by
    Kolmogorov-Smirnov, with its tails (beyond the ziggurat's base layer, 3.44 σ) as often as they
    should be."""
    signal = np.full((DRAWS // 500, 500), 50_000.0)
    counts = random_draws.read_out(signal, 1000.0, 0.0, 10**9, np.random.default_rng(9))
    z = ((counts - 50_000.0) / 1000.0).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    beyond = np.mean(np.abs(z) > 3.44)
    assert beyond == pytest.approx(2 * stats.norm.sf(3.44), rel=5 / np.sqrt(DRAWS * 2 * stats.norm.sf(3.44)))


def test_read_out_rounds_and_clips():
    """Whole counts within [0, most]; no noise leaves the signal plus offset rounded."""
    rng = np.random.default_rng(10)
    counts = random_draws.read_out(np.array([[-50.0, 10.4, 10.6, 70_000.0]]), 0.0, 2.0, 65535, rng)
    assert counts.tolist() == [[0.0, 12.0, 13.0, 65535.0]]


def test_a_frame_is_a_function_of_the_generator_alone(monkeypatch):
    """The same generator state gives the same bits whether the rows are drawn on two threads or on the
    calling thread, and the next frame differs."""
    means = np.random.default_rng(11).uniform(5.0, 30.0, (300, 300))

    def draw() -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(12)
        return (random_draws.poisson_by_tables(means, rng),
                random_draws.scintillator_light(means, 10.0, 0.5, rng),
                random_draws.read_out(means, 5.0, 100.0, 65535, rng),
                random_draws.poisson_by_tables(means, rng))

    threaded = draw()
    monkeypatch.setattr(random_draws, "_PARALLEL_FROM", 10**9)
    single = draw()
    for a, b in zip(threaded, single, strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(threaded[0], threaded[3])
