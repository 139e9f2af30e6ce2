"""Scenarios: files, seeded hidden state, budgets, journals, replay (in process, through the same gate
remote calls pass)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from twin.cli import main
from twin.instruments.usage import BudgetExhausted
from twin.scenarios import journal, spec
from twin.server.instances import Instance
from twin.server.replay import replay

AUTOFOCUS = "tem-autofocus"


def write_scenario(tmp_path, body: str, name: str = "probe") -> str:
    path = tmp_path / f"{name}.scenario.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


MINIMAL = """\
    title: a probe
    goal: look
    sample: graphene
    score: {function: tem_focus, focus_tolerance: 5 nm, astigmatism_tolerance: 2 nm}
"""


def test_scenario_list_shows_every_built_in_with_its_title(capsys) -> None:
    assert main(["scenario", "list"]) == 0
    out = capsys.readouterr().out
    for name, path in spec.available().items():
        assert name in out and spec.load(path).title in out
    assert len(spec.available()) >= 1


@pytest.mark.parametrize(("extra", "message"), [
    ("colour: blue\n", "unknown keys colour"),
    ("budgets: {coffee: 3}\n", "budgets has unknown keys coffee"),
    ("budgets: {calls: -3}\n", "budgets.calls = -3.0 is out of range"),
    ("hidden: {tem: {twin.focus_offset: {gaussian: [0, 1]}}}\n", "give a value or one of uniform"),
    ("hidden: {tem: {twin.focus_offset: {uniform: [1 um, -1 um]}}}\n", "lo must not exceed hi"),
    ("hidden: {tem: {twin.focus_offset: {uniform: [1 kg, 2 kg]}}}\n", "is not a length"),
    ("hidden: {tem: {twin.no_such_thing: 3}}\n", "setting 'twin.no_such_thing' does not exist"),
    ("settings: {tem: {source.acceleration_voltage: 900 kV}}\n", "settings.tem: source.acceleration_voltage"),
    ("forbid: [microwave.start]\n", "forbid entry 'microwave.start'"),
    ("events: [{after: {coffees: 3}, set: {afm: {twin.tip_radius: 9 nm}}}]\n", "unknown keys coffees"),
])
def test_a_bad_scenario_file_is_refused_naming_the_field(tmp_path, extra: str, message: str) -> None:
    path = write_scenario(tmp_path, MINIMAL + "    " + extra)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        spec.load(path)


def test_an_unknown_score_function_is_refused(tmp_path) -> None:
    path = write_scenario(tmp_path, MINIMAL.replace("tem_focus", "vibes"))
    with pytest.raises(ValueError, match="score.function = 'vibes' is not allowed"):
        spec.load(path)


def test_the_seed_draws_the_hidden_state_and_every_draw_stays_in_its_range() -> None:
    scenario = spec.load(AUTOFOCUS)
    states = [scenario.draw(seed).settings["tem"] for seed in range(40)]
    assert scenario.draw(7) == scenario.draw(7)
    offsets = np.array([s["twin.focus_offset"] for s in states])
    astigmatism = np.array([np.hypot(*s["twin.objective_astigmatism"]) for s in states])
    assert np.all(np.abs(offsets) <= 300e-9) and np.ptp(offsets) > 300e-9
    assert np.all((astigmatism >= 5e-9) & (astigmatism <= 20e-9))
    twin = scenario.build(7)
    assert twin.tem.settings.get("twin.focus_offset") == scenario.draw(7).settings["tem"]["twin.focus_offset"]
    assert twin.tem.settings.get("optics.optical_mode") == "Stem"  # the open starting state
    assert twin.tem.settings.get("optics.scan_field_of_view") == pytest.approx(4e-9)
    assert not twin.ground_truth


def play(instance: Instance) -> list:
    """A short episode: defocus steps, HAADF images, a refused call, the answer."""
    results = []
    for defocus in (-20e-9, 0.0, 35e-9):
        instance.invoke("tem.set", ["optics.defocus", defocus], {})
        results.append(instance.invoke("tem.acquire_stem_images", [["HAADF"], 64, 2e-6], {}))
    with pytest.raises(ValueError):
        instance.invoke("tem.set", ["optics.defocus", 5.0], {})
    results.append(instance.invoke("episode.submit", [{}], {}))
    return results


def test_the_same_seed_and_calls_give_the_same_journal_and_score(tmp_path) -> None:
    scenario = spec.load(AUTOFOCUS)
    first, second = (Instance.playing("a", scenario, 11, tmp_path / str(i)) for i in (1, 2))
    other = Instance.playing("a", scenario, 12)
    scores = [play(i)[-1]["score"] for i in (first, second, other)]
    assert scores[0] == scores[1] != scores[2]
    entries = [[journal.deterministic(e) for e in i.episode.journal.entries] for i in (first, second)]
    assert entries[0] == entries[1]
    assert len(entries[0]) == 8 and entries[0][-2]["error"].startswith("ValueError: optics.defocus = 5.0")
    written = [journal.read(next((tmp_path / str(i)).iterdir())) for i in (1, 2)]
    assert written[0][0]["seed"] == 11 and written[0][0]["scenario_digest"] == scenario.digest
    assert [journal.deterministic(e) for e in written[0][1]] == [journal.deterministic(e)
                                                                  for e in written[1][1]]
    image = first.episode.journal.entries[1]["result"][0]["data"]
    assert image["shape"] == [64, 64] and len(image["sha256"]) == 24


def test_a_replay_makes_the_same_data_and_notices_a_tampered_result(tmp_path) -> None:
    instance = Instance.playing("team", spec.load(AUTOFOCUS), 5, tmp_path)
    original = play(instance)
    path = next(tmp_path.iterdir())
    again = replay(path, keep_results=True)
    assert again.identical and again.calls == 8
    assert again.score == again.recorded_score == original[-1]["score"]
    np.testing.assert_array_equal(again.results[1][0]["data"], original[0][0]["data"])
    lines = path.read_text().splitlines()
    entry = json.loads(lines[4])
    entry["result"][0]["data"]["sha256"] = "0" * 24
    lines[4] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    assert replay(path).differing == [3]
    assert main(["scenario", "replay", str(path)]) == 1


def test_odd_arguments_are_journalled_whole_and_the_real_error_reaches_the_caller(tmp_path) -> None:
    path = write_scenario(tmp_path, MINIMAL)
    instance = Instance.playing("x", spec.load(path), 1, tmp_path / "journals")
    with pytest.raises(ValueError, match="optics.defocus"):
        instance.invoke("tem.set", ["optics.defocus", float("nan")], {})
    odd = {"heights": np.array([[np.nan, np.inf], [1.0, -np.inf]]), "z": 1 + 2j, "blob": b"\x00\xff"}
    with pytest.raises(TypeError, match="answer must be a mapping"):
        instance.invoke("episode.submit", [[odd]], {})
    kept = instance.episode.journal.entries
    _, written = journal.read(next((tmp_path / "journals").iterdir()))
    assert [journal.deterministic(e) for e in written] == [journal.deterministic(e) for e in kept]
    assert written[0]["error"].startswith("ValueError: optics.defocus") and np.isnan(
        journal.decode(written[0]["args"])[1])
    again = journal.decode(written[1]["args"])[0][0]
    np.testing.assert_array_equal(again["heights"], odd["heights"])
    assert again["z"] == odd["z"] and again["blob"] == odd["blob"]


@pytest.mark.parametrize("positions", [[["a", "b"]], [[1e300, 0.0]], [[np.nan, 0.0]], [[1e-9, 2e-9, 0.0]]])
def test_a_malformed_answer_names_the_field_and_its_range_and_the_episode_goes_on(positions) -> None:
    instance = Instance.playing("x", spec.load("stem-atom-finding"), 1)
    with pytest.raises(ValueError, match=r"answer positions must be a list of \[x, y\] positions in m \(each "
                                         r"-1 to 1 m\), got"):
        instance.invoke("episode.submit", [{"positions": positions}], {})
    assert not instance.episode.status()["over"]


def test_a_journal_whose_calls_come_out_differently_is_not_carried_on(tmp_path) -> None:
    from twin.server.replay import resume

    instance = Instance.playing("team", spec.load(AUTOFOCUS), 5, tmp_path)
    play(instance)
    path = instance.episode.journal.path
    carried = resume(path).instance
    assert carried.episode.result.value == instance.episode.result.value
    assert carried.episode.journal.entries == instance.episode.journal.entries  # the originals, kept
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["result"][0]["data"]["sha256"] = "0" * 24
    path.write_text("\n".join([*lines[:2], json.dumps(entry), *lines[3:]]) + "\n")
    with pytest.raises(ValueError, match=r"cannot be carried on: entries \[1\] come out differently"):
        resume(path)


def test_a_journal_cut_short_mid_line_is_carried_on_from_its_last_whole_line(tmp_path) -> None:
    from twin.server.replay import resume

    instance = Instance.playing("team", spec.load(AUTOFOCUS), 5, tmp_path)
    for defocus in (10e-9, 20e-9):
        instance.invoke("tem.set", ["optics.defocus", defocus], {})
    path = instance.episode.journal.path
    text = path.read_text()
    path.write_text(text[:-40])  # the server died while writing the second call
    carried = resume(path).instance
    assert carried.twin.tem.get("optics.defocus") == pytest.approx(10e-9)
    carried.invoke("tem.set", ["optics.defocus", 30e-9], {})
    header, entries = journal.read(path)
    assert [e["args"][1] for e in entries] == [10e-9, 30e-9] and [e["n"] for e in entries] == [0, 1]


def test_a_second_episode_of_the_same_team_gets_its_own_journal(tmp_path) -> None:
    scenario = spec.load(AUTOFOCUS)
    paths = [Instance.playing("team", scenario, 1, tmp_path).episode.journal.path for _ in range(3)]
    assert [p.name for p in paths] == ["tem-autofocus-seed1-team.jsonl", "tem-autofocus-seed1-team-2.jsonl",
                                       "tem-autofocus-seed1-team-3.jsonl"]


def test_replay_refuses_a_journal_whose_scenario_file_changed(tmp_path) -> None:
    path = write_scenario(tmp_path, MINIMAL)
    instance = Instance.playing("x", spec.load(path), 1, tmp_path / "journals")
    instance.invoke("tem.get", ["optics.defocus"], {})
    with open(path, "a") as file:
        file.write("# edited\n")
    with pytest.raises(ValueError, match="has changed since the journal was written"):
        replay(next((tmp_path / "journals").iterdir()))


def test_budgets_refuse_the_call_that_would_overdraw_and_change_nothing(tmp_path) -> None:
    path = write_scenario(tmp_path, MINIMAL + "    budgets: {calls: 7, electrons: 2e9, lines: 64}\n")
    instance = Instance.playing("x", spec.load(path), 1)
    tem, usage = instance.twin.tem, instance.twin.usage
    instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 0.1], {})  # 1 nA x 0.1 s = 6.2e8 e
    with pytest.raises(BudgetExhausted, match=r"budget exhausted: electrons = 6\.24.e\+08 of 2e\+09 e"):
        instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 1.0], {})
    assert tem.frames_taken == 1 and usage.spent()["electrons"] == pytest.approx(1e-10 / 1.602176634e-19)
    instance.invoke("tem.set", ["optics.beam_blanked", True], {})
    instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 5.0], {})  # blanked: no electrons
    afm = instance.twin.afm
    instance.invoke("afm.start_approach", [], {})
    instance.invoke("afm.set", ["Scan.Lines", 128], {})
    with pytest.raises(BudgetExhausted, match="lines = 0 of 64"):
        instance.invoke("afm.start_frame_up", [], {})
    assert afm.frames_scanned == 0
    with pytest.raises(BudgetExhausted, match="calls = 7 of 7 made"):
        instance.invoke("tem.get", ["optics.defocus"], {})
    status = instance.episode.status()
    assert status["budgets"]["calls"] == {"spent": 7, "limit": 7, "unit": ""}
    assert status["budgets"]["lines"]["spent"] == 0


def test_forbidden_calls_and_calls_after_the_answer_are_refused() -> None:
    instance = Instance.playing("x", spec.load(AUTOFOCUS), 1)
    refused = "tem.run_auto_function is not allowed in scenario 'tem-autofocus'"
    with pytest.raises(PermissionError, match=refused):
        instance.invoke("tem.run_auto_function", ["stem_auto_focus", {}], {})
    with pytest.raises(TypeError, match="answer must be a mapping"):
        instance.invoke("episode.submit", [[1, 2]], {})
    assert instance.invoke("episode.submit", [{}], {})["score"] >= 0.0
    with pytest.raises(RuntimeError, match="episode over"):
        instance.invoke("tem.get", ["optics.defocus"], {})
    with pytest.raises(RuntimeError, match="already scored"):
        instance.invoke("episode.submit", [{}], {})


def test_hidden_events_fire_when_their_counter_is_reached(tmp_path) -> None:
    path = write_scenario(tmp_path, MINIMAL + """\
    events:
      - after: {tem_frames: {integers: [2, 2]}}
        set: {tem: {twin.focus_offset: 40 nm}}
""")
    instance = Instance.playing("x", spec.load(path), 1)
    for expected in (0.0, 0.0, 40e-9):
        assert instance.twin.tem.settings.get("twin.focus_offset") == pytest.approx(expected)
        instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 0.01], {})


def test_images_tell_a_challenge_only_what_the_instrument_knows() -> None:
    instance = Instance.playing("x", spec.load(AUTOFOCUS), 2)
    instance.twin.tem.stage._error[:] = (3e-9, -2e-9)  # a known stage error for the check
    image = instance.invoke("tem.acquire_stem_images", [["HAADF"], 64, 1e-6], {})[0]
    record = image["metadata"]["twin"]
    assert not {"aberrations", "seed", "frame", "specimen_offset", "atoms_knocked_out"} & set(record)
    assert record["scan_centre"] == pytest.approx({"x": 0.0, "y": 0.0}, abs=1e-15)  # where the stage says
    hidden = instance.twin.tem.acquire_stem_images(["HAADF"], 64, 1e-6)[0]["metadata"]["twin"]
    assert hidden["scan_centre"]["x"] == pytest.approx(3e-9, abs=0.5e-9)  # where the beam really was


def test_many_teams_share_cache_memory_and_keep_only_images_their_score_reads(monkeypatch, tmp_path) -> None:
    from twin.cli import parser
    from twin.scenario_commands import CACHED_TWINS, instances_from
    from twin.scenarios import episode

    instances, _ = instances_from(parser().parse_args([
        "serve", "--instance", "gentle=tem-beam-sensitive:1", "--teams", str(2 * CACHED_TWINS - 1),
        "--seed-per-team", "--scenario", AUTOFOCUS, "--seed", "3", "--journal-dir", str(tmp_path)]))
    assert [i.episode.seed for i in instances[:3]] == [1, 3, 4]
    for instance in instances:
        hrtem, hardware = instance.twin.tem.hrtem, instance.twin.tem.hardware
        assert hrtem.exit_waves.max_bytes == hardware.cache_bytes // 2
        assert hrtem.kernels.max_bytes == hardware.kernel_cache_bytes // 2
    gentle, autofocus = instances[0], instances[1]
    for instance in (gentle, autofocus):
        instance.invoke("tem.set", ["optics.optical_mode", "Tem"], {})
    size = gentle.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 0.001], {})["data"].nbytes
    monkeypatch.setattr(episode, "KEPT_IMAGE_BYTES", 2.5 * size)
    for instance in (gentle, autofocus):
        for _ in range(3):
            instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 256, 0.001], {})
    assert not autofocus.episode.images  # its score reads no image
    assert [key[1] for key in gentle.episode.images] == [2, 3]  # the newest that fit
    with pytest.raises(ValueError, match=r"fraction = 0 is out of range"):
        gentle.twin.tem.share_caches(0)


@pytest.mark.parametrize(("options", "message"), [
    (["--scenario", "nope"], "scenario = 'nope' is not a built-in scenario or a file"),
    (["--instance", "a=tem-autofocus:x"], "the seed after ':' must be an integer, got 'x'"),
    (["--instance", "a=tem-autofocus:-2"], "seed = -2 is out of range"),
    (["--instance", "a b=tem-autofocus"], "instance = 'a b': give a name or token without"),
    (["--instance", "a"], "--instance 'a': name a scenario (NAME=SCENARIO) or give --scenario"),
    (["--instance", "a=tem-autofocus", "--instance", "a=afm-tip-change"], "--instance 'a' is given twice"),
    (["--teams", "0", "--scenario", "tem-autofocus"], "--teams = 0 is out of range; allowed 1 to 500"),
    (["--scenario", "tem-autofocus", "--seed-per-team"], "--seed-per-team needs --teams N"),
    (["--scenario", "tem-autofocus", "--sample", "graphene"], "--scenario sets the sample, the ground truth"),
    (["--scenario", "tem-autofocus", "--tokens", "/no/such/t.csv"], "--tokens '/no/such/t.csv' cannot"),
])
def test_bad_challenge_options_are_refused_before_serving(options, message, tmp_path) -> None:
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        main(["serve", "--port", "1", "--journal-dir", str(tmp_path), *options])


def test_a_broken_journal_keeps_only_its_own_team_out_on_resume(tmp_path, capsys) -> None:
    from twin.cli import parser
    from twin.scenario_commands import instances_from

    options = ["serve", "--instance", "a=tem-autofocus:1", "--instance", "b=tem-autofocus:2",
               "--journal-dir", str(tmp_path)]
    first, _ = instances_from(parser().parse_args(options))
    for instance in first:
        instance.invoke("tem.set", ["optics.defocus", 10e-9], {})
        instance.invoke("tem.set", ["optics.defocus", 20e-9], {})
        instance.episode.journal.close()
    broken = tmp_path / "tem-autofocus-seed1-a.jsonl"
    lines = broken.read_text().splitlines()
    broken.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")  # a line mangled on disk
    carried, _ = instances_from(parser().parse_args([*options, "--resume"]))
    assert [i.name for i in carried] == ["b"] and carried[0].twin.tem.get("optics.defocus") == 20e-9
    assert "a: NOT SERVED: journal" in capsys.readouterr().out and "line 2 is not JSON" in str(
        pytest.raises(ValueError, journal.read, broken).value)


def test_a_resumed_episode_is_charged_the_wall_time_it_used_and_none_of_the_downtime(tmp_path) -> None:
    import time

    from twin.server.replay import resume

    instance = Instance.playing("team", spec.load(AUTOFOCUS), 5, tmp_path)
    instance.invoke("tem.set", ["optics.defocus", 10e-9], {})
    time.sleep(0.3)
    instance.invoke("tem.set", ["optics.defocus", 20e-9], {})
    used = instance.episode.status()["budgets"]["wall_time"]["spent"]
    instance.episode.journal.close()
    time.sleep(0.5)  # the server is down, then restarts (and resumes other teams) before this one calls
    carried = resume(instance.episode.journal.path).instance.episode
    time.sleep(0.5)
    assert carried.status()["budgets"]["wall_time"]["spent"] == pytest.approx(used, abs=0.05)
    carried.call("tem.get", lambda: 0.0, (), {}, "test")
    assert carried.status()["budgets"]["wall_time"]["spent"] == pytest.approx(used, abs=0.05)


def test_a_refused_call_with_junk_arguments_writes_a_line_not_the_junk_and_still_replays(tmp_path) -> None:
    from twin.server.replay import replay

    instance = Instance.playing("team", spec.load(AUTOFOCUS), 5, tmp_path)
    junk = np.zeros(4 << 20)  # 32 MiB
    for _ in range(8):
        with pytest.raises((TypeError, ValueError)):
            instance.invoke("tem.set", ["optics.defocus", junk], {})
    instance.invoke("tem.set", ["optics.defocus", 20e-9], {})
    instance.episode.journal.close()
    path = instance.episode.journal.path
    assert path.stat().st_size < 16 << 10  # bytes: was 8 x ~100 MiB of JSON
    assert instance.episode.status()["budgets"]["calls"]["spent"] == 1  # refused before it counted
    again = replay(path)
    assert again.identical and again.instance.episode.calls == 1
    assert again.instance.twin.tem.get("optics.defocus") == pytest.approx(20e-9)
