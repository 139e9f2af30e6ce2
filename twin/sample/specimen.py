"""The shared virtual specimen: procedural 2-D layers (monolayers, twisted bilayers, slabs) with
defects, features, flakes and ripples, on a support.

Public coordinates are metres in the *sample frame* (x, y in the plane, z up, the first layer's mean
plane at z = 0). Every support is placed by its top atomic plane (``support_height``): the flat support
is a clean, atomically flat crystalline surface (graphite- or hBN-like, carbon's van der Waals radius),
so a layer one interlayer distance above it measures that distance high in the AFM, as on a clean
crystalline substrate (graphene on graphite or hBN: ~3.35 Å); adsorbate-covered oxide supports that
make monolayers read 0.4–1 nm are not modelled. Atoms are handed out as ``ase.Atoms`` in ångström,
relative to the window corner. Nothing is stored per area: the atoms of any window are rebuilt from the
seed on demand (those of the last few windows are kept for windows inside them, see :mod:`recent`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.data.vdw_alvarez import vdw_radii
from scipy.spatial import cKDTree

from twin.common.geometry import Defect, Window
from twin.constants import ANGSTROM
from twin.sample.defects import (
    DefectField,
    DefectSpec,
    SiteDefect,
    contamination_atoms,
    multivacancy_sites,
    wrinkle_lift,
)
from twin.sample.history import KnockOuts
from twin.sample.lattice import Crystal2D
from twin.sample.recent import RECENT, KeptWindow
from twin.sample.regions import Flake, covered
from twin.sample.ripples import DisplacementField, RippleField
from twin.sample.stacking import Registry, registry
from twin.sample.support import HoleyCarbon

_BOUNDARY_MARGIN = 3.0  # Å beyond a window where grain boundaries are settled, so every window agrees
_REUSE_ALLOWANCE = (0.1, 10.0)  # a window asked for again, moved or grown, is built this much larger each
# side, (its size's fraction, Å), and kept: the next few find their atoms in it
SUPPORT_VDW_RADIUS = float(vdw_radii[atomic_numbers["C"]])  # Å: the flat support's surface above its atoms


@dataclass(frozen=True)
class Layer:
    """One 2-D crystal of the stack: turned by ``rotation`` (rad), its lattice origin at ``shift`` (Å),
    its plane at height ``z`` (Å), present only on ``flakes`` (everywhere when empty)."""

    crystal: Crystal2D
    rotation: float = 0.0
    z: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    defect_specs: tuple[DefectSpec, ...] = ()
    flakes: tuple[Flake, ...] = ()
    displacement: DisplacementField | None = None  # smooth in-plane strain of the whole layer
    sheet: int = -1  # grains of one polycrystalline sheet share a sheet number (-1: a single crystal)

    def touches(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Whether the layer may hold atoms in ``[x0, x1) x [y0, y1)`` (Å): its flakes' bounds meet it."""
        cx0, cy0, cx1, cy1 = self.clip(x0, y0, x1, y1)
        return cx0 <= cx1 and cy0 <= cy1

    def clip(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """The part (Å) of ``[x0, x1) x [y0, y1)`` within reach of the layer's flakes (all of it without)."""
        if not self.flakes:
            return x0, y0, x1, y1
        r = self.reach
        bounds = np.array([flake.bounds() for flake in self.flakes]) / ANGSTROM
        return (max(x0, bounds[:, 0].min() - r), max(y0, bounds[:, 1].min() - r),
                min(x1, bounds[:, 2].max() + r), min(y1, bounds[:, 3].max() + r))

    def displaced(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where lattice points ``x``, ``y`` (Å) sit once the layer's strain field moved them."""
        if self.displacement is None:
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        dx, dy = self.displacement.at(x, y)
        return x + dx, y + dy

    @property
    def reach(self) -> float:
        """How far (Å) the strain field moves any atom at most."""
        return 0.0 if self.displacement is None else self.displacement.bound


class Sample:
    """One seeded specimen shared by every instrument of a twin.

    ``version`` increases whenever the specimen changes (e.g. beam damage), so caches of
    anything computed from its atoms can tell whether they are still valid.
    """

    def __init__(
        self,
        name: str,
        layers: tuple[Layer, ...],
        ripples: RippleField,
        seed: int,
        support_height: float = -3.35e-10,
        description: str = "",
        recipe: object | None = None,
        film: HoleyCarbon | None = None,
        grain_boundaries: tuple[tuple[np.ndarray, np.ndarray], ...] = (),
    ) -> None:
        if not layers:
            raise ValueError("a sample needs at least one layer")
        self.name = name
        self.description = description
        self.layers = layers
        self.seed = seed
        self.ripples = ripples
        self.film = film  # a holey carbon film under the layers, or None (a flat support)
        self.grain_boundaries = grain_boundaries  # segments (m) where grains of a sheet meet
        self.support_height = support_height  # the support's top atomic plane (m), of either kind
        # where no atom of the layers or the film is, the AFM meets the floor: the flat support's van der
        # Waals surface, or the film's bottom in its holes (the tip never reaches that deep)
        self.floor_height = (support_height + SUPPORT_VDW_RADIUS * ANGSTROM if film is None
                             else (film.top - film.thickness) * ANGSTROM)
        self.recipe = recipe  # what it was built from (a SampleRecipe), for metadata and datasets
        self.registries = tuple(_registries(layers))
        self.fields = tuple(DefectField(layer.crystal, layer.defect_specs, seed, layer.rotation, layer=k,
                                        shift=layer.shift) for k, layer in enumerate(layers))
        self.knocked_out = KnockOuts()
        self.version = 0
        self._version_lock = threading.Lock()

    @property
    def crystal(self) -> Crystal2D:
        """The first layer's crystal (the one that sets lattice spacings and damage thresholds)."""
        return self.layers[0].crystal

    @property
    def rotation(self) -> float:
        return self.layers[0].rotation

    @property
    def defect_specs(self) -> tuple[DefectSpec, ...]:
        """Every layer's kinds of defects and features (a polycrystalline sheet's once)."""
        return tuple(spec for layer in self._distinct_layers() for spec in layer.defect_specs)

    def _distinct_layers(self) -> list[Layer]:
        """The layers, a polycrystalline sheet counted once (its first grain standing for all)."""
        seen, distinct = set(), []
        for layer in self.layers:
            if layer.sheet < 0 or layer.sheet not in seen:
                distinct.append(layer)
                seen.add(layer.sheet)
        return distinct

    def atoms_in_window(self, window: Window) -> Atoms:
        """The atoms inside ``window``: positions in Å relative to its lower-left corner.

        ``z`` is the height in the sample frame (Å). ``atoms.info["window"]`` holds the window (m)
        and ``atoms.arrays["site"]`` each atom's site ``(layer, i, j, b)`` (added atoms, such as
        adsorbates, have ``b`` beyond the basis). A window inside one asked for recently (see
        :mod:`twin.sample.recent`) gets that one's atoms whose positions lie in it.
        """
        x0, y0, x1, y1 = (v / ANGSTROM for v in (window.x_min, window.y_min, window.x_max, window.y_max))
        version = self.version
        kept, asked_before = RECENT.find(self, version, x0, y0, x1, y1)
        if kept is None and asked_before > 0.5:  # (nearly) a window of before: keep it, a little larger
            grow = _REUSE_ALLOWANCE[0] * max(x1 - x0, y1 - y0) + _REUSE_ALLOWANCE[1]
            bounds = (x0 - grow, y0 - grow, x1 + grow, y1 + grow)
            kept = KeptWindow(bounds, version, *self._atoms_between(*bounds))
            RECENT.keep(self, kept, self.version)
        elif kept is None:
            kept = KeptWindow((x0, y0, x1, y1), version, *self._atoms_between(x0, y0, x1, y1))
        if kept.bounds == (x0, y0, x1, y1):
            numbers, positions, sites = kept.numbers, kept.positions.copy(), kept.sites.copy()
        else:
            xy = kept.positions[:, :2]
            inside = (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)
            numbers, positions, sites = kept.numbers[inside], kept.positions[inside], kept.sites[inside]
        positions[:, 0] -= x0
        positions[:, 1] -= y0
        atoms = Atoms(numbers=numbers, positions=positions, cell=[x1 - x0, y1 - y0, 0.0])
        atoms.arrays["site"] = sites
        atoms.info["window"] = window.as_dict()
        atoms.info["sample"] = self.name
        return atoms

    def _atoms_between(self, x0: float, y0: float, x1: float, y1: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Numbers, positions (Å, sample frame) and sites of the atoms in ``[x0, x1) x [y0, y1)`` (Å),
        built from the seed."""
        g = _BOUNDARY_MARGIN if self.sheets else 0.0  # grain boundaries are settled a little beyond the edge
        emptied = [tuple(site) for site, *_ in self.knocked_out.in_window(x0 - g, y0 - g, x1 + g, y1 + g)]
        grown = (x0 - g, y0 - g, x1 + g, y1 + g)
        parts = [self._layer_atoms(k, *grown, emptied) for k in range(len(self.layers))
                 if self.layers[k].touches(*grown)]
        if self.film is not None:
            parts.append(self._film_atoms(x0, y0, x1, y1, emptied))
        numbers = np.concatenate([p[0] for p in parts] or [np.zeros(0, int)])
        positions = np.concatenate([p[1] for p in parts] or [np.zeros((0, 3))])
        sites = np.concatenate([p[2] for p in parts] or [np.zeros((0, 4), int)])
        if self.sheets:
            keep = self._settle_boundaries(positions, sites)
            keep &= ((positions[:, 0] >= x0) & (positions[:, 0] < x1)
                     & (positions[:, 1] >= y0) & (positions[:, 1] < y1))
            numbers, positions, sites = numbers[keep], positions[keep], sites[keep]
        rippled = sites[:, 0] < len(self.layers)  # the layers ripple; a support film does not
        positions[rippled, 2] += self.ripples.height(positions[rippled, 0], positions[rippled, 1])
        return numbers, positions, sites

    def _layer_atoms(self, k: int, x0: float, y0: float, x1: float, y1: float,
                     emptied: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Numbers, positions (Å, sample frame) and sites ``(k, i, j, b)`` of layer ``k`` in the window."""
        layer, field = self.layers[k], self.fields[k]
        sx, sy = layer.shift
        inside = (x0, y0, x1, y1)  # the window; the lattice points that can strain into it lie around it
        x0, y0, x1, y1 = layer.clip(x0, y0, x1, y1)  # only where the layer is
        x0, y0, x1, y1 = x0 - layer.reach, y0 - layer.reach, x1 + layer.reach, y1 + layer.reach
        i, j, b, positions = layer.crystal.sites_in_window(x0 - sx, y0 - sy, x1 - sx, y1 - sy, layer.rotation)
        positions = positions + [sx, sy, layer.z]
        positions[:, 2] += self.stacking_lift(k, positions[:, 0], positions[:, 1])
        numbers = np.array([atomic_numbers[a.symbol] for a in layer.crystal.basis])[b]
        keep = np.ones(len(b), dtype=bool)
        lookup = _SiteIndex(i, j, b, len(layer.crystal.basis))
        n_basis = len(layer.crystal.basis)
        extra_xyz, extra_symbols, extra_sites, wrinkles = [], [], [], []
        top = layer.z + max(a.z for a in layer.crystal.basis)
        reach = field.reach
        for defect in field.in_window(x0 - reach, y0 - reach, x1 + reach, y1 + reach):
            spec, anchor = defect.spec, (defect.i, defect.j, defect.b)
            if spec.kind in ("vacancy", "substitution"):
                at = lookup.find([anchor])
                if spec.kind == "vacancy":
                    keep[at] = False
                elif len(at):
                    numbers[at] = atomic_numbers[spec.species]
                    positions[at, 2] += spec.z_offset
            elif spec.kind == "multivacancy":
                sites = multivacancy_sites(layer.crystal, defect, layer.rotation, np.array(layer.shift))
                keep[lookup.find(sorted(sites))] = False
            elif spec.kind == "stone-wales":
                pair = lookup.find([anchor, (defect.i, defect.j, 1 - defect.b)])
                if len(pair) == 2:  # both atoms of the bond in the window: turn it by 90° about its middle
                    middle = positions[pair, :2].mean(axis=0)
                    offset = positions[pair, :2] - middle
                    positions[pair, :2] = middle + offset[:, ::-1] * [-1.0, 1.0]
            elif spec.kind == "wrinkle":
                wrinkles.append(defect)
            elif spec.kind == "pore":
                keep &= np.hypot(positions[:, 0] - defect.x, positions[:, 1] - defect.y) >= defect.size
            elif spec.kind == "adsorbate":
                extra_xyz.append([[defect.x, defect.y, top + spec.height]])
                extra_symbols.append([spec.species])
                extra_sites.append([(k, *anchor[:2], n_basis)])
            else:  # contamination
                xyz, symbols = contamination_atoms(defect, top)
                extra_xyz.append(xyz)
                extra_symbols.append(symbols)
                extra_sites.append([(k, *anchor[:2], n_basis + 1 + n) for n in range(len(symbols))])
        mine = [site[1:] for site in emptied if site[0] == k and site[3] < n_basis]
        keep[lookup.find(mine)] = False
        sites = np.column_stack([np.full(len(b), k), i, j, b])
        if extra_xyz:
            xyz = np.concatenate([np.reshape(e, (-1, 3)) for e in extra_xyz])
            added = np.array([s for group in extra_sites for s in group]).reshape(-1, 4)
            symbols = [s for group in extra_symbols for s in group]
            inside = (xyz[:, 0] >= x0) & (xyz[:, 0] < x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] < y1)
            gone = {site for site in emptied if site[0] == k and site[3] >= n_basis}
            if gone:  # (most windows have none: then no list of every added atom's site to check)
                inside &= np.array([tuple(site) not in gone for site in added.tolist()], dtype=bool)
            positions = np.concatenate([positions, xyz[inside]])
            numbers = np.concatenate([numbers, np.array([atomic_numbers[s] for s in symbols], int)[inside]])
            sites = np.concatenate([sites, added[inside]])
            keep = np.concatenate([keep, np.ones(int(inside.sum()), dtype=bool)])
        for wrinkle in wrinkles:
            positions[:, 2] += wrinkle_lift(wrinkle, positions[:, 0], positions[:, 1])
        if layer.displacement is not None:
            positions[:, 0], positions[:, 1] = layer.displaced(positions[:, 0], positions[:, 1])
            keep &= ((positions[:, 0] >= inside[0]) & (positions[:, 0] < inside[2])
                     & (positions[:, 1] >= inside[1]) & (positions[:, 1] < inside[3]))
        if layer.flakes:
            keep &= covered(layer.flakes, positions[:, 0] * ANGSTROM, positions[:, 1] * ANGSTROM)
        return numbers[keep], positions[keep], sites[keep]

    def stacking_lift(self, k: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """How far (Å) layer ``k`` stands above its nominal height at ``x``, ``y`` (Å): the moiré
        corrugation of each like pair of layers beneath it and of its own (see :mod:`stacking`)."""
        lift = np.zeros(np.shape(x))
        for pair in self.registries[1 : k + 1]:
            if pair is not None:
                lift = lift + pair.lift(x, y)
        return lift

    @property
    def sheets(self) -> bool:
        return any(layer.sheet >= 0 for layer in self.layers)

    def _settle_boundaries(self, positions: np.ndarray, sites: np.ndarray) -> np.ndarray:
        """Which atoms stay where grains of a sheet meet: of two atoms of different grains closer than
        0.8 of a bond, the one of the later grain goes (the same pairs in any window: decided from
        both atoms, a margin beyond the window's edge)."""
        keep = np.ones(len(positions), dtype=bool)
        sheet = np.array([layer.sheet for layer in self.layers] + [-1])  # the film is no sheet
        of_sheet = sheet[sites[:, 0]] >= 0
        index = np.flatnonzero(of_sheet)
        if len(index) < 2:
            return keep
        bond = min(layer.crystal.a for layer in self.layers if layer.sheet >= 0) / np.sqrt(3)
        pairs = cKDTree(positions[index, :2]).query_pairs(0.8 * bond, output_type="ndarray")
        a, b = index[pairs[:, 0]], index[pairs[:, 1]]
        different = sites[a, 0] != sites[b, 0]
        later = np.where(sites[a, 0] > sites[b, 0], a, b)[different]
        keep[later] = False
        return keep

    def grain_boundary_at(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """The grain boundary segment (m) whose middle is ``(x, y)``."""
        return min(self.grain_boundaries, key=lambda ab: float(np.hypot(*((ab[0] + ab[1]) / 2 - [x, y]))))

    def site_defect(self, k: int, kind: str, x: float, y: float) -> SiteDefect:
        """The generated feature of ``kind`` in layer ``k`` whose ground-truth position is ``(x, y)`` (m)."""
        layer, field = self.layers[k], self.fields[k]
        r = layer.reach + 1e-3
        ax, ay = x / ANGSTROM, y / ANGSTROM
        candidates = [d for d in field.in_window(ax - r, ay - r, ax + r, ay + r) if d.spec.kind == kind]
        return min(candidates, key=lambda d: np.hypot(*(np.array(layer.displaced(d.x, d.y)) - [ax, ay])))

    def _film_atoms(self, x0: float, y0: float, x1: float, y1: float, emptied: list[tuple[int, ...]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The support film's carbon atoms in the window, sites ``(n_layers, cell x, cell y, k)``."""
        positions, cells = self.film.atoms(x0, y0, x1, y1)
        sites = np.column_stack([np.full(len(cells), len(self.layers)), cells])
        gone = {site for site in emptied if site[0] == len(self.layers)}
        if gone:
            keep = np.array([tuple(site) not in gone for site in sites.tolist()], dtype=bool)
            positions, sites = positions[keep], sites[keep]
        return np.full(len(positions), atomic_numbers["C"]), positions, sites

    def defects_in_window(self, window: Window) -> list[Defect]:
        """Ground truth: every defect or feature anchored in ``window``, grown or made by the beam."""
        x0, y0, x1, y1 = (v / ANGSTROM for v in (window.x_min, window.y_min, window.x_max, window.y_max))
        emptied = {site: (x, y, symbol) for site, x, y, symbol in self.knocked_out.in_window(x0, y0, x1, y1)}
        found = []
        for k, (layer, field) in enumerate(zip(self.layers, self.fields, strict=True)):
            r = layer.reach
            if not layer.touches(x0 - r, y0 - r, x1 + r, y1 + r):
                continue
            sites = [d for d in field.in_window(*layer.clip(x0 - r, y0 - r, x1 + r, y1 + r))
                     if not ((k, d.i, d.j, d.b) in emptied and d.spec.kind == "substitution")]
            # (a dopant the beam removed is now a vacancy, listed below)
            for defect in self._defects(k, sites):
                if not (window.x_min <= defect.x < window.x_max and window.y_min <= defect.y < window.y_max):
                    continue
                if layer.flakes and not covered(layer.flakes, defect.x, defect.y):
                    continue
                found.append(defect)
        for a, b in self.grain_boundaries:
            middle = (a + b) / 2
            if window.x_min <= middle[0] < window.x_max and window.y_min <= middle[1] < window.y_max:
                found.append(Defect("grain-boundary", None, self.crystal.basis[0].symbol, float(middle[0]),
                                    float(middle[1]), self.layers[0].z * ANGSTROM,
                                    size=float(np.hypot(*(b - a))), layer=-1))
        for (k, _, _, b), (x, y, symbol) in emptied.items():
            if k == len(self.layers):
                continue  # a film atom: the film is amorphous, it has no vacancies
            layer = self.layers[k]
            if b >= len(layer.crystal.basis):
                continue  # an added atom (adsorbate, contamination) the beam removed: not a vacancy
            z = (layer.z + layer.crystal.basis[b].z + float(self.ripples.height(x, y))
                 + float(self.stacking_lift(k, x, y)))
            found.append(Defect("vacancy", None, symbol, x * ANGSTROM, y * ANGSTROM, z * ANGSTROM,
                                origin="beam damage", layer=k))
        return found

    def _defects(self, k: int, sites: list[SiteDefect]) -> list[Defect]:
        """Ground-truth records of layer ``k``'s generated features ``sites`` (heights in one pass)."""
        if not sites:
            return []
        layer = self.layers[k]
        xy = np.empty((len(sites), 2))
        for n, d in enumerate(sites):
            xy[n] = d.x, d.y
            if d.spec.kind == "stone-wales":  # at the middle of the turned bond
                partner = layer.crystal.site_positions(np.array([d.i]), np.array([d.j]), np.array([1 - d.b]),
                                                       layer.rotation)[0, :2] + layer.shift
                xy[n] = (d.x + partner[0]) / 2, (d.y + partner[1]) / 2
        x, y = layer.displaced(xy[:, 0], xy[:, 1])
        base = layer.z + self.ripples.height(x, y) + self.stacking_lift(k, x, y)
        top = max(a.z for a in layer.crystal.basis)
        found = []
        for n, d in enumerate(sites):
            spec = d.spec
            z = base[n] + layer.crystal.basis[d.b].z + spec.z_offset
            if spec.kind in ("adsorbate", "contamination", "wrinkle"):
                z = base[n] + top + spec.height
            size = d.size * ANGSTROM if spec.kind in ("pore", "contamination", "wrinkle") else d.size
            found.append(Defect(kind=spec.kind, species=spec.species, host=layer.crystal.basis[d.b].symbol,
                                x=float(x[n]) * ANGSTROM, y=float(y[n]) * ANGSTROM, z=float(z) * ANGSTROM,
                                size=size, layer=k))
        return found

    def remove_atoms(self, atoms: Atoms) -> int:
        """Empty the sites of ``atoms`` (as returned by :meth:`atoms_in_window`); returns how many were
        removed. The sample's version increases, so everything computed from its atoms is redone."""
        if len(atoms) == 0:
            return 0
        window = atoms.info["window"]
        xy = atoms.positions[:, :2] + np.array([window["x_min"], window["y_min"]]) / ANGSTROM
        removed = self.knocked_out.add(atoms.arrays["site"], xy, atoms.get_chemical_symbols())
        if removed:
            with self._version_lock:
                self.version += 1
                if not self.sheets:  # (where grains meet, which atom stays depends on the others there)
                    RECENT.remove(self, self.version - 1, atoms.arrays["site"])
        return removed

    def top(self) -> float:
        """Height (Å) of the highest atoms' centres of the stack, before ripples."""
        return max(layer.z + max(a.z for a in layer.crystal.basis) for layer in self.layers)

    def surface_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Continuum top surface (m) at ``x``, ``y`` (m): ripples plus the top atoms' vdW radius, or
        the support's surface (the film's, or the floor) where no layer lies.

        Used where pixels are far coarser than the lattice and single atoms are irrelevant.
        """
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        height = np.full(x.shape, self.floor_height)
        ripples = self.ripples.height(x / ANGSTROM, y / ANGSTROM)
        if self.film is not None:
            film = ~self.film.in_hole(x / ANGSTROM, y / ANGSTROM)
            height = np.where(film, (self.film.top + vdw_radii[atomic_numbers["C"]]) * ANGSTROM, height)
        for k, layer in enumerate(self.layers):
            top = layer.z + max(a.z + vdw_radii[atomic_numbers[a.symbol]] for a in layer.crystal.basis)
            top = top + self.stacking_lift(k, x / ANGSTROM, y / ANGSTROM)
            here = covered(layer.flakes, x, y)
            height = np.where(here, np.maximum(height, (ripples + top) * ANGSTROM), height)
        return height

    @property
    def species(self) -> list[str]:
        """Every element the sample can hold: the layers' and their defects'."""
        added = {spec.species for spec in self.defect_specs if spec.species}
        if any(spec.kind == "contamination" for spec in self.defect_specs):
            added |= {"C", "H"}
        if self.film is not None:
            added.add("C")
        return sorted({s for layer in self.layers for s in layer.crystal.species} | added)

    @property
    def mean_plane(self) -> float:
        """Height (Å) of the layers' mean plane: where the TEM's zero defocus lies (with the stage at
        eucentric height), as a microscopist focuses on the specimen."""
        return float(np.mean([layer.z for layer in self._distinct_layers()]))

    @property
    def lattice_spacing(self) -> float:
        """First-order lattice spacing (m): a camera pixel must be under half of it to see fringes."""
        return self.crystal.first_order_spacing * ANGSTROM

    def atom_density(self) -> float:
        """Atoms per m² of the pristine stack (and of the support film, holes averaged in)."""
        film = 0.0 if self.film is None else self.film.atoms_per_area() / ANGSTROM**2
        return film + sum(len(layer.crystal.basis) / (layer.crystal.area_per_cell * ANGSTROM**2)
                          for layer in self._distinct_layers())

    def describe(self) -> dict[str, object]:
        """A summary for clients and metadata."""
        return {
            "name": self.name,
            "description": self.description,
            "material": " / ".join(layer.crystal.name for layer in self.layers),
            "lattice_constant": self.crystal.a * ANGSTROM,
            "rotation": self.rotation,
            "layers": [{"material": layer.crystal.name, "rotation": layer.rotation, "z": layer.z * ANGSTROM,
                        "flakes": len(layer.flakes)} for layer in self.layers],
            "seed": self.seed,
            "version": self.version,
            "ripple_rms": self.ripples.rms * ANGSTROM,
            "support_height": self.support_height,
            "floor_height": self.floor_height,
            "support": "flat" if self.film is None else {
                "kind": "holey carbon", "top": self.film.top * ANGSTROM,
                "thickness": self.film.thickness * ANGSTROM,
                "hole_diameter": self.film.hole_diameter * ANGSTROM, "pitch": self.film.pitch * ANGSTROM},
            "defects": [
                {"label": s.label, "density_per_m2": s.density * 1e18, "z_offset": s.z_offset * ANGSTROM}
                for s in self.defect_specs
            ],
        }


def _registries(layers: tuple[Layer, ...]) -> list[Registry | None]:
    """For each layer, its registry on the layer beneath (``None`` for the first, for grains of
    polycrystalline sheets and for unlike lattices)."""
    found: list[Registry | None] = [None]
    for lower, upper in zip(layers, layers[1:], strict=False):
        single = lower.sheet < 0 and upper.sheet < 0
        found.append(registry(lower.crystal, lower.rotation, lower.shift, upper.crystal, upper.rotation,
                              upper.shift) if single else None)
    return found


class _SiteIndex:
    """Finds lattice sites ``(i, j, b)`` among those of a window (which come sorted by i, j, b)."""

    def __init__(self, i: np.ndarray, j: np.ndarray, b: np.ndarray, n_basis: int) -> None:
        self.n_basis = n_basis
        self.i0 = int(i.min()) if len(i) else 0
        self.j0 = int(j.min()) if len(j) else 0
        self.nj = int(j.max()) - self.j0 + 1 if len(j) else 1
        self.keys = self._key(i, j, b)

    def _key(self, i: np.ndarray, j: np.ndarray, b: np.ndarray) -> np.ndarray:
        cell = (np.asarray(i) - self.i0) * self.nj + (np.asarray(j) - self.j0)
        return cell * self.n_basis + np.asarray(b)

    def find(self, sites: list[tuple[int, int, int]]) -> np.ndarray:
        """Indices of those ``sites`` that are in the window."""
        if not sites or len(self.keys) == 0:
            return np.zeros(0, dtype=np.int64)
        i, j, b = np.array(sites, dtype=np.int64).reshape(-1, 3).T
        inside = (j >= self.j0) & (j < self.j0 + self.nj) & (b < self.n_basis)
        keys = self._key(i, j, b)[inside]
        at = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
        return at[self.keys[at] == keys]
