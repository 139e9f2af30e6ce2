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
