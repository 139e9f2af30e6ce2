"""Scores of the TEM/STEM challenges."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase.data import atomic_numbers
from scipy.spatial import cKDTree
from scipy.special import ndtr

from twin import validation
from twin.constants import ANGSTROM
from twin.physics.ctf import Aberrations, aberration_phase, electron_wavelength
from twin.physics.detectors import UINT16_MAX
from twin.physics.stem import annular_cross_section
from twin.sample import Window
from twin.scenarios.scoring.core import Context, Score, mapping, scorer


@scorer("tem_focus")
def tem_focus(context: Context, answer: Any) -> Score:
    """How close the objective ends to Gaussian focus without astigmatism: a focus part
    ``exp(-(C10 / focus_tolerance)² / 2)`` and a stigmation part ``exp(-(C12 / astigmatism_tolerance)² / 2)``
    weighted by ``focus_weight`` and 1 - ``focus_weight``. The answer is empty: the column is scored."""
    mapping(answer if answer is not None else {}, ())
    tem = context.twin.tem
    aberrations = tem.aberrations(tem.settings.snapshot())
    p = context.params
    focus = float(np.exp(-0.5 * (aberrations.C10 / p["focus_tolerance"]) ** 2))
    stigmation = float(np.exp(-0.5 * (aberrations.C12 / p["astigmatism_tolerance"]) ** 2))
    weight = p.get("focus_weight", 0.5)
    return Score(weight * focus + (1 - weight) * stigmation,
                 {"defocus_error": aberrations.C10, "astigmatism": aberrations.C12,
                  "focus_part": focus, "stigmation_part": stigmation})


def _points(name: str, value: Any) -> np.ndarray:
    """An answer's list of [x, y] positions (m, each within ±1 m) as an (N, 2) array."""
    try:
        points = np.asarray(value, dtype=float) if isinstance(value, (list, tuple, np.ndarray)) else None
    except (TypeError, ValueError):
        points = None
    if points is None or (points.size and (points.ndim != 2 or points.shape[1] != 2)) or not np.all(
            np.abs(points) <= 1.0):
        raise ValueError(f"answer {name} must be a list of [x, y] positions in m (each -1 to 1 m), "
                         f"got {value!r:.80}")
    return points.reshape(-1, 2)


def region_of(params: dict[str, Any]) -> Window:
    """The scored region: a square of side ``region_size`` (m) centred on ``region_centre`` ([x, y], m)."""
    cx, cy = params.get("region_centre", (0.0, 0.0))
    return Window.around(cx, cy, params["region_size"], params["region_size"])


def matched(found: np.ndarray, truth: np.ndarray, tolerance: float, search: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches (nearest first) of ``found`` to ``truth`` within ``tolerance`` after the one
    translation (within ``search``, m) that matches the most; returns the matched truth indices and
    that translation."""
    none = np.zeros(0, dtype=int), np.zeros(2)
    if not len(found) or not len(truth):
        return none
    tree = cKDTree(truth)
    pairs = tree.query_ball_point(found, search)
    shifts = np.array([truth[j] - found[i] for i, near in enumerate(pairs) for j in near]).reshape(-1, 2)
    if not len(shifts):
        return none
    votes = cKDTree(shifts).query_ball_point(shifts, tolerance / 2, return_length=True)
    best = shifts[np.argmax(votes - 0.5 * np.linalg.norm(shifts, axis=1) / search)]  # ties: the shortest
    shift = np.median(shifts[np.linalg.norm(shifts - best, axis=1) < tolerance / 2], axis=0)
    distance, index = tree.query(found + shift, distance_upper_bound=tolerance)
    taken: list[int] = []
    for k in np.argsort(distance):
        if np.isfinite(distance[k]) and index[k] not in taken:
            taken.append(int(index[k]))
    return np.array(taken, dtype=int), shift


def really(context: Context, region: Window) -> tuple[np.ndarray, Window]:
    """The stage's error and drift now (m) and where ``region`` (stage coordinates) really is."""
    tem = context.twin.tem
    offset = tem.stage.specimen_offset(tem.settings.get("twin.stage_errors"), tem.settings.get("twin.drift"))
    dx, dy = offset
    return offset, Window(region.x_min + dx, region.y_min + dy, region.x_max + dx, region.y_max + dy)


def inside(points: np.ndarray, region: Window) -> np.ndarray:
    """Which of ``points`` ([x, y], m) lie in ``region``."""
    x, y = points[:, 0], points[:, 1]
    return (x >= region.x_min) & (x < region.x_max) & (y >= region.y_min) & (y < region.y_max)


def f1_score(hits: int, reported: int, recalled: int, expected: int) -> tuple[float, float, float]:
    """Precision (``hits`` of ``reported``), recall (``recalled`` of ``expected``) and their F1."""
    precision = hits / reported if reported else 0.0
    recall = recalled / expected if expected else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def knocked_out(context: Context, area: Window, species: str) -> np.ndarray:
    """Where (m, the TEM's frame) the beam knocked ``species`` atoms out of ``area`` (the TEM's frame)."""
    frame = context.twin.tem.sample.frame
    outer = frame.sample_window(area)
    x0, y0, x1, y1 = (v * 1e10 for v in (outer.x_min, outer.y_min, outer.x_max, outer.y_max))
    emptied = context.twin.sample.knocked_out.in_window(x0, y0, x1, y1)
    found = np.array([(x, y) for _, x, y, symbol in emptied if symbol == species]).reshape(-1, 2) * ANGSTROM
    points = np.column_stack(frame.from_sample(found[:, 0], found[:, 1]))
    return points[inside(points, area)]


CHANCE_TURNS = 8
"""The atoms' chance level is the answer's F1 against the true atoms turned about the region's centre by
(k + 1/2) 360° / CHANCE_TURNS, k = 0 .. CHANCE_TURNS - 1: never the true orientation (turns by 60° would
give graphene back)."""


def atom_match(positions: np.ndarray, atoms: np.ndarray, region: Window, tolerance: float, search: float
               ) -> tuple[float, float, float, int, int, np.ndarray]:
    """Precision, recall and F1 of ``positions`` against the atoms at ``atoms`` ([x, y], m) within
    ``search`` of ``region`` (those outside it count as found, not as expected), the hits, the atoms
    expected and the matching translation."""
    truth = atoms[inside(atoms, region.grown(search))]
    counted = inside(truth, region)
    hits, shift = matched(positions, truth, tolerance, search)
    expected = int(counted.sum())
    return (*f1_score(len(hits), len(positions), int(counted[hits].sum()), expected), len(hits), expected,
            shift)


@scorer("atom_f1")
def atom_f1(context: Context, answer: Any) -> Score:
    """F1 of the reported atom positions against the true atoms in the region (the TEM's frame, where
    the stage is now, stage error and drift included): a report within ``tolerance`` (m) of an atom,
    after the one translation that matches most (within ``search``, m), is a hit. Scored beyond chance:
    (F1 - c) / (1 - c), c the mean F1 the same answer reaches against the true atoms turned about the
    region's centre (:data:`CHANCE_TURNS`): what random points, or a lattice of a guessed orientation,
    reach without looking."""
    positions = _points("positions", mapping(answer, ("positions",))["positions"])
    p = context.params
    region = region_of(p)
    offset, _ = really(context, region)
    tolerance, search = p["tolerance"], p["search"]
    side = np.sqrt(2) * max(region.width, region.height) + 2 * search  # holds the region turned any way
    cx, cy = region.centre
    area = Window.around(cx + offset[0], cy + offset[1], side, side)
    atoms = context.twin.tem.sample.atoms_in_window(area)
    # as the stage sees them
    truth = np.array([area.x_min, area.y_min]) + atoms.positions[:, :2] * ANGSTROM - offset
    precision, recall, f1, hits, expected, shift = atom_match(positions, truth, region, tolerance, search)
    x, y = truth[:, 0] - cx, truth[:, 1] - cy
    turned = []
    for angle in (np.arange(CHANCE_TURNS) + 0.5) * 2 * np.pi / CHANCE_TURNS:
        c, s = np.cos(angle), np.sin(angle)
        turn = np.column_stack([cx + c * x - s * y, cy + s * x + c * y])
        turned.append(atom_match(positions, turn, region, tolerance, search)[2])
    chance = float(np.mean(turned))
    return Score((f1 - chance) / (1.0 - chance),
                 {"f1": f1, "f1_by_chance": chance, "precision": precision, "recall": recall,
                  "hits": hits, "reported": len(positions),
                  "atoms_in_region": expected, "translation": shift.tolist()})


@scorer("dopant_f1")
def dopant_f1(context: Context, answer: Any) -> Score:
    """F1 of the reported dopant positions against the ``species`` substitutions that were in the region
    at the start (TEM frame, as the stage sees it): a report within ``tolerance`` (m) of a dopant still
    there, after the one translation (within ``search``, m) that matches most, is a hit; a dopant the
    beam knocked out counts as missed, so recall = hits / dopants at the start."""
    positions = _points("positions", mapping(answer, ("positions",))["positions"])
    p = context.params
    region = region_of(p)
    offset, true_region = really(context, region)
    area = true_region.grown(p["search"])
    present = np.array([(d.x, d.y) for d in context.twin.tem.sample.defects_in_window(area)
                        if d.kind == "substitution" and d.species == p["species"]]).reshape(-1, 2)
    gone = knocked_out(context, area, p["species"])
    present, gone = present - offset, gone - offset  # where the stage believes they are
    hits, shift = matched(positions, present, p["tolerance"], p["search"])
    counted, lost = inside(present, region), int(inside(gone, region).sum())
    at_start = int(counted.sum()) + lost
    precision, recall, f1 = f1_score(len(hits), len(positions), int(counted[hits].sum()), at_start)
    return Score(f1, {"precision": precision, "recall": recall, "hits": len(hits), "reported": len(positions),
                      "dopants_at_start": at_start, "knocked_out": lost, "translation": shift.tolist()})


_RAYLEIGH = 1 / 1.22  # Rayleigh's distance 0.61 lambda / alpha over the incoherent cutoff lambda / 2 alpha
RAYLEIGH_TRANSFER = float(2 / np.pi * (np.arccos(_RAYLEIGH) - _RAYLEIGH * np.sqrt(1 - _RAYLEIGH**2)))
"""The incoherent transfer (8.9 %) of a perfect round probe at its Rayleigh distance: the least contrast at
which two points count as resolved."""


def probe_transfer(energy: float, convergence_angle: float, aberrations: Aberrations, spacing: float,
                   directions: int = 12, frequencies: int = 16, points: int = 48) -> float:
    """The least incoherent transfer (the probe intensity's OTF, 1 at zero frequency) of a STEM probe at
    ``energy`` (eV), semi-angle ``convergence_angle`` (rad) and ``aberrations``, over spatial frequencies
    up to 1 / ``spacing`` (m) in every direction: the aperture's overlap with itself shifted by q,
    weighted by cos(chi(k) - chi(k + q)), on ``points`` aperture points per radius."""
    wavelength = electron_wavelength(energy)
    edge = convergence_angle / wavelength
    grid = np.linspace(-edge, edge, 2 * points + 1)
    kx, ky = (g.ravel() for g in np.meshgrid(grid, grid))
    pupil = np.hypot(kx, ky) <= edge
    kx, ky = kx[pupil], ky[pupil]
    chi = aberration_phase(kx, ky, wavelength, aberrations)
    least = 1.0
    for q in np.arange(1, frequencies + 1) / (frequencies * spacing):
        for angle in np.arange(directions) * np.pi / directions:
            sx, sy = kx + q * np.cos(angle), ky + q * np.sin(angle)
            both = np.hypot(sx, sy) <= edge
            phase = chi[both] - aberration_phase(sx[both], sy[both], wavelength, aberrations)
            least = min(least, float(np.sum(np.cos(phase)) / len(kx)))
    return least


@scorer("gentle_imaging", reads_images=True)
def gentle_imaging(context: Context, answer: Any) -> Score:
    """An image of the region that shows its atoms and a region that survived it: the product of

    - ``intact``: the fraction of the region's ``species`` atoms still in place (TEM frame, stage error and
      drift included);
    - ``resolved``: the probe's least incoherent transfer up to 1 / ``resolution`` (:func:`probe_transfer`,
      the image's voltage, convergence angle, focus and stigmation) over :data:`RAYLEIGH_TRANSFER`, at most 1;
    - ``seen``: the chance ``Phi(SNR - threshold)`` that a ``column`` of ``species`` atoms stands out from one
      missing an atom, ``SNR = sqrt(D sigma / column)``, ``D`` the image's dose (e/m²) and ``sigma`` the
      atom's cross-section into the detector's angles (screened Rutherford, as the twin images it);
    - ``unclipped``: the fraction of the image's pixels below the detector's saturation.

    ``answer["frame_index"]`` names a ``detector`` image of this episode that covers the whole region (a
    field of view at least the region's side, centre within ``centring``, m) with pixels no coarser than
    ``resolution / 2``."""
    index = mapping(answer, ("frame_index",))["frame_index"]
    index = validation.integer("answer frame_index", index, 0, 10**9)
    p = context.params
    image = context.images.get(("tem", index, p["detector"]))
    if image is None:
        kept = sorted(k[1] for k in context.images if k[0] == "tem" and k[2] == p["detector"])
        raise ValueError(f"answer frame_index = {index} is not one of this episode's last {p['detector']} "
                         f"images; allowed: {kept}")
    region = region_of(p)
    w = image["metadata"]["twin"]["window"]
    centre = ((w["x_min"] + w["x_max"]) / 2, (w["y_min"] + w["y_max"]) / 2)
    middle = region.centre
    if np.hypot(centre[0] - middle[0], centre[1] - middle[1]) > p["centring"]:
        raise ValueError(f"answer frame_index = {index}: that image is centred on {centre} m, not on the "
                         "region")
    pixel = image["metadata"]["binary_result"]["pixel_size"]["x"]
    side = min(w["x_max"] - w["x_min"], w["y_max"] - w["y_min"])
    if side < min(region.width, region.height) - pixel:  # a smaller field or a sub-region spares the rest
        raise ValueError(f"answer frame_index = {index}: that image spans {side:.4g} m, less than the "
                         f"region's {region.width:.4g} m; image the whole region")
    if pixel > p["resolution"] / 2:
        raise ValueError(f"answer frame_index = {index}: its pixels of {pixel:.4g} m cannot show detail of "
                         f"{p['resolution']:.4g} m; use pixels of at most {p['resolution'] / 2:.4g} m")
    _, area = really(context, region)
    number = atomic_numbers[p["species"]]
    left = int(np.sum(context.twin.tem.sample.atoms_in_window(area).numbers == number))
    lost = len(knocked_out(context, area, p["species"]))
    intact = left / (left + lost) if left + lost else 0.0
    optics, tem = image["metadata"]["optics"], context.twin.tem
    stigmator = optics["objective_stigmator"]
    aberrations = tem.aberrations({  # the focus and stigmator of the image, the column's own state now
        "optics.focus": optics["focus"], "optics.objective_stigmator": (stigmator["x"], stigmator["y"]),
        "twin.focus_offset": tem.settings.get("twin.focus_offset"),
        "twin.objective_astigmatism": tem.settings.get("twin.objective_astigmatism")})
    energy = optics["acceleration_voltage"]
    transfer = probe_transfer(energy, optics["convergence_angle"], aberrations, p["resolution"])
    resolved = float(np.clip(transfer / RAYLEIGH_TRANSFER, 0.0, 1.0))
    dose = optics["electrons_per_pixel"] / pixel**2
    angles = optics["collection_angles"]
    sigma = float(annular_cross_section(np.array([number]), energy, angles["inner"], angles["outer"])[0])
    snr = float(np.sqrt(dose * sigma / p["column"]))
    seen = float(ndtr(snr - p["threshold"]))
    data = np.asarray(image["data"])
    saturated = float(np.mean(data >= UINT16_MAX))
    return Score(intact * resolved * seen * (1.0 - saturated),
                 {"intact": intact, "atoms_lost": lost, "resolved": resolved, "transfer": transfer,
                  "seen": seen, "snr": snr, "dose": dose, "saturated": saturated})
