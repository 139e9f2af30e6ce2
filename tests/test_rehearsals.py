"""Lab scripts, rewritten after public AutoScript scripts, run unchanged through ``twin run``.

Each script under ``tests/rehearsals/`` names the public script whose calls it follows (same calls, same
order, same expectations; no code or text carried over) and, on a line ``# twin run: OPTIONS``, the
options of ``twin run`` it needs (``--serve --state stem``: the operator left the column in STEM mode).
A rehearsal passes when the script runs to its end, through the vendor's module names, against a twin
started for it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_a_lab_script_runs_unchanged_through_twin_run(script: Path, tmp_path: Path) -> None:
    environment = {**os.environ, "TWIN_FIGURES": str(tmp_path / "figures"), "TWIN_PROGRESS": "0",
                   "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-m", "twin", "run", *options_of(script), str(script)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "rehearsal complete" in result.stdout
