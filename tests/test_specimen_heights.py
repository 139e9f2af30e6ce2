"""Heights an AFM user checks first, measured from topography images: layer steps on either support
against the interlayer distance of graphite, and the moiré corrugation of a twisted bilayer."""

from __future__ import annotations

import numpy as np
import pytest

from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.sample import Window, build_sample
from twin.sample.recipe import build, from_dict

NM = 1e-9
GRAPHITE_INTERLAYER = 3.354e-10  # m: graphite's c/2 (Bernal, Proc. R. Soc. A 106, 749 (1924))
A_GRAPHENE = 2.46e-10
BERNAL_SHIFT = ["1.23 A", f"{2.46 * np.sqrt(3) / 6:.6f} A"]  # (a1 + a2) / 3: AB stacking


def _topography(sample, window: Window, size: int = 128, tip: float = 2 * NM) -> np.ndarray:
    apex, method, _ = AfmInstrument(sample, Clock(0.0), seed=0).topography(window, size, size, tip)
    assert method == "atoms"
    return apex


def _steps(support: dict, left: float) -> object:
    """An unrippled monolayer from ``left`` (m) to ``left`` + 40 nm, with an AB-stacked second layer
    from ``left`` + 10 nm on."""
    x = left / NM
    return build(from_dict({"name": "steps", "support": support, "layers": [
        {"material": "graphene",
         "flakes": [{"shape": "rectangle", "centre": [f"{x + 20} nm", "0 nm"], "size": "20 nm"}]},
        {"material": "graphene", "z": "3.35 A", "shift": BERNAL_SHIFT,
         "flakes": [{"shape": "rectangle", "centre": [f"{x + 25} nm", "0 nm"], "size": "15 nm"}]},
    ]}), seed=1)


def _levels(apex: np.ndarray, window: Window, edges: list[float]) -> list[float]:
    """Median height of the columns between consecutive ``edges`` (m), 2 nm clear of each edge."""
    x = window.x_min + (np.arange(apex.shape[1]) + 0.5) * window.width / apex.shape[1]
    return [float(np.median(apex[:, (x > lo + 2 * NM) & (x < hi - 2 * NM)]))
            for lo, hi in zip(edges, edges[1:], strict=False)]


@pytest.mark.parametrize("support, left", [
    ({"kind": "flat"}, 0.0),
    ({"kind": "holey-carbon", "height": "-3.35 A", "hole_diameter": "1 um", "pitch": "3 um"}, 1.5e-6),
])
def test_monolayer_and_bilayer_steps_measure_the_interlayer_distance_on_either_support(support, left):
    """Across support | monolayer | bilayer, each step is one interlayer distance: 3.35 Å, as graphene
    on graphite or hBN measures (on the film its rough top costs a few tenths of an Å more)."""
    sample = _steps(support, left)
    window = Window.around(left + 5 * NM, 0.0, 30 * NM, 30 * NM)
    apex = _topography(sample, window, 192)
    bare, mono, bi = _levels(apex, window, [window.x_min, left, left + 10 * NM, window.x_max])
    tolerance = 0.15e-10 if support["kind"] == "flat" else 0.4e-10
    assert mono - bare == pytest.approx(GRAPHITE_INTERLAYER, abs=tolerance)
    assert bi - mono == pytest.approx(GRAPHITE_INTERLAYER, abs=0.15e-10)


def test_a_built_in_flake_on_the_flat_support_is_one_interlayer_distance_high():
    """graphene-features (rippled, with defects): the flake's edge steps up by 3.35 Å on average."""
    sample = build_sample("graphene-features", 3)
    flake = sample.layers[0].flakes[0]
    a, b = flake.outline()[0], flake.outline()[1]
    middle, normal = (a + b) / 2, np.array([(a + b)[0], (a + b)[1]]) / np.hypot(*(a + b))
    heights = []
    for along in np.linspace(-300, 300, 5) * NM:  # five places along the edge average the ripples
        tangent = np.array([-normal[1], normal[0]])
        inside = middle + along * tangent - 8 * NM * normal
        outside = middle + along * tangent + 8 * NM * normal
        levels = [np.median(_topography(sample, Window.around(*p, 8 * NM, 8 * NM), 48))
                  for p in (inside, outside)]
        heights.append(levels[0] - levels[1])
    assert np.mean(heights) == pytest.approx(GRAPHITE_INTERLAYER, abs=0.3e-10)


def test_the_description_of_graphene_features_gives_the_flakes_their_real_size():
    sample = build_sample("graphene-features", 0)
    across = [2 * flake.size for flake in sample.layers[0].flakes]  # corner to corner of each hexagon
    assert across == pytest.approx([4e-6, 1e-6])
    assert "4 µm and 1 µm corner to corner" in sample.description


def test_a_twisted_bilayer_shows_its_moire_as_a_height_corrugation():
    """3° twisted bilayer graphene: the top layer's height is modulated with the moiré lattice constant
    a / (2 sin(theta / 2)) = 4.70 nm (Hermann, J. Phys.: Condens. Matter 24, 104029 (2012)), AA sites
    0.25 Å above AB sites (interlayer 3.60 vs 3.35 Å, Uchida et al., PRB 90, 155451 (2014))."""
    recipe = from_dict({"name": "tbg", "rotation": "0 deg", "layers": [
        {"material": "graphene"}, {"material": "graphene", "twist": "3 deg", "z": "3.35 A"}]})
    sample = build(recipe, seed=0)
    size, side = 256, 40 * NM
    window = Window.around(0.0, 0.0, side, side)
    apex = _topography(sample, window, size, tip=1 * NM)
    power = np.abs(np.fft.fftshift(np.fft.fft2(apex - apex.mean()))) ** 2
    k = np.fft.fftshift(np.fft.fftfreq(size, side / size))
    kx, ky = np.meshgrid(k, k)
    radius = np.hypot(kx, ky)
    low = (radius > 0) & (radius < 1 / (1 * NM))  # below the atomic lattice's frequencies
    peak = radius[low][np.argmax(power[low])]
    moire = A_GRAPHENE / (2 * np.sin(np.radians(1.5)))
    assert 2 / (np.sqrt(3) * peak) == pytest.approx(moire, rel=0.05)
    # AA minus AB, from the truth: the lift where lattices coincide (origin) and a third of a cell off
    aa = sample.stacking_lift(1, np.array([0.0]), np.array([0.0]))[0]
    assert aa == pytest.approx(0.25)
    corrugation = np.percentile(apex, 99) - np.percentile(apex, 1)
    assert 0.15e-10 < corrugation < 1.0e-10  # tens of pm, the atoms' own corrugation smoothed by the tip
