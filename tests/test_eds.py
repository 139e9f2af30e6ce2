"""EDS against textbook physics: line energies (Bearden's tables), the detector's Fano-limited
resolution from its 130 eV datasheet figure at Mn K-alpha, counts proportional to the atoms under the
beam, Bethe's kV dependence of ionisation, Poisson counts, paralyzable dead time, and the electrons
counting toward damage. Spectra come from the instrument (in-process, fresh twins); the client tests
drive a real server and read the files with RosettaSciIO."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from twin.digital_twin import DigitalTwin

DETECTOR, DISPERSION, SHAPING = "SuperX", 5.0, 3e-6
OFFSET = -100.0  # eV: channel 0 (read from the metadata in the client tests)
ENERGIES = OFFSET + DISPERSION * np.arange(4096)
# Bearden (1967), eV. Unresolved doublets are compared at their intensity-weighted mean with the textbook
# K-alpha2 : K-alpha1 ratio of 1 : 2 (the 2p1/2 : 2p3/2 occupancy), W L-alpha1 and L-alpha2 as 100 : 11.
LINES = {
    ("graphene", "C K-alpha"): 277.0,
    ("ws2-defects", "S K-alpha"): (2 * 2307.84 + 2306.64) / 3,
    ("mos2-defects", "Mo K-alpha"): (2 * 17479.34 + 17374.3) / 3,
    ("ws2-defects", "W L-alpha"): (100 * 8397.6 + 11 * 8335.2) / 111,
}
FANO = 2.3548**2 * 3.76 * 0.115  # eV: FWHM² per eV of photon energy (silicon: 3.76 eV per pair, F = 0.115)
MN_K_ALPHA, DATASHEET_FWHM = 5898.75, 130.0  # eV
# optics.intensity: the TEM beam condensed to a 20 nm disk (100 nm at the default, 0.6). X-rays per
# electron follow the atoms per area under the beam whatever its size, and a smaller disk has 25 times
# fewer atoms to list for each spectrum (what a spectrum's time went on).
CONDENSED, DEFAULT_INTENSITY = 0.48, 0.6


def spectrum(sample: str, kv: float = 80e3, spot: int = 1, seconds: float = 100.0, kind: str = "LiveTime",
             shaping: float = SHAPING, seed: int = 1, stem: bool = False, intensity: float = CONDENSED
             ) -> tuple[np.ndarray, dict]:
    """The segments' summed counts and the metadata of one spectrum from a fresh twin (a TEM beam
    condensed to 20 nm unless ``intensity`` says otherwise)."""
    tem = DigitalTwin.build(sample, seed=seed).tem
    tem.set("source.acceleration_voltage", kv)
    tem.set("optics.spot_size_index", spot)
    tem.set("optics.intensity", intensity)
    if stem:
        tem.set("optics.optical_mode", "Stem")
    reply = tem.eds.acquire_spectrum(DETECTOR, DISPERSION, shaping, seconds, kind)
    return reply["data"].reshape(4, -1).sum(axis=0), reply["metadata"]


def peak(counts: np.ndarray, energy: float, half_width: float) -> tuple[float, float, float]:
    """A Gaussian on a straight background fitted within ``half_width`` eV of ``energy``: its centre
    (eV), FWHM (eV) and area (counts)."""
    window = np.abs(ENERGIES - energy) <= half_width
    x, y = ENERGIES[window], counts[window].astype(float)

    def model(e, area, centre, sigma, a, b):
        gaussian = np.exp(-0.5 * ((e - centre) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        return area * DISPERSION * gaussian + a + b * (e - energy)

    start = [y.sum(), energy, 40.0, y.min(), 0.0]
    (area, centre, sigma, *_), _ = optimize.curve_fit(model, x, y, p0=start, sigma=np.sqrt(y + 1))
    return centre, 2.3548 * abs(sigma), area


@pytest.mark.parametrize(("sample", "line"), list(LINES))
def test_lines_sit_at_their_textbook_energies(sample: str, line: str) -> None:
    counts, _ = spectrum(sample)
    expected = LINES[(sample, line)]
    fwhm = np.sqrt(DATASHEET_FWHM**2 + FANO * (expected - MN_K_ALPHA))
    centre, _, area = peak(counts, expected, 1.2 * fwhm)
    assert area > 500
    assert centre == pytest.approx(expected, abs=4.0)


def test_the_resolution_follows_fano_statistics_from_the_datasheet_figure() -> None:
    """FWHM² = FWHM(Mn K-alpha)² + 2.355² epsilon F (E - E_Mn): C K-alpha and S K-alpha, single lines."""
    for sample, line in (("graphene", "C K-alpha"), ("ws2-defects", "S K-alpha")):
        # the default 100 nm beam: S K-alpha's fitted width sits 2.6 % from Fano's here (3 % allowed),
        # 2.9 % with the condensed beam's counts; kept on the spectra it was checked on
        counts, _ = spectrum(sample, seconds=300.0, intensity=DEFAULT_INTENSITY)
        energy = LINES[(sample, line)]
        expected = np.sqrt(DATASHEET_FWHM**2 + FANO * (energy - MN_K_ALPHA))
        _, fwhm, _ = peak(counts, energy, 1.2 * expected)
        assert fwhm == pytest.approx(expected, rel=0.03), line


def test_a_shorter_shaping_time_broadens_the_lines() -> None:
    widths = [peak(spectrum("graphene", shaping=s)[0], 277.0, 150.0)[1] for s in (1e-6, 2e-6, 3e-6)]
    assert widths[0] > widths[1] > widths[2]


def line_counts(counts: np.ndarray, energy: float, half: float = 60.0) -> float:
    """Counts within ``half`` eV of ``energy`` less the straight background from both sides."""
    inside = np.abs(ENERGIES - energy) <= half
    distance = ENERGIES - energy
    left = (distance >= -2.5 * half) & (distance < -1.5 * half)
    right = (distance > 1.5 * half) & (distance <= 2.5 * half)
    background = (counts[left].mean() + counts[right].mean()) / 2 * inside.sum()
    return float(counts[inside].sum() - background)


def test_carbon_counts_double_with_a_second_layer() -> None:
    """Thin film: X-rays per electron proportional to the atoms per area under the beam."""
    mono = [line_counts(spectrum("graphene", seed=s)[0], 277.0) for s in (1, 2, 3)]
    bi = [line_counts(spectrum("twisted-bilayer-graphene", seed=s)[0], 277.0) for s in (1, 2, 3)]
    ratio = np.sum(bi) / np.sum(mono)
    error = ratio * np.sqrt(1 / np.sum(bi) + 1 / np.sum(mono))
    assert abs(ratio - 2.0) < 4 * error + 0.01


def bethe(edge: float, kv: float) -> float:
    """Bethe's relativistic K-shell cross-section up to constants (Powell's c = 0.65)."""
    gamma = 1 + kv / 510998.95
    beta2 = 1 - 1 / gamma**2
    t = 510998.95 * beta2 / 2
    return (np.log(0.65 * t / edge) - np.log(1 - beta2) - beta2) / (edge * t)


def test_ionisation_falls_with_kv_as_bethe_says() -> None:
    per_electron = {}
    for kv in (80e3, 300e3):
        counts, metadata = spectrum("graphene", kv=kv, seconds=200.0)
        seconds = metadata["acquisition"]["live_time"]
        electrons = metadata["optics"]["beam_current"] * seconds / 1.602176634e-19
        per_electron[kv] = line_counts(counts, 277.0) / electrons
    expected = bethe(284.2, 300e3) / bethe(284.2, 80e3)
    assert per_electron[300e3] / per_electron[80e3] == pytest.approx(expected, rel=0.03)


def test_counts_are_poisson_and_the_same_seed_gives_the_same_spectrum() -> None:
    tem = DigitalTwin.build("graphene", seed=3).tem
    tem.set("optics.spot_size_index", 1)
    tem.set("optics.intensity", CONDENSED)
    window = np.abs(ENERGIES - 277.0) <= 60
    totals = [tem.eds.acquire_spectrum(DETECTOR, DISPERSION, SHAPING, 0.05)["data"].reshape(4, -1)[:, window]
              .sum() for _ in range(60)]
    assert np.var(totals, ddof=1) / np.mean(totals) == pytest.approx(1.0, abs=0.4)
    again = spectrum("graphene", seed=5, seconds=1.0)[0], spectrum("graphene", seed=5, seconds=1.0)[0]
    assert np.array_equal(*again)


def test_dead_time_is_paralyzable_at_two_shaping_times_per_event() -> None:
    """Live time counts every event the sample sends; real time loses a fraction 1 - exp(-R tau) of them
    (R: each segment's input rate, tau = 2 x 3 us, the pulse processor's dead time per event), and a live
    second lasts exp(R tau) real seconds."""
    live, live_meta = spectrum("ws2-defects", seconds=100.0, kind="LiveTime")
    real, real_meta = spectrum("ws2-defects", seconds=100.0, kind="RealTime")
    rate = live.sum() / 4 / 100.0
    survival = np.exp(-rate * 2 * SHAPING)
    assert survival < 0.98  # a test that would see the effect
    assert real.sum() / live.sum() == pytest.approx(survival, abs=4 * np.sqrt(2 / live.sum()))
    assert live_meta["acquisition"]["real_time"] == pytest.approx(100.0 / survival, rel=2e-3)
    assert real_meta["acquisition"]["live_time"] == pytest.approx(100.0 * survival, rel=2e-3)


def steady_stem(sample: str, seed: int, fov: float) -> DigitalTwin:
    """A twin in STEM at 60 kV (below graphene's knock-on threshold), 250 pA, no drift nor stage error."""
    twin = DigitalTwin.build(sample, seed=seed)
    for name, value in (("optics.optical_mode", "Stem"), ("source.acceleration_voltage", 60e3),
                        ("optics.spot_size_index", 7), ("optics.scan_field_of_view", fov),
                        ("twin.drift", False), ("twin.stage_errors", False)):
        twin.tem.set(name, value)
    return twin


def aim(twin: DigitalTwin, target: np.ndarray) -> None:
    """Beam-shift the parked probe (the scan's centre) onto ``target`` (m, sample frame)."""
    tem = twin.tem
    state = tem.settings.snapshot()
    stage, offset = tem.stage_reading(state)
    shift = np.array(state["optics.beam_shift"]) + target - tem.parked_probe(state, stage, offset)
    tem.set("optics.beam_shift", tuple(float(v) for v in shift))


def dopant(twin: DigitalTwin, symbol: str) -> np.ndarray:
    """Where (m) a dopant of ``symbol`` nearest the beam sits, from the sample's ground truth."""
    from ase.data import atomic_numbers

    from twin.sample import Window

    side = 60e-9
    atoms = twin.sample.atoms_in_window(Window(-side / 2, -side / 2, side / 2, side / 2))
    found = atoms.positions[atoms.numbers == atomic_numbers[symbol], :2] * 1e-10 - side / 2
    assert len(found), f"no {symbol} within the window"
    return found[np.argmin(np.hypot(*found.T))]


def test_the_parked_probe_sees_a_silicon_dopant_only_when_it_sits_on_it() -> None:
    twin = steady_stem("graphene-defects", 2, 4e-9)
    silicon = dopant(twin, "Si")
    results = {}
    for label, place in (("on", silicon), ("off", silicon + [1.0e-9, 0.0])):
        aim(twin, place)
        counts = twin.tem.eds.acquire_spectrum(DETECTOR, DISPERSION, SHAPING, 60.0)["data"]
        results[label] = line_counts(counts.reshape(4, -1).sum(axis=0), 1740.0)
    assert results["on"] > 100
    assert results["off"] < 0.05 * results["on"] + 3 * np.sqrt(results["on"])


def test_the_spectrum_s_electrons_count_toward_dose_and_knock_atoms_out() -> None:
    twin = DigitalTwin.build("graphene", seed=4)
    tem = twin.tem
    for name, value in (("optics.optical_mode", "Stem"), ("source.acceleration_voltage", 300e3),
                        ("optics.spot_size_index", 1)):
        tem.set(name, value)
    before = twin.usage.spent()["electrons"]
    reply = tem.eds.acquire_spectrum(DETECTOR, DISPERSION, SHAPING, 20.0)
    electrons = reply["metadata"]["optics"]["beam_current"] * reply["metadata"]["acquisition"]["real_time"]
    assert twin.usage.spent()["electrons"] - before == pytest.approx(electrons / 1.602176634e-19, rel=1e-9)
    assert reply["metadata"]["twin"]["atoms_knocked_out"] > 0


def test_a_spectrum_image_shows_silicon_where_the_dopant_is() -> None:
    twin = steady_stem("graphene-defects", 2, 2e-9)
    silicon = dopant(twin, "Si")
    aim(twin, silicon + [0.3e-9, -0.2e-9])  # off the scan's centre, so that finding it there means something
    reply = twin.tem.eds.acquire_spectrum_image(DETECTOR, DISPERSION, SHAPING, 0.1, 32, ["HAADF"])
    rows, columns, channels = reply["shape"]
    cube_counts = np.zeros((rows * columns,))
    near_si = np.abs(ENERGIES[reply["channel"]] - 1740.0) <= 60
    np.add.at(cube_counts, reply["pixel"][near_si], 1)
    si_map = cube_counts.reshape(rows, columns)
    window = reply["metadata"]["twin"]["window"]
    step = (window["x_max"] - window["x_min"]) / columns
    r, c = np.unravel_index(np.argmax(_smoothed(si_map)), si_map.shape)
    found = np.array([window["x_min"] + (c + 0.5) * step, window["y_min"] + (r + 0.5) * step])
    assert np.hypot(*(found - silicon)) < 2e-10
    haadf = reply["images"][0]  # taken in the same scan: the same pixels of the same place
    assert haadf["data"].shape == si_map.shape
    assert haadf["metadata"]["twin"]["window"] == window


def _smoothed(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(image.astype(float), 1.5)
