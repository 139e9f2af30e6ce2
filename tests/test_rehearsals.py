"""Lab scripts, rewritten after public AutoScript scripts, run unchanged through ``twin run``.

Each script under ``tests/rehearsals/`` names the public script whose calls it follows (same calls, same
order, same expectations; no code or text carried over) and, on a line ``# twin run: OPTIONS``, the
options of ``twin run`` it needs (``--serve --state stem``: the operator left the column in STEM mode).
A rehearsal passes when the script runs to its end, through the vendor's module names, against a twin
as it starts. The scripts share one server, each returned to its start-up state first (``twin run
--reset``, with the script's ``--state`` and ``--set``); one that needs a server option (``--time-scale``)
gets a twin of its own (``twin run --serve``), as its line says.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from twin.cli import main
from twin.server.launcher import ServerProcess

REHEARSALS = sorted((Path(__file__).parent / "rehearsals").glob("*.py"))


def options_of(script: Path) -> list[str]:
    """The ``twin run`` options a rehearsal asks for on its ``# twin run:`` line."""
    for line in script.read_text().splitlines():
        if line.startswith("# twin run:"):
            return shlex.split(line.removeprefix("# twin run:"))
    raise AssertionError(f"{script.name} has no '# twin run:' line")


def test_every_rehearsal_names_its_public_source() -> None:
    assert len(REHEARSALS) >= 4
    for script in REHEARSALS:
        first = script.read_text().splitlines()[0]
        assert first.startswith("# Rehearses: ") and "/" in first, script.name


RESETTABLE = {"--serve", "--state", "--set"}  # options a reset gives; any other needs a server of its own


def on_shared_twin(options: list[str], port: int) -> list[str]:
    """``options`` for the shared twin (``--reset`` instead of ``--serve``), unless one needs its own."""
    if any(option.startswith("--") and option not in RESETTABLE for option in options):
        return options
    return ["--reset", "--port", str(port), *(option for option in options if option != "--serve")]


@pytest.fixture(scope="module")
def shared_twin(tmp_path_factory) -> ServerProcess:
    """The twin ``twin run --serve`` starts (seed 0, instant), shared by the rehearsals."""
    server = ServerProcess.start("--data-dir", str(tmp_path_factory.mktemp("rehearsal-files")))
    yield server
    assert server.stop() == 0


@pytest.mark.parametrize("script", REHEARSALS, ids=lambda path: path.stem)
def test_a_lab_script_runs_unchanged_through_twin_run(script: Path, shared_twin: ServerProcess,
                                                      tmp_path: Path, monkeypatch, capsys) -> None:
    """``twin run`` in this process, as the command runs (the script through runpy). Every script finds
    the twin as it starts: without the reset, scripts run one after another find the tip still approached
    or the column in another mode, as the previous script left them."""
    monkeypatch.setenv("TWIN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("TWIN_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)
    assert main(["run", *on_shared_twin(options_of(script), shared_twin.port), str(script)]) == 0
    assert "rehearsal complete" in capsys.readouterr().out
