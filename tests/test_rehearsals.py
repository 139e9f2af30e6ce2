"""Lab scripts, rewritten after public AutoScript scripts, run unchanged through ``twin run``.

Each script under ``tests/rehearsals/`` names the public script whose calls it follows (same calls, same
order, same expectations; no code or text carried over) and, on a line ``# twin run: OPTIONS``, the
options of ``twin run`` it needs (``--serve --state stem``: the operator left the column in STEM mode).
A rehearsal passes when the script runs to its end, through the vendor's module names, against a twin
started for it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from twin.cli import main

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


@pytest.mark.parametrize("script", REHEARSALS, ids=lambda path: path.stem)
def test_a_lab_script_runs_unchanged_through_twin_run(script: Path, tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    """``twin run --serve`` in this process, as the command runs (the script through runpy, a twin started
    for it). Each needs a twin of its own: run one after another on one twin, scripts find the tip still
    approached or the column in another mode, as the previous script left them."""
    monkeypatch.setenv("TWIN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("TWIN_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)
    assert main(["run", *options_of(script), str(script)]) == 0
    assert "rehearsal complete" in capsys.readouterr().out
