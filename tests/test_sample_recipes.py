"""Declarative samples: YAML recipes, layers (twisted bilayers, CIF slabs), flakes and extended
features, each checked against the geometry it must have."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from scipy import ndimage
from scipy.spatial import cKDTree

from twin.sample import Window, build_sample
from twin.sample.catalog import BUILT_IN, recipe_for
from twin.sample.recipe import build, from_dict, load

NM = 1e-9


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_built_in_round_trips_through_yaml(name, tmp_path):
    recipe = recipe_for(name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(recipe.to_yaml())
    assert load(path) == recipe
    assert from_dict(recipe.to_dict()) == recipe


def test_units_in_sample_files_are_converted_to_si(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("""
layers:
  - material: MoS2
    twist: 30 deg
    z: 2 A
    defects:
      - {kind: pore, density: 0.5 um^-2, size: [1 nm, 2 nm]}
    flakes:
      - {shape: disc, centre: [1 um, -2 um], size: 500 nm}
""")
    recipe = load(path)
    assert recipe.name == "mine"
    layer = recipe.layers[0]
    assert layer.twist == pytest.approx(np.pi / 6) and layer.z == pytest.approx(2e-10)
    assert layer.defects[0].density == pytest.approx(0.5e12) and layer.defects[0].size == (1e-9, 2e-9)
    assert layer.flakes[0].centre == (1e-6, -2e-6) and layer.flakes[0].size == pytest.approx(5e-7)


@pytest.mark.parametrize("written, kind, si", [
    ("0.01 1/nm^2", "density", 1e16), ("0.01 nm-2", "density", 1e16), ("0.01 nm**-2", "density", 1e16),
    ("3 angstrom", "length", 3e-10), ("1.5 micrometer", "length", 1.5e-6),
    ("2 degree", "angle", np.radians(2)), ("0.3 kilovolt", "voltage", 300.0), ("2 ms", "time", 2e-3),
])
def test_any_unit_expression_of_the_right_kind_is_read(written, kind, si):
    """Spellings beyond the usual table go through pint (``A`` stays the ångström)."""
    from twin.sample.units import quantity

    assert quantity("field", written, kind) == pytest.approx(si, rel=1e-12)


def test_a_unit_of_the_wrong_kind_is_refused_naming_the_field():
    from twin.sample.units import quantity

    with pytest.raises(ValueError, match=r"layers\[0\].z = '3 s' is not a length"):
        quantity("layers[0].z", "3 s", "length")


@pytest.mark.parametrize(("text", "message"), [
    ("layers: [{material: graphite}]", "layers\\[0\\].material = 'graphite' is not known; allowed: graphene"),
    ("layers: [{material: graphene, twist: 3 parsecs}]", "layers\\[0\\].twist = '3 parsecs' is not a angle"),
    ("layers: [{material: graphene, colour: red}]", "layers\\[0\\] has unknown keys colour"),
    ("layers: [{defects: [{kind: pore, density: 1}]}]", "a pore needs a size range"),
    ("layers: [{defects: [{kind: substitution, density: 1}]}]", "a substitution needs a species"),
    ("layers: []", "sample layers = \\[\\]: give a list of at least one layer"),
])
def test_bad_sample_files_name_the_field_and_what_is_allowed(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as refused:
        load(path)
    assert str(path) in str(refused.value)  # which file, for a server given several


def test_the_same_seed_gives_the_same_atoms_and_another_seed_does_not():
    window = Window(-5 * NM, -5 * NM, 5 * NM, 5 * NM)
    first, again, other = (build_sample("graphene-features", s).atoms_in_window(window) for s in (3, 3, 4))
    assert np.array_equal(first.numbers, again.numbers)
    assert np.array_equal(first.positions, again.positions)
    assert len(first) != len(other) or not np.array_equal(first.positions, other.positions)


def test_a_twisted_bilayer_shows_a_moire_of_period_a_over_two_sin_half_theta():
    """AA-stacked spots (an upper atom right above a lower one) repeat with the moiré period."""
    sample = build_sample("twisted-bilayer-graphene", 1)
    theta, a = np.radians(3.0), sample.crystal.a
    atoms = sample.atoms_in_window(Window(0.0, 0.0, 30 * NM, 30 * NM))
    layer, sublattice = atoms.arrays["site"][:, 0], atoms.arrays["site"][:, 3]
    aa = []
    for b in (0, 1):  # AA: each upper atom over a lower one of its own sublattice (AB/BA: the other)
        lower = atoms.positions[(layer == 0) & (sublattice == b), :2]
        upper = atoms.positions[(layer == 1) & (sublattice == b), :2]
        distance, _ = cKDTree(lower).query(upper)
        aa.append(upper[distance < 0.25])  # Å: in registry
    aa = np.concatenate(aa)
    image = np.zeros((300, 300))
    np.add.at(image, tuple(np.clip((aa[:, ::-1] / 1.0).astype(int), 0, 299).T), 1.0)
    smooth = ndimage.gaussian_filter(image, 4)
    peaks = (smooth == ndimage.maximum_filter(smooth, 15)) & (smooth > 0.3 * smooth.max())
    centres = np.argwhere(peaks)[:, ::-1].astype(float)
    inner = centres[np.all((centres > 20) & (centres < 280), axis=1)]
    spacing, _ = cKDTree(centres).query(inner, k=2)
    assert len(inner) > 10
    assert np.median(spacing[:, 1]) == pytest.approx(a / (2 * np.sin(theta / 2)), rel=0.03)


def test_a_cif_slab_keeps_the_crystal_lattice_and_composition(tmp_path):
    cif = tmp_path / "NaCl.cif"
    bulk("NaCl", "rocksalt", a=5.64).write(cif)
    path = tmp_path / "salt.yaml"
    path.write_text(f"layers: [{{material: {{cif: {cif.name}, cells: 2}}}}]\nrotation: 0\n")
    sample = build(load(path), seed=0)
    crystal = sample.crystal
    assert crystal.a == pytest.approx(5.64 / np.sqrt(2), rel=1e-6)  # the primitive fcc cell's a
    atoms = sample.atoms_in_window(Window(0.0, 0.0, 10 * NM, 10 * NM))
    symbols = atoms.get_chemical_symbols()
    assert symbols.count("Na") == pytest.approx(symbols.count("Cl"), rel=0.05)
    per_area = len(atoms) / 100.0  # atoms per nm²
    assert per_area == pytest.approx(sample.atom_density() * 1e-18, rel=0.05)


def test_flakes_hold_atoms_only_inside_and_the_afm_sees_the_support_outside():
    sample = build_sample("graphene-features", 0)
    corner = sample.layers[0].flakes[0].outline()[0]  # a hexagon vertex, 2 µm from the centre
    window = Window.around(corner[0], corner[1], 40 * NM, 40 * NM)  # the 120° corner covers part of it
    atoms = sample.atoms_in_window(window)
    x = window.x_min + atoms.positions[:, 0] * 1e-10
    y = window.y_min + atoms.positions[:, 1] * 1e-10
    assert sample.layers[0].flakes[0].contains(x, y).all()
    full = sample.atom_density() * window.width * window.height
    assert len(atoms) == pytest.approx(full * (2 - 1 / np.sqrt(3)) / 4, rel=0.03)
    assert sample.surface_height(np.array([3e-6]), np.array([-3e-6]))[0] == sample.floor_height


def test_extended_features_remove_and_add_the_atoms_they_describe():
    sample = build_sample("graphene-features", 0)
    truth = sample.defects_in_window(Window(-400 * NM, -400 * NM, 400 * NM, 400 * NM))
    kinds = {d.kind for d in truth}
    assert {"vacancy", "multivacancy", "pore", "substitution", "adsorbate", "contamination"} <= kinds
    pore = next(d for d in truth if d.kind == "pore")
    span = 2 * pore.size + 2 * NM
    around = sample.atoms_in_window(Window.around(pore.x, pore.y, span, span))
    xy = around.positions[:, :2] * 1e-10 + [around.info["window"]["x_min"], around.info["window"]["y_min"]]
    lattice = around.arrays["site"][:, 3] < 2
    assert np.hypot(*(xy[lattice] - [pore.x, pore.y]).T).min() >= pore.size - 1e-12
    holes = [d for d in truth if d.kind == "multivacancy"]
    for hole in holes[:5]:  # exactly `size` atoms fewer than the pristine lattice around it
        window = Window.around(hole.x, hole.y, 3 * NM, 3 * NM)
        near = [d for d in truth if abs(d.x - hole.x) < 2.5 * NM and abs(d.y - hole.y) < 2.5 * NM]
        if len(near) > 1:  # another defect changes the count
            continue
        pristine = build_sample("graphene", 0).atoms_in_window(window)
        assert len(pristine) - len(sample.atoms_in_window(window)) == int(hole.size)
    adatom = next(d for d in truth if d.kind == "adsorbate")
    near = sample.atoms_in_window(Window.around(adatom.x, adatom.y, 0.5 * NM, 0.5 * NM))
    platinum = near.positions[np.array(near.get_chemical_symbols()) == "Pt"]
    assert len(platinum) == 1 and platinum[0, 2] * 1e-10 == pytest.approx(adatom.z, abs=1e-13)
    patch = next(d for d in truth if d.kind == "contamination")
    cover = sample.atoms_in_window(Window.around(patch.x, patch.y, patch.size, patch.size))
    assert {"C", "H"} <= set(cover.get_chemical_symbols()) and cover.positions[:, 2].max() > 3.0


def _centroid(instances: np.ndarray, k: int, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(instances == k)
    return float(x[cols].mean()), float(y[rows].mean())


def test_every_vacancy_label_sits_where_an_atom_is_missing_and_dopant_labels_on_the_dopant():
    from twin.sample.truth import CLASSES, label_masks, pixel_centres

    sample = build_sample("graphene-defects", 2)
    window = Window(0.0, 0.0, 24 * NM, 24 * NM)
    classes, instances, defects = label_masks(sample, window, (960, 960))
    x, y = pixel_centres(window, (960, 960))
    atoms = sample.atoms_in_window(window)
    xy = atoms.positions[:, :2] * 1e-10
    pristine = build_sample("graphene", 2).atoms_in_window(window).positions[:, :2] * 1e-10
    tree, sites = cKDTree(xy), cKDTree(pristine)
    inside = [n for n, d in enumerate(defects)
              if window.x_min < d.x < window.x_max and window.y_min < d.y < window.y_max]
    vacancies = [n for n in inside if defects[n].kind == "vacancy"]
    dopants = [n for n in inside if defects[n].kind == "substitution"]
    assert vacancies and dopants
    for n in vacancies:
        cx, cy = _centroid(instances, n + 1, x, y)
        assert sites.query([cx, cy])[0] < 0.05 * NM  # on a lattice site ...
        assert tree.query([cx, cy])[0] > 0.1 * NM  # ... that has no atom
        assert (classes[instances == n + 1] == CLASSES["vacancy"]).all()
    symbols = np.array(atoms.get_chemical_symbols())
    for n in dopants:
        cx, cy = _centroid(instances, n + 1, x, y)
        distance, nearest = tree.query([cx, cy])
        assert distance < 0.05 * NM and symbols[nearest] == defects[n].species
    assert (classes == CLASSES["crystal"]).mean() > 0.95


def test_labels_on_a_coarse_grid_keep_every_defect_and_pores_hold_no_atoms():
    from twin.sample.truth import CLASSES, label_masks, pixel_centres

    sample = build_sample("graphene-features", 0)
    window = Window(-50 * NM, -50 * NM, 50 * NM, 50 * NM)
    classes, instances, defects = label_masks(sample, window, (128, 128))  # 0.8 nm pixels
    anchored = {n + 1 for n, d in enumerate(defects) if window.x_min <= d.x < window.x_max
                and window.y_min <= d.y < window.y_max}
    seen = set(np.unique(instances).tolist()) - {0}
    assert len(anchored) > 50
    assert len(anchored & seen) >= 0.95 * len(anchored)  # only where two share a pixel is one hidden
    fine = Window(-20 * NM, -20 * NM, 20 * NM, 20 * NM)
    classes, _, _ = label_masks(sample, fine, (400, 400))
    x, y = pixel_centres(fine, (400, 400))
    atoms = sample.atoms_in_window(fine)
    lattice = atoms.arrays["site"][:, 3] < 2
    col = ((atoms.positions[lattice, 0] * 1e-10) / (fine.width / 400)).astype(int)
    row = ((atoms.positions[lattice, 1] * 1e-10) / (fine.height / 400)).astype(int)
    assert not (classes[row, col] == CLASSES["pore"]).any()


def test_the_height_map_is_the_van_der_waals_surface():
    from twin.sample.truth import height_map

    sample = build_sample("graphene-defects", 5)
    silicon = next(d for d in sample.defects_in_window(Window(-200 * NM, -200 * NM, 200 * NM, 200 * NM))
                   if d.species == "Si")
    heights = height_map(sample, Window.around(silicon.x, silicon.y, 4 * NM, 4 * NM), (200, 200))
    top = heights[95:105, 95:105].max()
    assert top == pytest.approx(silicon.z + 2.19e-10, abs=0.05e-10)  # Si's vdW radius (Alvarez) above it
    assert np.median(heights) < top - 1e-10


def test_an_instrument_frame_shows_the_same_atoms_turned_and_shifted():
    from twin.sample.frames import FramedSample, InstrumentFrame

    sample = build_sample("graphene-defects", 1)
    frame = InstrumentFrame(np.radians(35.0), (2e-6, -1e-6))
    seen = FramedSample(sample, frame)
    window = Window(0.0, 0.0, 6 * NM, 6 * NM)
    atoms = seen.atoms_in_window(window)
    x, y = frame.to_sample(atoms.positions[:, 0] * 1e-10, atoms.positions[:, 1] * 1e-10)
    truth = sample.atoms_in_window(frame.sample_window(window))
    tx = truth.info["window"]["x_min"] + truth.positions[:, 0] * 1e-10
    ty = truth.info["window"]["y_min"] + truth.positions[:, 1] * 1e-10
    distance, _ = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([x, y]))
    assert distance.max() < 1e-15
    assert len(atoms) == pytest.approx(sample.atom_density() * window.width * window.height, rel=0.05)
    defects = seen.defects_in_window(Window(-50 * NM, -50 * NM, 50 * NM, 50 * NM))
    for d in defects[:5]:
        assert frame.to_sample(d.x, d.y) == pytest.approx(
            next((o.x, o.y) for o in sample.defects_in_window(frame.sample_window(
                Window.around(d.x, d.y, 1e-10, 1e-10)))), abs=1e-15)


def test_an_afm_in_its_own_frame_sees_a_dopant_where_the_transform_puts_it():
    from tests.test_correlation import bump_apex
    from twin.instruments.afm import AfmInstrument
    from twin.instruments.clock import Clock
    from twin.sample.frames import InstrumentFrame
    from twin.sample.truth import CLASSES, label_masks

    sample = build_sample("graphene-defects", 5)
    frame = InstrumentFrame(np.radians(-20.0), (1.5e-6, 0.7e-6))
    silicon = next(d for d in sample.defects_in_window(Window(-200 * NM, -200 * NM, 200 * NM, 200 * NM))
                   if d.species == "Si")
    afm = AfmInstrument(sample, Clock(0.0), seed=0, frame=frame)
    for name, value in (("twin.drift_velocity", (0.0, 0.0)), ("twin.piezo_creep", 0.0),
                        ("twin.ideal_feedback", True), ("Scan.ImageWidth", 6 * NM),
                        ("Scan.ImageHeight", 6 * NM), ("Scan.Points", 128), ("Scan.Lines", 128)):
        afm.set(name, value)
    u, v = frame.from_sample(silicon.x, silicon.y)
    afm.set("Scan.CenterPosX", float(u) + 0.7 * NM)
    afm.set("Scan.CenterPosY", float(v) - 0.4 * NM)
    afm.start_approach()
    afm.start_frame_up()
    reply = afm.get_frame(0, 1)
    import xarray as xr

    topography = xr.DataArray(reply["data"], dims=("y", "x"), coords={"x": reply["x"], "y": reply["y"]})
    pixel = reply["x"][1] - reply["x"][0]
    assert np.hypot(*(np.array(bump_apex(topography)) - [u, v])) < pixel
    assert reply["metadata"]["twin"]["frame"]["rotation"] == pytest.approx(np.radians(-20.0))
    window = Window(reply["x"][0] - pixel / 2, reply["y"][0] - pixel / 2, reply["x"][-1] + pixel / 2,
                    reply["y"][-1] + pixel / 2)
    classes, instances, defects = label_masks(sample, window, (128, 128), frame)
    row, col = np.argmin(np.abs(reply["y"] - v)), np.argmin(np.abs(reply["x"] - u))
    assert classes[row, col] == CLASSES["substitution"]
    assert defects[instances[row, col] - 1].species == "Si"


def test_a_holey_carbon_film_has_its_density_and_its_holes():
    sample = build_sample("graphene-on-holey-carbon", 0)
    film = sample.film
    on_film = Window(1e-6, 0.0, 1e-6 + 5 * NM, 5 * NM)
    atoms = sample.atoms_in_window(on_film)
    carbon = atoms.arrays["site"][:, 0] == len(sample.layers)
    volume = 50.0 * 50.0 * film.thickness  # Å³
    assert carbon.sum() / volume == pytest.approx(film.density, rel=0.03)
    z = atoms.positions[carbon, 2]
    assert z.max() <= film.top + 1e-9 and z.min() >= film.top - film.thickness - 1e-9
    over_hole = sample.atoms_in_window(Window(0.0, 0.0, 5 * NM, 5 * NM))
    assert not (over_hole.arrays["site"][:, 0] == len(sample.layers)).any()  # suspended graphene only
    graphene_density = 2 / (sample.crystal.area_per_cell * 1e-20)  # atoms per m²
    assert len(over_hole) == pytest.approx(graphene_density * 25e-18, rel=0.03)
    edge = film.hole_diameter / 2 * 1e-10  # m
    heights = sample.surface_height(np.array([edge - 20 * NM, edge + 20 * NM]), np.zeros(2))
    assert heights[0] == pytest.approx(heights[1], abs=1e-10)  # graphene on top either way ...
    assert sample.floor_height == pytest.approx((film.top - film.thickness) * 1e-10)  # ... the floor deep


@pytest.mark.slow
def test_the_tem_sees_thon_rings_on_the_film_and_none_over_a_hole():
    """At 150 nm underfocus the amorphous film's diffractogram has zeros where chi = n pi; over a hole
    only the graphene lattice (sharp spots) remains, with far less diffuse power between them."""
    from twin.instruments.clock import Clock
    from twin.instruments.tem import TemInstrument
    from twin.physics.ctf import Aberrations, aberration_phase, electron_wavelength

    sample = build_sample("graphene-on-holey-carbon", 0)
    tem = TemInstrument(sample, Clock(0.0), seed=0)
    for name, value in (("twin.stage_errors", False), ("twin.drift", False), ("optics.focus", -150e-9),
                        ("optics.magnification", 2_050_000.0)):
        tem.set(name, value)
    spectra = {}
    for place, x in (("film", 1e-6), ("hole", 0.0)):
        tem.move_stage({"x": x, "y": 0.0})
        image = tem.acquire_camera_image("BM-Ceta", 512, 4.0)
        data = image["data"].astype(float)
        fov = image["metadata"]["binary_result"]["pixel_size"]["x"] * 512
        power = np.abs(np.fft.fftshift(np.fft.fft2(data - data.mean()))) ** 2
        k = np.hypot(*np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(512, fov / 512)),) * 2))
        bins = np.arange(0, k.max(), 1 / fov)
        index = np.digitize(k.ravel(), bins)
        radial = np.bincount(index, power.ravel()) / np.maximum(np.bincount(index), 1)
        spectra[place] = (np.concatenate([[0.0], bins[:-1] + 0.5 / fov, [bins[-1] + 0.5 / fov]]), radial)
    centres, film = spectra["film"]
    _, hole = spectra["hole"]
    wavelength = electron_wavelength(80e3)
    cs = tem.hardware.spherical_aberration
    fine = np.linspace(0.2e9, 3e9, 20000)
    chi = aberration_phase(fine, 0 * fine, wavelength, Aberrations(C10=-150e-9, C30=cs))
    for n in (1, 2, 3):
        expected = fine[np.argmin(np.abs(np.abs(chi) - n * np.pi))]
        lo, hi = (fine[np.argmin(np.abs(np.abs(chi) - m * np.pi))] for m in (n - 0.5, n + 0.5))
        window = (centres > lo) & (centres < hi)
        found = centres[window][np.argmin(film[window])]
        assert abs(found - expected) <= 2 / fov, (n, found, expected)
    band = (centres > 1e9) & (centres < 3e9)  # between the graphene spots (first order: 4.7 / nm)
    assert np.median(film[band]) > 5 * np.median(hole[band])


def test_stone_wales_turns_one_bond_by_ninety_degrees_and_wrinkles_lift_a_ridge():
    sample = build_sample("graphene-features", 0)
    pristine = build_sample("graphene", 0)
    truth = sample.defects_in_window(Window(-600 * NM, -600 * NM, 600 * NM, 600 * NM))
    turned = next(d for d in truth if d.kind == "stone-wales"
                  and all(np.hypot(o.x - d.x, o.y - d.y) > 2 * NM for o in truth if o is not d))
    window = Window.around(turned.x, turned.y, 1 * NM, 1 * NM)
    before = pristine.atoms_in_window(window).positions[:, :2]
    after = sample.atoms_in_window(window).positions[:, :2]
    moved = after[cKDTree(before).query(after)[0] > 0.1]  # Å
    assert len(moved) == 2
    bond = moved[1] - moved[0]
    assert np.hypot(*bond) == pytest.approx(2.46 / np.sqrt(3), rel=1e-6)  # still one C-C bond ...
    original = before[cKDTree(after).query(before)[0] > 0.1]
    assert abs(np.dot(bond, original[1] - original[0])) < 1e-6  # ... turned by 90°
    assert moved.mean(axis=0) * 1e-10 + [window.x_min, window.y_min] == pytest.approx([turned.x, turned.y],
                                                                                      abs=1e-15)
    ridge = next(d for d in truth if d.kind == "wrinkle")
    near = sample.atoms_in_window(Window.around(ridge.x, ridge.y, 1 * NM, 1 * NM))
    flat = pristine.atoms_in_window(Window.around(ridge.x, ridge.y, 1 * NM, 1 * NM))
    lift = np.median(near.positions[:, 2]) - np.median(flat.positions[:, 2])
    assert lift == pytest.approx(10.0, rel=0.1)  # Å: the ridge's height at its axis


def _positions_by_site(atoms) -> dict[tuple[int, ...], np.ndarray]:
    return {tuple(s): p for s, p in zip(atoms.arrays["site"].tolist(), atoms.positions[:, :2], strict=True)}


def _layer(**settings) -> dict:
    return {"name": "strained", "rotation": "17 deg", "layers": [{"material": "graphene", **settings}]}


def test_a_uniform_strain_stretches_the_lattice_and_a_displacement_field_moves_atoms_by_its_rms():
    plain = build(from_dict(_layer()), seed=0)
    stretched = build(from_dict(_layer(strain=[0.02, -0.01, 0.005])), seed=0)
    window = Window(0.0, 0.0, 6 * NM, 6 * NM)

    def cell_vector(sample, steps: int = 10) -> np.ndarray:
        """The mean separation (Å) of sublattice-0 atoms ``steps`` cells apart along a1, per cell."""
        site = _positions_by_site(sample.atoms_in_window(window))
        pairs = [site[(k, i + steps, j, b)] - p for (k, i, j, b), p in site.items()
                 if b == 0 and (k, i + steps, j, b) in site]
        return np.mean(pairs, axis=0) / steps

    deformation = np.array([[1.02, 0.005], [0.005, 0.99]])
    assert cell_vector(stretched) == pytest.approx(deformation @ cell_vector(plain), abs=1e-9)
    wavy = build(from_dict(_layer(displacement={"rms": "0.3 A", "wavelength": ["5 nm", "20 nm"]})), seed=0)
    big = Window(0.0, 0.0, 30 * NM, 30 * NM)
    moved, still = (_positions_by_site(s.atoms_in_window(big)) for s in (wavy, plain))
    shifts = np.array([p - still[site] for site, p in moved.items() if site in still])
    assert np.sqrt(np.mean(np.sum(shifts**2, axis=1))) == pytest.approx(0.3, rel=0.35)  # few waves in 30 nm
    assert abs(len(moved) - len(still)) < 0.02 * len(still)


def test_a_polycrystalline_sheet_meets_at_grain_boundaries_the_same_in_every_window():
    from twin.sample.truth import CLASSES, label_masks

    sample = build_sample("polycrystalline-graphene", 0)
    assert len(sample.layers) > 1000 and all(layer.sheet == 0 for layer in sample.layers)
    window = Window(-30 * NM, -30 * NM, 30 * NM, 30 * NM)
    atoms = sample.atoms_in_window(window)
    assert len(atoms) == pytest.approx(sample.atom_density() * window.width * window.height, rel=0.02)
    nearest, _ = cKDTree(atoms.positions[:, :2]).query(atoms.positions[:, :2], k=2)
    assert nearest[:, 1].min() >= 0.8 * 1.42 - 1e-9  # boundaries keep no overlapping atoms
    halves = [Window(-30 * NM, -30 * NM, 0.0, 30 * NM), Window(0.0, -30 * NM, 30 * NM, 30 * NM)]
    assert sum(len(sample.atoms_in_window(h)) for h in halves) == len(atoms)
    grains = set(atoms.arrays["site"][:, 0].tolist())
    angles = {round(float(np.mod(sample.layers[k].rotation, np.pi / 3)), 6) for k in grains}
    assert len(grains) > 5 and len(angles) == len(grains)  # every grain its own orientation
    boundaries = [d for d in sample.defects_in_window(window) if d.kind == "grain-boundary"]
    assert len(boundaries) > 5
    classes, _, _ = label_masks(sample, window, (300, 300))
    assert 0.02 < (classes == CLASSES["grain-boundary"]).mean() < 0.3
