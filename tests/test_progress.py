"""Progress of long work where a person waits for it: a bar with the time left on a terminal, nothing
that fills a log file otherwise (``twin generate``'s bar is checked in test_datasets)."""

from __future__ import annotations

import io
import sys

import pytest

from clients import _remote


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Server:
    """A TEM proxy whose long call is 40 % done, then finished."""

    def __init__(self) -> None:
        self.reports = [{"task": "STEM scan (exact)", "fraction": 0.4, "seconds_left": 12.0}]

    def progress(self):
        return self.reports.pop(0) if self.reports else None

    def _pyroRelease(self) -> None:
        pass


@pytest.mark.parametrize("terminal", [True, False])
def test_a_long_call_shows_the_servers_progress_on_a_terminal_only(terminal, monkeypatch) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(_remote, "open_proxy", lambda *args: _Server())
    monkeypatch.setattr(_remote, "PROGRESS_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(_remote, "PROGRESS_EVERY_SECONDS", 0.05)
    monkeypatch.delenv(_remote.PROGRESS_VARIABLE, raising=False)
    reporter = _remote._ProgressReporter(_remote.Connection("127.0.0.1", 1))
    reporter._thread.join(timeout=0.5)  # a few looks at the server
    reporter.stop()
    shown = stream.getvalue()
    if terminal:
        assert "[twin] STEM scan (exact):  40%" in shown and "about 12 s left" in shown
        assert ": :" not in shown  # the task named once, however often the bar is redrawn
    else:
        assert shown == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_resuming_many_journals_shows_a_bar_on_a_terminal_only(terminal, tmp_path, monkeypatch, capsys
                                                               ) -> None:
    from twin.cli import parser
    from twin.scenario_commands import instances_from

    options = ["serve", "--teams", "2", "--scenario", "tem-autofocus", "--journal-dir", str(tmp_path)]
    for instance in instances_from(parser().parse_args(options))[0]:
        instance.invoke("tem.set", ["optics.defocus", 10e-9], {})
        instance.episode.journal.close()
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    carried, _ = instances_from(parser().parse_args([*options, "--resume"]))
    assert [i.twin.tem.get("optics.defocus") for i in carried] == [10e-9, 10e-9]
    out = capsys.readouterr().out
    assert "team-01: carried on" in out and "team-02: carried on" in out and "\r" not in out
    if terminal:
        assert "carrying on journals" in stream.getvalue() and "2/2" in stream.getvalue()
    else:
        assert stream.getvalue() == ""


@pytest.mark.parametrize("where", ["terminal", "pipe", "switched off"])
def test_twin_scenario_replay_shows_a_bar_over_the_journals_calls_on_a_terminal_only(
        where, tmp_path, monkeypatch, capsys) -> None:
    from twin.cli import main
    from twin.scenarios import spec
    from twin.server.instances import Instance

    instance = Instance.playing("team", spec.load("tem-autofocus"), 5, tmp_path)
    for defocus in (-20e-9, 0.0, 35e-9):
        instance.invoke("tem.set", ["optics.defocus", defocus], {})
    instance.invoke("tem.get", ["optics.defocus"], {})
    instance.episode.journal.close()
    journal = next(tmp_path.iterdir())
    stream = io.StringIO() if where == "pipe" else _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    if where == "switched off":
        monkeypatch.setenv("TWIN_PROGRESS", "0")
    else:
        monkeypatch.delenv("TWIN_PROGRESS", raising=False)
    assert main(["scenario", "replay", str(journal)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"replayed 4 calls of {journal.name}: 4 identical") and "\r" not in out
    if where == "terminal":  # the bar stays at its end: every call made again, no time left
        shown = stream.getvalue()
        assert f"replaying {journal.name}:" in shown and "0/4 calls" in shown
        assert "100%" in shown and "<00:00, 4/4 calls]" in shown
    else:
        assert stream.getvalue() == ""
