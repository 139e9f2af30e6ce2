"""The project's layers, read from the imports of every module: arrows run one way only.

    common       twin (the package), twin.common, twin.cf, twin.constants: what the twin and its clients share
    clients      what users import; they drive a twin over the network and need only ``common``
    validation   argument checks, and reading the YAML files (samples, scenarios, dataset configs)
    sample       what is there: atoms, defects, regions, their van der Waals surface
    physics      how a beam or a tip sees it (may read the sample; the sample never imports physics)
    instruments  stateful hardware, and the digital twin that holds a sample and its instruments
    scenarios    challenges (files, hidden state, episodes, scores), datasets, starting states
    server       Pyro5 daemon, services, instances, replay
    apps         programs that drive a twin: the CLI, agents, bench, first look, script runner, the
                 baselines (the only twin-side code that may import the clients, through their public API)

A layer imports itself and the layers its row names, all listed before it; every import counts (inside
functions and under ``TYPE_CHECKING`` too). Import cycles between modules are refused as well (here
``TYPE_CHECKING`` imports, which never run, do not count).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("twin", "clients", "scenarios")

# layer -> (modules: a name covers its submodules; "=name" the module alone), layers it may import
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "common": (("=twin", "twin.common", "twin.cf", "twin.constants"), ()),
    "clients": (("clients",), ("common",)),
    "validation": (("twin.validation", "twin.yaml_files"), ()),
    "sample": (("twin.sample",), ("common", "validation")),
    "physics": (("twin.physics",), ("common", "validation", "sample")),
    "instruments": (("twin.instruments", "twin.digital_twin"), ("common", "validation", "sample", "physics")),
    "scenarios": (("twin.scenarios", "=scenarios", "twin.datasets", "twin.starting_state"),
                  ("common", "validation", "sample", "physics", "instruments")),
    "server": (("twin.server",), ("common", "validation", "sample", "physics", "instruments", "scenarios")),
    "apps": (("twin.__main__", "twin.cli", "twin.scenario_commands", "twin.serve_workers", "twin.agents",
              "twin.bench", "twin.bench_hackathon",
              "twin.first_look", "twin.script_runner", "scenarios.baselines"),
             ("common", "clients", "validation", "sample", "physics", "instruments", "scenarios", "server")),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, at_run_time: bool = False) -> set[str]:
    """The project modules ``name`` imports (the deepest module each import names)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if at_run_time:  # leave out what only a type checker reads
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def layer_of(module: str) -> str | None:
    best, chosen = "", None
    for layer, (members, _) in LAYERS.items():
        for member in members:
            if member.startswith("="):
                hit = module == member[1:]
            else:
                hit = module == member or module.startswith(member + ".")
            if hit and len(member.lstrip("=")) > len(best):
                best, chosen = member.lstrip("="), layer
    return chosen


def test_the_layer_table_runs_one_way() -> None:
    order = list(LAYERS)
    for layer, (_, allowed) in LAYERS.items():
        assert all(order.index(lower) < order.index(layer) for lower in allowed), layer


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) is None] == []


def test_imports_run_down_the_layers_only() -> None:
    wrong = []
    for name, path in sorted(MODULES.items()):
        mine = layer_of(name)
        allowed = {mine, *LAYERS[mine][1]}
        for target in sorted(_imports(name, path)):
            theirs = layer_of(target)
            if theirs not in allowed:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "upward arrows:\n" + "\n".join(wrong)


def test_nothing_outside_the_clients_imports_their_private_modules() -> None:
    wrong = [f"{name} imports {target}" for name, path in sorted(MODULES.items())
             if layer_of(name) != "clients" for target in _imports(name, path)
             if layer_of(target) == "clients" and any(part.startswith("_") for part in target.split("."))]
    assert not wrong, "use the clients' public modules (clients.connection):\n" + "\n".join(wrong)


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = {name: _imports(name, path, at_run_time=True) & set(MODULES) for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_clients_import_without_abtem_ase_or_scipy() -> None:
    """A client machine drives a remote twin without the simulation's packages (abTEM blocked here)."""
    loaded = _run(
        "import sys\n"
        "sys.modules['abtem'] = None  # importing abTEM now fails\n"
        "import clients.tem, clients.afm, clients.challenge, clients.connection, clients.ground_truth\n"
        "from clients.tem.structures import StagePosition\n"
        "from clients.tem.enumerations import CameraType\n"
        "simulation = ('twin.sample', 'twin.physics', 'twin.instruments', 'twin.scenarios', 'twin.server')\n"
        "print(sorted(m for m, module in sys.modules.items() if module is not None\n"
        "             and (m.split('.')[0] in ('abtem', 'ase', 'scipy') or m.startswith(simulation))))"
    )
    assert loaded == "[]"


def test_importing_the_physics_leaves_abtems_configuration_alone() -> None:
    changed = _run(
        "import abtem\n"
        "keys = ('diagnostics.progress_bar', 'dask.lazy', 'fftw.planning_effort')\n"
        "before = [abtem.config.get(k) for k in keys]\n"
        "import twin.physics.stem, twin.physics.tem\n"
        "print([abtem.config.get(k) for k in keys] != before)"
    )
    assert changed == "False"


@pytest.mark.parametrize("old, new", [
    ("twin.server.wire", "twin.common.wire"), ("twin.cf", "twin.common.cf"),
    ("twin.instruments.afm.vocabulary", "twin.common.afm_vocabulary"),
    ("clients.tem.enumerations", "twin.common.tem_vocabulary"),
])
def test_old_module_paths_still_import_the_same_module(old, new) -> None:
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)
