"""Long work: estimated before it starts, refused past the server's limits, reported while it runs,
stopped when its client leaves or presses Ctrl-C, and never holding up reads of state."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from clients._remote import open_proxy
from twin.instruments.work import Cost, Limits
from twin.server import wire
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"
LONG_SCAN = ("HAADF", 16, 1e-6)  # exact mode over 8 nm: ~2 min of abTEM multislice (--tem-engine abtem)

CLIENT = textwrap.dedent('''
    import sys
    from clients.tem import TemMicroscopeClient
    microscope = TemMicroscopeClient()
    microscope.connect("127.0.0.1", int(sys.argv[1]))
    microscope.optics.optical_mode = "Stem"
    microscope.optics.scan_field_of_view = 8e-9
    print("scanning", flush=True)
    microscope.acquisition.acquire_stem_image("HAADF", 16, 1e-6, mode="exact")
    print("finished", flush=True)
''')


BUSY_WAIT = 2.0  # s a call waits for the busy microscope on the module's server (10 s by default)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A twin whose calls may compute for 15 min at most, and wait 2 s for a busy microscope; exact STEM by
    abTEM's own scan (the slow one: its scans run long enough to watch)."""
    server = ServerProcess.start("--tem-engine", "abtem", "--max-call-seconds", "900", "--busy-wait",
                                 str(BUSY_WAIT), "--data-dir", str(tmp_path_factory.mktemp("files")), seed=5)
    yield server
    assert server.stop() == 0


def stem_ready(port: int) -> object:
    tem = open_proxy(wire.TEM_OBJECT, HOST, port)
    tem.set("optics.optical_mode", "Stem")
    tem.set("optics.scan_field_of_view", 8e-9)
    return tem


def wait_for(condition, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def test_work_past_the_limit_is_refused_at_once_with_its_estimate(limited: ServerProcess) -> None:
    """Before: an exact 32² scan over 8 nm (the README's example) ran ~30 minutes with no word; 96²
    (within the probe-count limit) would have run for hours."""
    tem = stem_ready(limited.port)
    with pytest.raises(ValueError, match=r"^an exact STEM scan of 96 x 96 pixels with HAADF would take about "
                                         r".* one call may take 15 min and .* GiB on this server"):
        tem.acquire_stem_images(["HAADF"], 96, 1e-6, None, "exact")  # run, it would take hours
    assert tem.progress() is None  # nothing runs
    tem._pyroRelease()


def test_a_long_scan_reports_progress_others_hear_it_is_busy_and_a_hang_up_stops_it(
        limited: ServerProcess) -> None:
    """Before: the scan ran on after its client was killed, and blocked every other acquisition of
    that microscope without a word for as long as it ran. Stopped, its frame is never counted (the
    waits are for states; their timeouts only end a failing run)."""
    other = stem_ready(limited.port)
    before = next_frame_index(other)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(limited.port)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout.readline().strip() == "scanning"
        watcher = open_proxy(wire.TEM_OBJECT, HOST, limited.port)
        assert wait_for(lambda: (watcher.progress() or {}).get("fraction", 0) > 0, 60.0)
        report = watcher.progress()
        assert report["task"] == "an exact STEM scan of 16 x 16 pixels with HAADF"
        assert 0 < report["fraction"] < 1 and report["seconds_left"] > 0 and report["estimated_bytes"] > 0
        asked = time.monotonic()
        busy = r"the microscope is busy with an exact STEM scan of 16 x 16 pixels with HAADF, about .* left; "
        with pytest.raises(RuntimeError, match=busy + "try again when it is done"):
            other.acquire_stem_images(["HAADF"], 64, 1e-6, None, "interactive")
        assert time.monotonic() - asked >= 0.95 * BUSY_WAIT  # it waited its --busy-wait, then said why
        state = other.get("optics.scan_field_of_view")  # reads of state never wait
        assert state == pytest.approx(8e-9)
        client.kill()  # kill -9: the connection drops without a word
        client.wait()
        assert wait_for(lambda: watcher.progress() is None, 300.0)  # stopped (or, were it ignored, done)
        image = other.acquire_stem_images(["HAADF"], 64, 1e-6, None, "interactive")
        assert image[0]["data"].shape == (64, 64)
        assert image[0]["metadata"]["acquisition"]["frame_index"] == before + 1  # the killed scan: none
        watcher._pyroRelease()
        other._pyroRelease()
    finally:
        client.kill()
        client.wait()


def next_frame_index(tem: object) -> int:
    """The frame index the microscope gives a quick scan taken now: the frames it has counted so far."""
    image = tem.acquire_stem_images(["HAADF"], 16, 1e-6, None, "interactive")[0]
    return image["metadata"]["acquisition"]["frame_index"]


def test_ctrl_c_in_a_script_stops_its_scan_on_the_server(limited: ServerProcess) -> None:
    """Ctrl-C while the scan computes: the script ends with KeyboardInterrupt, its connection drops, and
    the server stops the scan between two batches of probes, so its frame is never counted (a scan run
    to its end would have taken a frame index). The waits are for states, their timeouts only end a
    failing run: a loaded machine takes longer, not a different path."""
    watcher = stem_ready(limited.port)
    before = next_frame_index(watcher)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(limited.port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "scanning"
        assert wait_for(lambda: (watcher.progress() or {}).get("fraction", 0) > 0, 300.0)  # past a batch
        client.send_signal(signal.SIGINT)
        output, errors = client.communicate(timeout=300)  # reads as it comes: a full pipe never blocks
        assert client.returncode != 0
        assert "KeyboardInterrupt" in errors and "finished" not in output
        assert wait_for(lambda: watcher.progress() is None, 300.0)  # stopped (or, were it ignored, done)
        assert next_frame_index(watcher) == before + 1  # stopped: only the quick scan above counted
        watcher._pyroRelease()
    finally:
        client.kill()
        client.wait()


def test_the_servers_memory_budget_is_shared_and_a_call_past_it_hears_why() -> None:
    limits = Limits(max_call_seconds=60.0, memory_bytes=1 << 30, wait_seconds=0.5)
    first, second = Cost(1.0, 600 << 20), Cost(1.0, 600 << 20)
    with pytest.raises(ValueError, match=r"would take about 1 s and 0\.59 GiB; one call may take 60 s and "
                                         r"0\.5 GiB"):
        limits.check("a scan", Cost(1.0, 600 << 20), "use less")
    busy = r"^server busy: work in progress holds 0\.49 GiB of the 1 GiB"
    with limits.held(Cost(1.0, 500 << 20)), pytest.raises(RuntimeError, match=busy), limits.held(second):
        pass
    released = threading.Event()

    def hold() -> None:
        with limits.held(first):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    threading.Timer(0.2, released.set).start()
    with limits.held(second):  # waits for the first to give its bytes back, then runs
        assert limits.held_bytes == 600 << 20
    holder.join()
    assert limits.held_bytes == 0


def test_reads_of_a_scanning_afm_do_not_wait_for_the_next_frame(limited: ServerProcess) -> None:
    """Before: in continuous scanning, a status read while another read was simulating the next frame
    (a second or more at 1024²) waited for it."""
    afm = open_proxy(wire.AFM_OBJECT, HOST, limited.port)
    afm.start_approach()
    for name, value in (("Scan.Points", 2048), ("Scan.Lines", 1024), ("Scan.ImageWidth", 100e-9),
                        ("Scan.ImageHeight", 100e-9)):
        afm.set(name, value)
    afm.start()  # continuous: with time off, the look after a complete frame starts the next one
    assert afm.is_scanning()  # the frame is seen complete

    def look() -> None:
        reader = open_proxy(wire.AFM_OBJECT, HOST, limited.port)
        reader.is_scanning()  # simulates the next frame
        reader._pyroRelease()

    simulating = threading.Thread(target=look)
    simulating.start()
    time.sleep(0.3)
    afm.current_line()
    answered_during_the_simulation = simulating.is_alive()  # the next frame takes a second or more
    simulating.join()
    afm.stop()
    afm._pyroRelease()
    assert answered_during_the_simulation


def test_a_4096_scan_with_four_detectors_is_refused_by_its_memory_estimate() -> None:
    """Before: it passed every limit and took ~9 GiB and over 10 minutes; three teams doing it at once
    filled the machine."""
    from twin.digital_twin import DigitalTwin

    tem = DigitalTwin.build("graphene", 1).tem
    tem.limits = Limits(memory_bytes=8 << 30)  # a call may hold 4 GiB
    tem.set("optics.optical_mode", "Stem")
    for detector in ("ADF", "BF", "ABF"):
        tem.set(f"detectors.{detector}.inserted", True)
    refusal = (r"^an interactive STEM scan of 4096 x 4096 pixels with HAADF, ADF, BF, ABF would take about "
               r".* and [5-9]\.\d GiB; one call may take 10 min and 4 GiB")
    with pytest.raises(ValueError, match=refusal):
        tem.acquire_stem_images(["HAADF", "ADF", "BF", "ABF"], 4096, 25e-9)
    assert tem.frames_taken == 0


def test_a_teams_captures_stop_at_its_disk_quota(tmp_path) -> None:
    from twin.digital_twin import DigitalTwin

    afm = DigitalTwin.build("graphene", 1).afm
    afm.files_root, afm.files_quota = tmp_path, 800_000  # bytes
    afm.start_approach()
    afm.set("Scan.Points", 64)
    afm.set("Scan.Lines", 64)
    afm.start_frame_up()
    written = afm.capture()  # ~2 x 8 images x 64² x 8 bytes: fits once
    assert all(__import__("pathlib").Path(p).is_file() for p in written)
    full = r"^this twin's files take 0\.\d+ MiB of the 0\.76 MiB it may use on the server; a capture needs "
    with pytest.raises(RuntimeError, match=full + r"0\.5 MiB more"):
        afm.capture()
