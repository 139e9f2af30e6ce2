"""The live view: ``twin serve``'s web page, loaded by a real headless Chromium (Debian's, driven by
Selenium through the packaged chromedriver) while real clients acquire; and its API over HTTP."""

from __future__ import annotations

import csv
import json
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from clients.tem.structures import StagePosition
from tests.conftest import HOST
from twin.server.launcher import ServerProcess
from twin.server.live.board import Board, Footprint
from twin.server.live.pictures import grey_levels
from twin.server.live.site import LiveOptions, accumulated_doses

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1700")


def live_url(server: ServerProcess) -> str:
    """The page's address, as ``twin serve`` printed it."""
    line = next(line for line in server.lines if "Live view:" in line)
    return re.search(r"http://\S+/", line).group(0)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(condition: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {condition.__doc__ or condition}")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess.start("--live-control", seed=3)
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile; its console log kept (SEVERE entries are JS errors)."""
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def shown(driver: Any) -> dict[str, str]:
    """What the page shows now: its state updates, the versions of the pictures it has loaded, the
    footprints on its map and the rows of its scoreboard."""
    return driver.execute_script(
        "const v = (id) => document.getElementById(id).dataset;"
        "return {updates: document.body.dataset.updates, image: v('tem-image').version,"
        " stem: v('tem-stem').version, afm: v('afm-frame').version, footprints: v('map').footprints,"
        " rows: v('scoreboard').rows,"
        " afm_caption: document.querySelector('#afm-frame .conditions').textContent,"
        " image_caption: document.querySelector('#tem-image .conditions').textContent,"
        " scalebar: document.querySelector('#tem-image .scalebar span').textContent};")


def errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_page_follows_acquisitions_in_a_real_browser(server, browser, tmp_path, capsys) -> None:
    from clients.afm import SPM
    from clients.tem import TemMicroscopeClient
    from clients.tem.enumerations import CameraType

    url = live_url(server)
    assert url.startswith(f"http://{HOST}:")
    browser.get(url)
    wait_until(lambda: browser.execute_script("return document.getElementById('connection').textContent")
               == "live")
    before = shown(browser)
    assert before["image"] == "0" and before["footprints"] == "0"

    microscope = TemMicroscopeClient()
    microscope.connect(HOST, server.port)
    microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 256, 0.1)
    first = wait_until(lambda: (s := shown(browser))["image"] != "0" and s["footprints"] == "1" and s)
    assert "80 kV" in first["image_caption"] and "dose" in first["image_caption"]
    assert re.fullmatch(r"[\d.]+ (Å|nm)", first["scalebar"])  # 256 px of 59 pm: a bar of a few nm

    microscope.specimen.stage.relative_move(StagePosition(x=40e-9))  # a second place: a second footprint
    microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 256, 0.1)
    second = wait_until(lambda: (s := shown(browser))["image"] != first["image"] and s["footprints"] == "2"
                        and s)
    spm = SPM(HOST, server.port)
    spm.application.Approach.StartApproach()
    spm.application.Scan.StartFrameUp()
    afm = wait_until(lambda: (s := shown(browser))["afm"] != "0" and s["footprints"] == "3" and s)
    assert "line 256/256" in afm["afm_caption"]
    assert int(second["updates"]) > int(first["updates"]) > int(before["updates"])
    microscope.disconnect()
    spm.close()

    browser.find_element("id", "acquire").click()  # the server allows control (--live-control)
    wait_until(lambda: (s := shown(browser))["image"] != second["image"] and s["footprints"] == "4")
    result = browser.find_element("id", "control-result")
    assert result.text == "acquire: done"

    browser.execute_script("window.scrollTo(0, 0)")
    screenshot = tmp_path / "live-view.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    with capsys.disabled():  # in the test run's output, whatever the capture
        print(f"\nscreenshot of the live view: {screenshot}")
    assert errors(browser) == []


def test_the_afm_frame_is_shown_line_by_line() -> None:
    """With a running clock the frame grows on the page as the lines are scanned."""
    slow = ServerProcess.start("--time-scale", "0.3", seed=3)
    try:
        from clients.afm import SPM

        spm = SPM(HOST, slow.port)
        spm.application.Scan.Lines = 32
        spm.application.Scan.Points = 32
        spm.application.Scan.Scantime = 0.1  # 32 lines in 1 s of wall-clock time
        spm.application.Approach.StartApproach()
        wait_until(lambda: not spm.application.Approach.IsMoving)
        spm.application.Scan.StartFrameUp()
        base = live_url(slow)

        def lines() -> int:
            frame = json.loads(get(base + "api/state")[1])["afm"]["frame"]
            return frame["lines_done"]

        seen = {lines()}
        while max(seen) < 32:
            seen.add(lines())
            time.sleep(0.1)
        assert len(seen) >= 4 and min(seen) < 32  # partial frames were published along the way
        status, frame = get(base + "api/picture/afm.frame?trace=backward&signal=1")
        assert status == 200 and frame[:4] == struct.pack("<HH", 32, 32) and len(frame) == 4 + 32 * 32
        spm.close()
    finally:
        assert slow.stop() == 0


def test_the_api_refuses_what_it_does_not_have(server) -> None:
    base = live_url(server)
    status, body = get(base + "api/state?instance=nobody")
    assert status == 404 and "instance = 'nobody'" in json.loads(body)["error"]
    status, body = get(base + "api/picture/tem.nothing")
    assert status == 404 and "allowed: tem.image" in json.loads(body)["error"]
    status, body = get(base + "api/picture/afm.frame?signal=abc")
    assert status == 400 and json.loads(body)["error"] == "signal = 'abc': give a channel number (0 to 999)"
    status, body = get(base + "api/state?instance=" + "x" * 100_000)  # refused, quoting a line of it
    assert status == 404 and "(100002 chars)" in json.loads(body)["error"] and len(body) < 300


def test_control_from_the_page_moves_the_stage_and_reaches_the_client(server) -> None:
    from clients.tem import TemMicroscopeClient

    base = live_url(server)
    status, answer = post(base + "api/control", {"action": "move_stage", "value": {"x": 2e-6, "y": -1e-6}})
    assert status == 200, answer
    microscope = TemMicroscopeClient()
    microscope.connect(HOST, server.port)
    position = microscope.specimen.stage.position
    assert (position.x, position.y) == pytest.approx((2e-6, -1e-6))
    microscope.disconnect()
    status, answer = post(base + "api/control", {"action": "move_stage", "value": {"x": 5.0, "y": 0.0}})
    assert status == 400 and "stage x" in answer["error"] and "allowed" in answer["error"]
    status, answer = post(base + "api/control", {"action": "explode", "value": None})
    assert status == 400 and "allowed: move_stage" in answer["error"]
    status, answer = post(base + "api/control", {"action": "defocus", "value": "x" * 100_000})
    assert status == 400 and "more than 65536 bytes" in answer["error"]  # refused while reading it


def test_a_taken_live_port_is_refused_by_name(server) -> None:
    taken = live_url(server).rsplit(":", 1)[1].strip("/")
    result = subprocess.run([sys.executable, "-m", "twin", "serve", "--port", "0", "--no-warm-up",
                             "--live-port", taken], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"the live view cannot listen on {HOST}:{taken}" in result.stderr and "--no-live" in result.stderr


def test_control_from_the_page_stays_on_this_machine() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LiveOptions("0.0.0.0", None, control=True)


def test_a_private_hackathon_page_shows_the_scoreboard_and_no_token(browser, tmp_path, capsys) -> None:
    from clients.tem import TemMicroscopeClient

    tokens = tmp_path / "tokens.csv"
    hackathon = ServerProcess.start("--scenario", "tem-autofocus", "--teams", "3", "--private", "--tokens",
                                    str(tokens), seed=4)
    try:
        teams = list(csv.DictReader(tokens.open()))
        base = live_url(hackathon)
        browser.get(base)
        wait_until(lambda: shown(browser)["rows"] == "3")

        def calls() -> list[str]:
            return browser.execute_script(
                "return [...document.querySelectorAll('#scoreboard tbody tr')]"
                ".map(row => row.cells[4].textContent)")

        assert calls() == ["0", "0", "0"]
        microscope = TemMicroscopeClient()
        microscope.connect(HOST, hackathon.port, instance=teams[1]["token"])
        microscope.optics.defocus = 10e-9
        wait_until(lambda: sorted(calls()) == ["0", "0", "1"])  # the scoreboard follows live
        microscope.disconnect()
        page = browser.page_source + get(base + "api/state")[1].decode()
        status, _ = get(base + "api/map")
        assert status == 404  # a private server's page shows no instrument
        assert not any(team["token"] in page or team["instance"] in page for team in teams)
        assert errors(browser) == []
        screenshot = tmp_path / "live-scoreboard.png"
        assert browser.save_screenshot(str(screenshot))
        with capsys.disabled():
            print(f"\nscreenshot of the scoreboard: {screenshot}")
    finally:
        assert hackathon.stop() == 0


def test_a_challenge_page_shows_what_the_instruments_report_and_every_teams_budgets(tmp_path) -> None:
    """An open challenge server (ground truth off): a team's STEM field on the map where the stage
    believes it is (the commanded stage, 0, with the scenario's 4 nm field), no knocked-out atoms, no
    tip; the scoreboard names the teams with their budgets; no token anywhere."""
    from clients.tem import TemMicroscopeClient

    tokens = tmp_path / "tokens.csv"
    challenge = ServerProcess.start("--scenario", "tem-autofocus", "--teams", "2", "--tokens", str(tokens),
                                    "--live-port", "0", seed=4)
    try:
        base = live_url(challenge)
        microscope = TemMicroscopeClient()
        microscope.connect(HOST, challenge.port, instance="team-02")
        image = microscope.acquisition.acquire_stem_image("HAADF", 64, 2e-6)
        microscope.disconnect()
        state = json.loads(get(base + "api/state?instance=team-02")[1])
        assert state["ground_truth"] is False and state["control"] is False
        assert state["tem"]["images"]["tem.stem"]["shape"] == list(image.data.shape)
        assert "tip_radius" not in state["afm"]["panel"]
        sample_map = json.loads(get(base + "api/map?instance=team-02")[1])
        assert sample_map["knocked"] is None
        instrument, *field = sample_map["footprints"][0][:5]
        assert instrument == "tem" and field == pytest.approx([-2e-9, -2e-9, 2e-9, 2e-9], abs=1e-15)
        rows = {row["instance"]: row for row in state["scoreboard"]}
        assert rows["team-02"]["calls"] >= 1 and rows["team-01"]["calls"] == 0
        assert rows["team-02"]["budgets"]["calls"]["limit"] == 1000
        assert rows["team-02"]["budgets"]["electrons"]["spent"] > 0
        status, answer = post(base + "api/control", {"instance": "team-01", "action": "acquire"})
        assert status == 403 and "--live-control" in answer["error"]  # read-only by default
        status, answer = post(base + "api/control", {"action": "defocus", "value": "x" * 100_000})
        assert status == 403  # refused before its body is read (a body the socket's buffers hold)
        shown = get(base)[1].decode() + json.dumps(state) + json.dumps(sample_map)
        assert not any(team["token"] in shown for team in csv.DictReader(tokens.open()))
    finally:
        assert challenge.stop() == 0


def test_the_board_keeps_the_newest_snapshot_only() -> None:
    board = Board()
    first = board.publish("tem.image", "a")
    second = board.publish("tem.image", "b")
    assert second > first and board.latest("tem.image").payload == "b" and board.latest("afm.frame") is None
    board.note_footprint("tem", {"x_min": 0.0, "y_min": 0.0, "x_max": 1.0, "y_max": 1.0}, 5.0)
    assert board.versions() == {"tem.image": second, "map": second + 1}


def test_doses_add_up_where_fields_overlap() -> None:
    square = {"x_min": 0.0, "y_min": 0.0, "x_max": 2.0, "y_max": 2.0}
    inner = {"x_min": 0.5, "y_min": 0.5, "x_max": 1.5, "y_max": 1.5}
    apart = {"x_min": 5.0, "y_min": 5.0, "x_max": 6.0, "y_max": 6.0}
    prints = [Footprint("tem", square, 10.0, 1), Footprint("tem", inner, 3.0, 2),
              Footprint("tem", apart, 1.0, 3)]
    assert accumulated_doses(prints) == [13.0, 13.0, 1.0]  # both centres lie in both squares


def test_grey_levels_stretch_the_finite_values_and_blank_the_rest() -> None:
    data = np.array([[0.0, 1.0], [2.0, np.nan]])
    levels = grey_levels(data)
    assert levels.dtype == np.uint8 and levels[1, 1] == 0 and levels[0, 0] == 0 and levels[1, 0] == 255
    assert 100 < levels[0, 1] < 155
