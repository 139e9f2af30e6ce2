"""The server tells how long its start took, counted from the command, and what took the time."""

from __future__ import annotations

import re

import pytest


def test_ready_counts_from_the_command_and_says_what_took_the_time(server):
    line = next(line for line in server.lines if "ready in" in line)
    parts = re.search(r"ready in ([\d.]+) s since the command \(Python and the simulation stack ([\d.]+) s, "
                      r"the twin and its server ([\d.]+) s, warm-up ([\d.]+) s; calls were accepted from "
                      r"([\d.]+) s on\)", line)
    assert parts, line
    total, loading, setup, warm, accepting = map(float, parts.groups())
    measured = server.seconds_until("ready in")  # from the launcher's Popen to the line arriving
    assert total == pytest.approx(measured, abs=1.0)  # the process's own clock, not the server's part
    assert total == pytest.approx(loading + setup + warm, abs=0.15)  # each part rounded to 0.1 s
    assert accepting == pytest.approx(loading + setup, abs=0.15)
