"""The procedural sample: reproducible, consistent across windows, defects where ground truth says."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from twin.sample import SAMPLES, Window, build_sample
from twin.sample.recent import RECENT

NM = 1e-9


def _absolute_xy(atoms) -> np.ndarray:
    window = atoms.info["window"]
    return atoms.positions[:, :2] * 1e-10 + np.array([window["x_min"], window["y_min"]])


def test_same_seed_same_atoms_and_other_seed_differs():
    window = Window.around(3e-6, -4e-6, 8 * NM, 8 * NM)
    first = build_sample("graphene-defects", 11).atoms_in_window(window)
    again = build_sample("graphene-defects", 11).atoms_in_window(window)
    other = build_sample("graphene-defects", 12).atoms_in_window(window)
    assert np.array_equal(first.numbers, again.numbers)
    assert np.array_equal(first.positions, again.positions)
    assert len(first) != len(other) or not np.allclose(first.positions, other.positions)


def test_adjacent_windows_tile_the_union_exactly():
    sample = build_sample("graphene-defects", 3)
    left = sample.atoms_in_window(Window(0.0, 0.0, 5 * NM, 6 * NM))
    right = sample.atoms_in_window(Window(5 * NM, 0.0, 10 * NM, 6 * NM))
    union = sample.atoms_in_window(Window(0.0, 0.0, 10 * NM, 6 * NM))
    pieces = np.vstack([_absolute_xy(left), _absolute_xy(right)])
    assert len(pieces) == len(union)
    order = np.lexsort(pieces.T)
    union_order = np.lexsort(_absolute_xy(union).T)
    assert np.allclose(pieces[order], _absolute_xy(union)[union_order], atol=1e-15)


def test_graphene_bond_length_and_density():
    sample = build_sample("graphene", 0)
    atoms = sample.atoms_in_window(Window.around(0.0, 0.0, 6 * NM, 6 * NM))
    i, j, d = neighbor_list("ijd", atoms, 1.6)
    assert np.allclose(d, 1.42, atol=0.01)  # C–C bonds, ripples barely stretch them
    expected = sample.atom_density() * (6 * NM) ** 2
    assert abs(len(atoms) - expected) < 0.03 * expected  # window edges cut the lattice


@pytest.mark.parametrize("corner", [(-50e-6, -50e-6), (50e-6, 50e-6), (-1e-3, 1e-3), (1e-3, -1e-3)])
def test_sample_covers_the_stage_travel(corner):
    sample = build_sample("graphene-defects", 0)
    window = Window.around(*corner, 20 * NM, 20 * NM)
    atoms = sample.atoms_in_window(window)
    expected = sample.atom_density() * window.width * window.height
    assert abs(len(atoms) - expected) < 0.02 * expected  # edges cut rows of atoms


def test_far_windows_cost_the_same_and_memory_does_not_grow():
    sample = build_sample("graphene-defects", 0)
    sample.atoms_in_window(Window.around(0.0, 0.0, 10 * NM, 10 * NM))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    working = []  # the memory each window's generation peaks at: its work, independent of a busy CPU
    for x in np.linspace(-1e-3, 1e-3, 9):
        tracemalloc.reset_peak()
        at_start = tracemalloc.get_traced_memory()[0]
        sample.atoms_in_window(Window.around(x, -x, 10 * NM, 10 * NM))
        working.append(tracemalloc.get_traced_memory()[1] - at_start)
    growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert growth < 1_000_000, f"sample kept {growth} bytes after visiting the whole stage"
    assert max(working) < 2 * min(working), working  # a window 1 mm out builds no more than one at 0


def _built(sample, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The atoms of ``window`` built from the seed (nothing kept), as atoms_in_window hands them out."""
    x0, y0 = window.x_min / 1e-10, window.y_min / 1e-10
    numbers, positions, sites = sample._atoms_between(x0, y0, window.x_max / 1e-10, window.y_max / 1e-10)
    positions[:, 0] -= x0
    positions[:, 1] -= y0
    return numbers, positions, sites


@pytest.mark.parametrize("name", ["graphene-features", "polycrystalline-graphene",
                                  "graphene-on-holey-carbon"])
def test_windows_picked_from_kept_atoms_are_the_ones_built_from_the_seed(name):
    """A window asked for again is kept (a little larger): the windows inside it take its atoms, the
    same ones, in the same order, as building them from the seed; atoms the beam removes leave the kept
    windows too."""
    sample = build_sample(name, 2)
    rng = np.random.default_rng(4)
    first = Window.around(0.0, 0.0, 20 * NM, 20 * NM)
    sample.atoms_in_window(first)
    windows = [first] + [Window.around(*rng.uniform(-4 * NM, 4 * NM, 2), *rng.uniform(5 * NM, 12 * NM, 2))
                         for _ in range(6)]
    for k, window in enumerate(windows):
        if k == 3:  # the beam takes a few atoms of this window
            atoms = sample.atoms_in_window(window)
            assert sample.remove_atoms(atoms[rng.choice(len(atoms), 5, replace=False)]) == 5
        atoms = sample.atoms_in_window(window)
        numbers, positions, sites = _built(sample, window)
        assert np.array_equal(atoms.arrays["site"], sites) and np.array_equal(atoms.numbers, numbers)
        assert np.array_equal(atoms.positions, positions)
        bounds = tuple(v / 1e-10 for v in (window.x_min, window.y_min, window.x_max, window.y_max))
        kept, _ = RECENT.find(sample, sample.version, *bounds)
        assert kept is not None and kept.bounds != bounds  # picked from a larger window
    positions = sample.atoms_in_window(first).positions
    positions[0, 0] += 1.0  # what a caller does with its atoms stays with it
    assert sample.atoms_in_window(first).positions[0, 0] == positions[0, 0] - 1.0


def test_vacancies_are_missing_atoms_and_dopants_are_present():
    sample = build_sample("graphene-defects", 5)
    window = Window.around(0.0, 0.0, 40 * NM, 40 * NM)
    atoms = sample.atoms_in_window(window)
    xy = _absolute_xy(atoms)
    defects = sample.defects_in_window(window)
    assert {d.label for d in defects} == {"vacancy", "N substitution", "Si substitution"}
    for defect in defects:
        distance = np.hypot(xy[:, 0] - defect.x, xy[:, 1] - defect.y)
        nearest = int(np.argmin(distance))
        if defect.kind == "vacancy":
            assert distance[nearest] > 1.0e-10  # neighbours sit 1.42 Å away
        else:
            assert distance[nearest] < 1e-15
            assert atoms.get_chemical_symbols()[nearest] == defect.species
            assert atoms.positions[nearest, 2] * 1e-10 == pytest.approx(defect.z, abs=1e-15)


def test_defect_queries_are_consistent_across_windows_and_match_the_density():
    sample = build_sample("graphene-defects", 9)
    whole = Window(0.0, 0.0, 400 * NM, 400 * NM)
    halves = [Window(0.0, 0.0, 200 * NM, 400 * NM), Window(200 * NM, 0.0, 400 * NM, 400 * NM)]
    found = sample.defects_in_window(whole)
    assert sorted(found, key=lambda d: (d.x, d.y)) == sorted(
        (d for w in halves for d in sample.defects_in_window(w)), key=lambda d: (d.x, d.y)
    )
    area_nm2 = (400.0) ** 2
    for spec in sample.defect_specs:
        count = sum(d.label == spec.label for d in found)
        expected = spec.density * area_nm2
        assert abs(count - expected) < 5 * np.sqrt(expected), (spec.label, count, expected)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_builtin_sample_builds_atoms_and_defects(name):
    sample = build_sample(name, 1)
    window = Window.around(0.0, 0.0, 30 * NM, 30 * NM)
    atoms = sample.atoms_in_window(window)
    in_layers = atoms.arrays["site"][:, 0] < len(sample.layers)  # not the support film's
    film = 0.0 if sample.film is None else sample.film.atoms_per_area() / 1e-20
    per_area = sample.atom_density() - film
    assert in_layers.sum() > 0.9 * per_area * window.width * window.height
    assert sample.describe()["name"] == name


def test_unknown_sample_name_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="sample = 'graphite'.*built-in: graphene-defects"):
        build_sample("graphite", 0)
