"""A hackathon team, with only the client package, the source and public calls, cannot learn or rebuild
the hidden state: no reply carries the seed, the organiser's key or another team, and knowing the seed
(or trying every small one) rebuilds nothing."""

from __future__ import annotations

import csv
import hashlib
from typing import Any

import numpy as np
import pytest

from clients._remote import open_proxy
from clients.challenge import Challenge, leaderboard
from tests.fairness_bounds import BLIND_BOUNDS
from tests.test_fairness_afm import loop, tuned_loop
from twin.instruments.work import Limits
from twin.sample import Window
from twin.sample.truth import height_map
from twin.scenarios import spec
from twin.scenarios.secret import KEY_FILE, OrganiserKey
from twin.server import wire
from twin.server.instances import Instance
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"
SEED = 7_316_259_011  # distinctive, so a reply that carries it is found by its digits
TEAMS = {"alpha-team": "tem-autofocus", "bravo-team": "correlative-registration",
         "charlie-team": "tem-autofocus", "delta-team": "tem-autofocus"}  # delta: only looked at


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """A private server: alpha, charlie and delta play tem-autofocus, bravo correlative-registration, all from
    SEED. Its organiser key is a fixed one (any key would do; a fixed one keeps the single draw each test
    makes the same on every run; ``test_hackathon_server`` checks the key the server makes itself). This
    one draws the focus 41 nm off, far from the keyless episode's -23 nm (the seed route must miss), and
    its camera read, a Ronchigram of the STEM probe whose grid grows with the defocus, takes a second
    (at the 283 nm of the key used before, ten)."""
    folder = tmp_path_factory.mktemp("event")
    (folder / "journals").mkdir()
    key = folder / "journals" / KEY_FILE
    key.write_text(hashlib.sha256(b"test_fairness event key 14").hexdigest())
    key.chmod(0o600)
    tokens = folder / "tokens.csv"
    options = [a for name, scenario in TEAMS.items() for a in ("--instance", f"{name}={scenario}:{SEED}")]
    server = ServerProcess.start(*options, "--private", "--tokens", str(tokens), "--journal-dir",
                                 str(folder / "journals"))
    token = {row["instance"]: row["token"] for row in csv.DictReader(tokens.open())}
    yield server, token, folder
    assert server.stop() == 0


def _attempt(replies: list[str], call: Any, *args: Any) -> Any:
    """Make a call; keep the text of what came back, refusal or reply."""
    try:
        result = call(*args)
    except Exception as error:  # a refusal's message is a reply too
        replies.append(f"{type(error).__name__}: {error}")
        return None
    replies.append(repr(result))
    return result


def everything_a_team_can_read(server: ServerProcess, token: str) -> list[str]:
    """The replies to every read a team can make, images and refusals included, and its answer."""
    replies: list[str] = []
    proxies = {target: open_proxy(base, HOST, server.port, token) for target, base in
               (("tem", wire.TEM_OBJECT), ("afm", wire.AFM_OBJECT), ("sample", wire.SAMPLE_OBJECT),
                ("episode", wire.EPISODE_OBJECT))}
    tem, afm, sample, episode = proxies.values()
    for call in (tem.describe, tem.stage_position, tem.stage_is_moving, tem.field_of_view, tem.screen_current,
                 afm.describe, afm.approach_status, afm.stage_state, afm.is_scanning, afm.current_line,
                 afm.gallery, sample.info, episode.scenario, episode.status):
        _attempt(replies, call)
    for name in ("twin.focus_offset", "twin.objective_astigmatism", "optics.focus",
                 "source.acceleration_voltage"):
        _attempt(replies, tem.get, name)
    for name in ("twin.tip_radius", "ZController.IGain", "Scan.ImageWidth"):
        _attempt(replies, afm.get, name)
    _attempt(replies, sample.defects, {"x_min": -1e-8, "y_min": -1e-8, "x_max": 1e-8, "y_max": 1e-8})
    _attempt(replies, tem.set, "optics.focus", 7.0)  # out of range: the refusal names the range
    _attempt(replies, tem.run_auto_function, "RunBeamTiltAutoFocus", {})
    _attempt(replies, tem.acquire_stem_images, ["HAADF"], 64, 1e-6)
    _attempt(replies, tem.acquire_camera_image, "BM-Ceta", 256, 0.1)
    _attempt(replies, afm.start_approach)
    _attempt(replies, afm.set, "Scan.Points", 32)
    _attempt(replies, afm.set, "Scan.Lines", 32)
    _attempt(replies, afm.start_frame_up)
    for group, channel in ((0, 1), (1, 1), (0, 0)):
        _attempt(replies, afm.get_frame, group, channel)
    _attempt(replies, afm.get_line, 0, 1, 0, 0, 1)
    _attempt(replies, episode.submit, {})
    _attempt(replies, episode.submit, {})  # a second answer is refused
    _attempt(replies, episode.status)
    _attempt(replies, episode.journal)
    _attempt(replies, leaderboard, HOST, server.port)
    hub = open_proxy(wire.HUB_OBJECT, HOST, server.port)
    _attempt(replies, hub.instances)
    _attempt(replies, hub.leaderboard, "guessed-organiser-token")
    with wire.connect(f"PYRO:Pyro.Daemon@{HOST}:{server.port}") as daemon:  # Pyro's own object
        for object_id in _attempt(replies, daemon.registered) or []:
            _attempt(replies, daemon.get_metadata, object_id)
        _attempt(replies, daemon.info)
    for proxy in (*proxies.values(), hub):
        proxy._pyroRelease()
    return replies


def test_no_reply_to_a_team_carries_the_seed_the_key_or_another_team(event) -> None:
    server, token, folder = event
    key = OrganiserKey.load(folder / "journals" / KEY_FILE)
    secrets_ = {"public seed": str(SEED), "key": key.secret.hex(), "key id": key.id,
                "other team's token": token["bravo-team"], "other team's name": "bravo-team",
                "drawn seed": str(key.episode_seed("tem-autofocus", SEED)),
                "drawn seed (hex)": f"{key.episode_seed('tem-autofocus', SEED):x}"}
    replies = everything_a_team_can_read(server, token["alpha-team"])
    assert len(replies) > 40 and any("HAADF" in r for r in replies)  # images and refusals were read
    assert any("score" in r for r in replies)
    for what, secret in secrets_.items():
        leaking = [r[:200] for r in replies if secret in r]
        assert not leaking, f"a reply carries the {what}: {leaking}"
    assert (folder / "tokens.csv").stat().st_mode & 0o777 == 0o600


def test_the_organiser_key_reads_the_whole_board_and_a_guess_reads_nothing(event) -> None:
    server, _, folder = event
    key = OrganiserKey.load(folder / "journals" / KEY_FILE)
    public = leaderboard(HOST, server.port)
    assert [r["instance"] for r in public] == [None] * len(TEAMS) and not any("seed" in r for r in public)
    full = leaderboard(HOST, server.port, key.organiser_token())
    assert {r["instance"] for r in full} == set(TEAMS) and {r["seed"] for r in full} == {SEED}
    with pytest.raises(PermissionError, match="not this server's organiser token"):
        leaderboard(HOST, server.port, OrganiserKey.generate().organiser_token())
    assert str(key) == f"OrganiserKey(id={key.id})" and key.secret.hex() not in repr(key)


def _cancel_the_column(instance: Instance) -> tuple[float, list[float]]:
    """The focus and stigmator that cancel ``instance``'s hidden focus offset and astigmatism."""
    tem = instance.twin.tem
    astigmatism = np.array(tem.settings.get("twin.objective_astigmatism"))
    return tem.settings.get("twin.focus_offset"), list(-astigmatism / tem.hardware.stigmator_strength)


def test_knowing_the_seed_and_the_code_rebuilds_nothing(event) -> None:
    """The seed route: a team builds the episode of the public seed locally, as the package lets it, and
    answers with that episode's truth. It is right locally and wrong on the server."""
    server, token, _ = event
    local = Instance.playing("local", spec.load("tem-autofocus"), SEED)  # no key: what a team can build
    focus, stigmator = _cancel_the_column(local)
    local.invoke("tem.set", ["optics.focus", focus], {})
    local.invoke("tem.set", ["optics.objective_stigmator", stigmator], {})
    assert local.episode.submit({})["score"] == pytest.approx(1.0)  # the cheat works where the state is known
    fresh = Instance.playing("local", spec.load("correlative-registration"), SEED)
    frame = fresh.episode.hidden.frames["afm"]
    patch = next(d for d in fresh.twin.tem.sample.defects_in_window(Window.around(0.0, 0.0, 40e-9, 40e-9))
                 if d.kind in ("contamination", "adsorbate"))
    truth = {"rotation": frame.rotation, "offset": list(frame.offset), "defect_tem": [patch.x, patch.y],
             "defect_afm": [float(v) for v in fresh.twin.afm.sample.frame.from_sample(patch.x, patch.y)]}
    assert fresh.episode.submit(truth)["score"] == pytest.approx(1.0)

    tem = open_proxy(wire.TEM_OBJECT, HOST, server.port, token["charlie-team"])
    tem.set("optics.focus", focus)
    tem.set("optics.objective_stigmator", stigmator)
    tem._pyroRelease()
    for team, answer in (("charlie-team", {}), ("bravo-team", truth)):
        challenge = Challenge(HOST, server.port, token[team])
        assert challenge.submit(answer)["score"] < 0.3, team
        challenge.close()


def test_trying_every_small_seed_against_a_real_image_finds_none(event) -> None:
    """The brute-force route: one HAADF image from the server, compared with the same image of the
    locally built episode of every seed from 0 to 11 and of the true public seed."""
    server, token, _ = event
    tem = open_proxy(wire.TEM_OBJECT, HOST, server.port, token["delta-team"])
    served = tem.acquire_stem_images(["HAADF"], 64, 1e-6)[0]["data"].astype(float)
    tem._pyroRelease()
    scenario = spec.load("tem-autofocus")
    matches = []
    for seed in [*range(12), SEED]:
        local = Instance.playing("team", scenario, seed)
        image = local.invoke("tem.acquire_stem_images", [["HAADF"], 64, 1e-6], {})[0]["data"].astype(float)
        if np.array_equal(image, served) or np.corrcoef(image.ravel(), served.ravel())[0, 1] > 0.99:
            matches.append(seed)
    assert matches == []


def _truth_of(name: str, instance: Instance) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an episode's hidden state makes the perfect move: settings to make ('tem.NAME' or 'afm.NAME'),
    then the answer."""
    if name == "tem-autofocus":
        focus, stigmator = _cancel_the_column(instance)
        return {"tem.optics.focus": focus, "tem.optics.objective_stigmator": stigmator}, {}
    if name == "afm-pid-tuning":
        gains = tuned_loop(instance.twin.afm.settings.get("twin.loop_gain"))
        return {f"afm.{setting}": value for setting, value in loop(gains).items()}, {}
    if name == "afm-tip-change":
        return {}, {"frame_index": instance.episode.hidden.events[0]["at"]}
    if name in ("afm-tip-reconstruction", "afm-sparse-scan"):
        window = Window.around(0.0, 0.0, 60e-9, 60e-9)
        return {}, {"heights": height_map(instance.twin.sample, window, (128, 128),
                                          instance.twin.afm.sample.frame)}
    region = Window.around(0.0, 0.0, 3e-9 if name == "stem-atom-finding" else 16e-9,
                           3e-9 if name == "stem-atom-finding" else 16e-9)
    tem = instance.twin.tem
    dx, dy = tem.stage.specimen_offset(tem.settings.get("twin.stage_errors"), tem.settings.get("twin.drift"))
    seen = Window(region.x_min + dx, region.y_min + dy, region.x_max + dx, region.y_max + dy)
    if name == "stem-atom-finding":
        atoms = tem.sample.atoms_in_window(seen)
        points = np.array([seen.x_min - dx, seen.y_min - dy]) + atoms.positions[:, :2] * 1e-10
    else:
        points = np.array([(d.x - dx, d.y - dy) for d in tem.sample.defects_in_window(seen)
                           if d.kind == "substitution" and d.species == "Si"])
    return {}, {"positions": points.tolist()}


@pytest.mark.parametrize("name", ["tem-autofocus", "stem-atom-finding", "tem-dopant-census", "afm-tip-change",
                                  "afm-tip-reconstruction", "afm-sparse-scan", "afm-pid-tuning"])
def test_the_seed_route_fails_on_every_challenge(name: str) -> None:
    """A team that knows the public seed builds that episode locally (no key) and plays its truth: a
    perfect score there, next to nothing on a server with the organiser's key."""
    scenario, key = spec.load(name), OrganiserKey(hashlib.sha256(b"an organiser's key").digest())
    local_scores, served_scores = [], []
    for seed in (42, *range(100, 109)):  # the README's seeds
        local = Instance.playing("team", scenario, seed)
        served = Instance.playing("team", scenario, seed, key=key)
        settings, answer = _truth_of(name, local)
        for instance, scores in ((local, local_scores), (served, served_scores)):
            for setting, value in settings.items():
                instrument, _, setting_name = setting.partition(".")
                instance.invoke(f"{instrument}.set", [setting_name, value], {})
            scores.append(instance.episode.submit(answer)["score"])
    assert min(local_scores) > (0.75 if name == "afm-pid-tuning" else 0.9), local_scores  # pid: 0.8 or 1
    assert np.mean(served_scores) < BLIND_BOUNDS[name], served_scores  # no better than a blind answer


@pytest.mark.parametrize("name", sorted(BLIND_BOUNDS))
def test_neither_the_public_seed_nor_any_small_seed_draws_the_served_hidden_state(name: str) -> None:
    """Both routes on every challenge, against the hidden state itself: its draws and the twin (sample
    included) they are built with. A team can rebuild any seed's state with the installed package (as
    the keyless episode of the public seed shows), but the served episode's (public seed, organiser's
    key) is that of neither the public seed nor any of the 5000 smallest seeds."""
    scenario, key = spec.load(name), OrganiserKey(hashlib.sha256(b"an organiser's key").digest())

    def state(instance: Instance) -> tuple[str, int]:
        return repr(instance.episode.hidden), instance.twin.seed

    served = state(Instance.playing("team", scenario, SEED, key=key))
    keyless = state(Instance.playing("team", scenario, SEED))
    assert keyless == (repr(scenario.draw(SEED)), SEED) and keyless != served
    assert [seed for seed in range(5000) if (repr(scenario.draw(seed)), seed) == served] == []


def test_what_a_team_learns_before_the_data_does_not_depend_on_the_hidden_column() -> None:
    """Refusals, cost estimates (the progress a client reads, uncounted, while an acquisition runs) and a
    convergent-beam pattern's dose come from the column as the instrument knows it. Two episodes of one
    public seed under two keys, their hidden focus 200 nm apart, answer the same calls alike; before,
    a STEM scan's estimated memory told |focus - hidden focus| to a nanometre or two, so two scans
    found the focus without looking at an image."""
    scenario, seen = spec.load("tem-autofocus"), []
    for secret in (b"test_fairness column 1", b"test_fairness column 6"):
        instance = Instance.playing("team", scenario, SEED, key=OrganiserKey(hashlib.sha256(secret).digest()))
        instance.invoke("tem.set", ["optics.focus", 100e-9], {})
        instance.twin.tem.limits = Limits(max_call_seconds=1e-9)  # all refused, each naming its estimate
        refusals = []
        for optical_mode, call, args in (("Stem", "tem.acquire_stem_images", [["HAADF"], 64, 1e-6]),
                                         ("Stem", "tem.acquire_camera_image", ["BM-Ceta", 4096, 0.1]),
                                         ("Tem", "tem.acquire_camera_image", ["BM-Ceta", 4096, 0.1])):
            instance.invoke("tem.set", ["optics.optical_mode", optical_mode], {})
            with pytest.raises(ValueError, match="would take about") as refusal:
                instance.invoke(call, args, {})
            refusals.append(str(refusal.value))
        instance.invoke("tem.set", ["optics.optical_mode", "Stem"], {})
        instance.twin.tem.limits = Limits()
        pattern = instance.invoke("tem.acquire_camera_image", ["BM-Ceta", 128, 0.01], {})
        seen.append((instance.episode.hidden.settings["tem"]["twin.focus_offset"], refusals,
                     pattern["metadata"]["optics"]["dose_per_area"]))
    (one, *first), (other, *second) = seen
    assert abs(one - other) > 150e-9
    assert first == second


def test_a_private_server_needs_a_tokens_file_since_tokens_are_never_printed(tmp_path) -> None:
    from twin.cli import main

    with pytest.raises(SystemExit, match="--private needs --tokens FILE"):
        main(["serve", "--scenario", "tem-autofocus", "--private", "--journal-dir", str(tmp_path)])
