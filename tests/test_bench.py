"""``twin bench`` runs end to end and reports every figure (values are not asserted: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_json_reports_every_figure():
    result = subprocess.run([sys.executable, "-m", "twin", "bench", "--json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"machine", "startup", "tem_1024", "tem_low_magnification", "stem", "analytical",
                            "afm_256", "afm_512", "afm_1024", "datasets", "transport", "episodes"}
    numbers = [v for section in ("startup", "tem_1024", "tem_low_magnification", "stem", "analytical",
                                "afm_256", "afm_512",
                                "afm_1024", "datasets", "transport", "episodes")
               for v in figures[section].values()]
    assert all(isinstance(v, (int, float)) and v >= 0 for v in numbers)
    assert figures["episodes"]["replay_identical"] is True
    assert {"pyro_vs_raw_4mib", "pyro_vs_raw_16mib", "bytes_vs_list_serpent"} <= set(figures["transport"])
