"""Hostile clients on loopback: raw-protocol abuse must not take the server down or fill its memory.

Each attack is bounded in count and time and only ever talks to the test's own server on 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from Pyro5 import errors, protocol
from Pyro5.api import Proxy

from clients._remote import open_proxy
from twin.server import wire
from twin.server.daemon import allow_open_files
from twin.server.doorkeeper import DENIAL_SECONDS, HANDSHAKE_SECONDS
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


def peak_memory(pid: int) -> int:
    """The peak resident memory (bytes) of process ``pid`` so far (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc")


def bomb(inflated: int) -> bytes:
    """zlib data that inflates to ``inflated`` zero bytes, a whole number of MiB (about a thousandth of
    that on the wire). Built, not compressed: one MiB of zeros compressed and fully flushed is a
    byte-aligned block standing alone, so every MiB after the first is the same bytes; then the end
    block and the Adler-32 checksum of ``inflated`` zeros, ``(inflated mod 65521) << 16 | 1``."""
    packer, chunk = zlib.compressobj(9), bytes(1 << 20)
    first = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)  # after the zlib header
    again = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()[:-4]  # the last (empty) block, its checksum left off
    checksum = ((inflated % 65521) << 16) | 1
    return first + again * (inflated // len(chunk) - 1) + end + checksum.to_bytes(4, "big")


def raw_message(msgtype: int, flags: int, payload: bytes) -> bytes:
    """A Pyro5 wire message built by hand (a client may set any header field it likes)."""
    header = struct.pack(protocol._header_format, b"PYRO", protocol.PROTOCOL_VERSION, msgtype, 1, flags, 1,
                         len(payload), 0, bytes(16), 0, protocol._magic_number)
    return header + payload


def test_a_compressed_message_is_refused_before_it_is_inflated(server: ServerProcess) -> None:
    """Three 1 GiB decompression bombs (about 1 MiB each on the wire) leave the server as it was."""
    assert zlib.decompress(bomb(3 << 20)) == bytes(3 << 20)  # (a small one inflates, checksum and all)
    payload = bomb(1 << 30)
    assert len(payload) < 2 << 20
    before = peak_memory(server.process.pid)
    for _ in range(3):
        with socket.create_connection((HOST, server.port), timeout=30) as attack:
            attack.sendall(raw_message(protocol.MSG_CONNECT, protocol.FLAGS_COMPRESSED, payload))
            attack.settimeout(30)
            try:
                while attack.recv(65536):  # whatever it answers, it then hangs up
                    pass
            except ConnectionError:
                pass
    assert peak_memory(server.process.pid) - before < 200 << 20  # bytes; unbounded, each took 1 GiB
    sample = open_proxy(wire.SAMPLE_OBJECT, HOST, server.port)
    assert sample.ping()  # and it still serves everyone else
    sample._pyroRelease()


def test_only_msgpack_is_read_and_a_refusal_carries_no_server_traceback(server: ServerProcess) -> None:
    for serializer in ("marshal", "serpent", "json"):
        proxy = Proxy(f"PYRO:{wire.SAMPLE_OBJECT}@{HOST}:{server.port}")
        proxy._pyroSerializer = serializer
        with pytest.raises(errors.CommunicationError, match="the twin speaks msgpack only"):
            proxy.ping()
        proxy._pyroRelease()
    tem = open_proxy(wire.TEM_OBJECT, HOST, server.port)
    with pytest.raises(ValueError) as refused:
        tem.set("optics.focus", 7.0)
    assert "optics.focus" in str(refused.value)  # the reason reaches the caller ...
    assert not getattr(refused.value, "_pyroTraceback", None)  # ... but not where in the server it arose
    with pytest.raises(TypeError) as wrong:
        tem.set("optics.focus")  # a missing argument
    assert "site-packages" not in "".join(getattr(wrong.value, "_pyroTraceback", None) or [])
    tem._pyroRelease()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server hangs up on ``sock`` within ``within`` s (whatever it says before that)."""
    deadline = time.monotonic() + within
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionError:  # reset
        return True
    return False


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerProcess]:
    """A server that closes connections idle for 3 s and lets one address hold 40."""
    allow_open_files(2048)
    server = ServerProcess.start("--idle-timeout", "3", "--connections-per-address", "40")
    yield server
    assert server.stop() == 0


def drip(sockets: list[socket.socket], message: bytes, within: float) -> None:
    """Send ``message`` to each of ``sockets`` a byte every half second after its first (never all of
    it: its length in half seconds is past ``within``), until the server has hung up on every socket
    (a send fails) or ``within`` s have passed."""
    deadline = time.monotonic() + within
    dripping = list(sockets)
    for position in range(1, len(message)):
        time.sleep(0.5)
        if not dripping or time.monotonic() > deadline:
            break
        for sock in list(dripping):
            try:
                sock.sendall(message[position:position + 1])
            except OSError:  # hung up on (reset, or a broken pipe)
                dripping.remove(sock)


def test_idle_and_dripping_connections_are_capped_per_address_and_closed(guarded: ServerProcess) -> None:
    """600 silent sockets and 10 that drip a handshake byte by byte, all from 127.0.0.2: the server
    keeps 40 (the cap), turns the rest away at once, closes the held ones at the handshake deadline,
    and a client on 127.0.0.1 is served promptly throughout. Before: 512 silent sockets took every
    worker and the accept loop then waited on the 513th, so a normal client timed out. (The drips, from
    127.0.0.3, start with the silent sockets: both wait out the same handshake deadline.)"""
    silent = [socket.create_connection((HOST, guarded.port), source_address=("127.0.0.2", 0))
              for _ in range(600)]
    handshake = raw_message(protocol.MSG_CONNECT, 0, b"\x80")
    assert len(handshake) * 0.5 > HANDSHAKE_SECONDS + 3.0  # dripped, it never arrives whole in time
    drips = []
    for _ in range(10):
        one = socket.create_connection((HOST, guarded.port), source_address=("127.0.0.3", 0))
        one.sendall(handshake[:1])
        drips.append(one)
    dripping = threading.Thread(target=drip, args=(drips, handshake, HANDSHAKE_SECONDS + 3.0))
    dripping.start()
    try:
        sample = open_proxy(wire.SAMPLE_OBJECT, HOST, guarded.port)
        sample.ping()
        still_held = [k for k, s in enumerate(silent) if not closed_by_server(s, 0.001)]
        assert len(still_held) >= 40  # served while the attack holds its 40 workers, not after it ends
        sample._pyroRelease()
        deadline = time.monotonic() + 3 * DENIAL_SECONDS + 2.0  # the turned-away wait for a word, then go
        turned_away: set[int] = set(range(len(silent))) - set(still_held)
        while len(turned_away) < 600 - 40 and time.monotonic() < deadline:
            turned_away |= {k for k, s in enumerate(silent)
                            if k not in turned_away and closed_by_server(s, 0.001)}
        assert len(turned_away) >= 600 - 40  # the cap: one address holds at most 40 at any moment
    finally:
        dripping.join()
    assert all(closed_by_server(s, 3.0) for s in silent + drips)  # all gone by the handshake deadline
    for s in silent + drips:
        s.close()


def test_one_address_is_told_when_it_holds_too_many(guarded: ServerProcess) -> None:
    held = [open_proxy(wire.SAMPLE_OBJECT, HOST, guarded.port) for _ in range(40)]
    try:
        with pytest.raises(ConnectionError, match=r"refused the connection: too many connections from "
                                                  r"127\.0\.0\.1 \(40 at most per address\)"):
            open_proxy(wire.SAMPLE_OBJECT, HOST, guarded.port)
    finally:
        for proxy in held:
            proxy._pyroRelease()


def test_an_idle_connection_is_closed_and_the_clients_reconnect_by_themselves(guarded: ServerProcess) -> None:
    from clients.tem import TemMicroscopeClient

    microscope = TemMicroscopeClient()
    microscope.connect(HOST, guarded.port)
    microscope.optics.defocus = 30e-9
    bare = open_proxy(wire.SAMPLE_OBJECT, HOST, guarded.port)
    bare.ping()
    connection = bare._pyroConnection.sock  # the server hangs up on it once idle for 3 s
    assert select.select([connection], [], [], 60.0)[0] and connection.recv(1, socket.MSG_PEEK) == b""
    with pytest.raises(errors.ConnectionClosedError):
        bare.ping()  # a bare Pyro5 proxy finds its connection closed ...
    assert microscope.optics.defocus == pytest.approx(30e-9)  # ... the twin's clients just carry on
    microscope.disconnect()


def test_folders_a_client_names_stay_inside_the_servers_data_folder(server: ServerProcess, server_files: Path,
                                                                    tmp_path: Path) -> None:
    """Before: ``../``, absolute paths and ``~`` were created and written wherever they pointed, and a
    NUL or 100,000-character file mask made every later capture fail."""
    from clients.afm import SPM

    spm = SPM(HOST, server.port)
    app = spm.application
    app.SetGalleryHistoryDirectoryPath("gallery")
    for path in ("../../escape", "..\\..\\escape", "C:\\data\\..\\..\\escape", "~/escape", "~root",
                 "run\0.gwy", "D:\\data\\x:stream", "p" * 5000, "", 7, None):
        with pytest.raises((ValueError, TypeError), match=r"^path = "):
            app.SetGalleryHistoryDirectoryPath(path)
    for mask in ("afm\0", "m" * 100_000, "../afm", "C:afm", "", 3):
        with pytest.raises((ValueError, TypeError), match=r"^mask = "):
            app.SetGalleryHistoryFilenameMask(mask)
    assert app.GetGalleryHistoryDirectoryPath() == "gallery"  # refusals changed nothing
    outside = tmp_path / "outside"
    app.SetGalleryHistoryDirectoryPath(str(outside))  # an absolute path is a folder under the server's
    app.Approach.StartApproach()
    scan = app.Scan
    scan.ImageSize(4e-9, 4e-9)
    scan.Points, scan.Lines = 16, 8
    scan.StartFrameUp()
    written = [Path(p) for p in scan.StartCapture()]
    assert not outside.exists()
    assert all(p.is_file() and p.resolve().is_relative_to(server_files.resolve()) for p in written)
    assert written[0].parent == server_files.joinpath(*outside.parts[1:])
    spm.close()


def test_an_image_reports_the_stage_reading_it_was_taken_at_while_another_client_moves_it(
        guarded: ServerProcess) -> None:
    """Before: with another client moving the stage, 8 of 99 camera images recorded a specimen offset
    read after the view was planned, up to 117 nm from the window they were simulated at."""
    tem = open_proxy(wire.TEM_OBJECT, HOST, guarded.port)
    smallest = min(next(c for c in tem.describe()["cameras"] if c["name"] == "BM-Ceta")["sizes"])
    tem.set("optics.magnification", 2.05e6)
    stop = threading.Event()

    def wander() -> None:
        mover = open_proxy(wire.TEM_OBJECT, HOST, guarded.port)
        step = 0
        while not stop.is_set():
            step += 1
            mover.move_stage({"x": 80e-9 * (-1) ** step, "y": 30e-9 * (-1) ** (step // 2)}, True, False)
        mover._pyroRelease()

    thread = threading.Thread(target=wander, daemon=True)
    thread.start()
    try:
        mismatches = []
        for _ in range(300):  # before, about 3% were torn
            image = tem.acquire_camera_image("BM-Ceta", smallest, 0.01)
            metadata = image["metadata"]
            position = metadata["stage_settings"]["stage_position"]
            offset = metadata["twin"]["specimen_offset"]
            shift = metadata["optics"]["image_shift"]
            window = metadata["twin"]["window"]
            simulated = ((window["x_min"] + window["x_max"]) / 2, (window["y_min"] + window["y_max"]) / 2)
            reported = (position["x"] + offset[0] + shift["x"], position["y"] + offset[1] + shift["y"])
            mismatches.append(max(abs(a - b) for a, b in zip(simulated, reported, strict=True)))
    finally:
        stop.set()
        thread.join()
    assert max(mismatches) < 1e-12  # m: one reading, whatever the other client did meanwhile
    tem._pyroRelease()


def test_bad_input_is_refused_in_the_instruments_terms(server: ServerProcess) -> None:
    """Before: a 1e-30 s exposure and dwell were taken, ``absolute_move({})`` and ``([])`` moved
    nothing without a word, integer map keys failed with msgpack's internals, a wrong argument count
    named the server's classes, and ``afm.describe()`` could not be decoded by the client."""
    from clients.tem import TemMicroscopeClient

    microscope = TemMicroscopeClient()
    microscope.connect(HOST, server.port)
    with pytest.raises(ValueError, match=r"^exposure_time = 1e-30 is out of range; allowed 0\.001 to 100 s$"):
        microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 1e-30)
    assert microscope.detectors.get_camera_detector("BM-Ceta").exposure_time_limits.min == 1e-3
    with pytest.raises(ValueError, match=r"^dwell_time = 1e-30 is out of range; allowed 1e-08 to 1 s$"):
        microscope.acquisition.acquire_stem_image("HAADF", 64, 1e-30)
    for nothing in ({}, [], {"x": None}):
        with pytest.raises(ValueError, match="names no axis to move; give a value for at least one of x, y"):
            microscope.specimen.stage.absolute_move(nothing)
    microscope.disconnect()
    tem = open_proxy(wire.TEM_OBJECT, HOST, server.port)
    with pytest.raises(TypeError, match=r"^a mapping sent to the twin has a key of type int; keys must be "):
        tem.move_stage({0: 1e-6})
    with pytest.raises(TypeError, match=r"^tem\.set\(name, value\): missing a required argument: 'value'$"):
        tem.set("optics.focus")
    with pytest.raises(TypeError, match=r"^tem\.stage_position\(\): too many positional arguments$"):
        tem.stage_position(1)
    with pytest.raises(ValueError) as junk:
        tem.set("x" * 1_000_000, 1)
    assert len(str(junk.value)) < 2000  # quotes a line of the junk, not all of it
    tem._pyroRelease()
    afm = open_proxy(wire.AFM_OBJECT, HOST, server.port)
    channels = afm.describe()["channels"]
    assert {c["name"] for c in channels} >= {"Topography", "Phase"}
    afm._pyroRelease()


def test_what_one_team_may_write_is_bounded(tmp_path: Path) -> None:
    """Before: eight calls with 32 MiB of junk arguments each wrote 619 MiB of journal; a call with large
    arguments is now refused before it runs, and a journal full to its limit refuses every call."""
    from twin.scenarios import spec
    from twin.scenarios.episode import CALL_ARGUMENTS_BYTES, JOURNAL_BYTES
    from twin.server.instances import Instance

    instance = Instance.playing("a", spec.load("tem-autofocus"), 1, journal_dir=tmp_path)
    junk = "x" * (4 << 20)
    for _ in range(8):
        refusal = rf"^sample.echo: arguments of about {4 << 20} bytes; a call in a challenge takes at most "
        with pytest.raises(ValueError, match=refusal + rf"{CALL_ARGUMENTS_BYTES} bytes"):
            instance.invoke("sample.echo", [junk], {})
    journal = next(tmp_path.glob("*.jsonl"))
    assert journal.stat().st_size < 8 * 1024  # bytes: sizes, not the junk
    assert instance.episode.status()["budgets"]["calls"]["spent"] == 0  # refused before counting
    instance.episode.journal.bytes = JOURNAL_BYTES + 1  # as if it had been filled
    with pytest.raises(RuntimeError, match="budget exhausted: this episode's journal holds 64 MiB"):
        instance.invoke("tem.get", ["optics.focus"], {})
    assert journal.stat().st_size < 8 * 1024  # a full journal is not written to


TWO_CALLS = """\
title: two calls
goal: look twice, then answer
sample: graphene
budgets: {calls: 2, wall_time: 1 s}
score: {function: tem_focus, focus_tolerance: 5 nm, astigmatism_tolerance: 2 nm}
"""


def test_an_answer_is_taken_once_after_the_budgets_are_spent(tmp_path: Path) -> None:
    """Decided: budgets bound what a team measures, not when it hands in what it measured; an answer is
    taken once, whenever it comes (the organiser ends the event by reading the board)."""
    from twin.scenarios import spec
    from twin.server.instances import Instance

    path = tmp_path / "two.scenario.yaml"
    path.write_text(TWO_CALLS)
    instance = Instance.playing("a", spec.load(str(path)), 1, journal_dir=tmp_path)
    for _ in range(2):
        instance.invoke("tem.get", ["optics.focus"], {})
    time.sleep(1.1)
    with pytest.raises(RuntimeError, match="budget exhausted"):
        instance.invoke("tem.get", ["optics.focus"], {})
    at_once = Instance.playing("b", spec.load(str(path)), 1).invoke("episode.submit", [{}], {})["score"]
    late = instance.invoke("episode.submit", [{}], {})["score"]
    assert late == pytest.approx(at_once)  # scored as an answer given at once: the reads changed nothing
    with pytest.raises(RuntimeError, match="already"):
        instance.invoke("episode.submit", [{}], {})


def test_a_server_killed_mid_episode_comes_back_with_every_team_where_it_was(tmp_path: Path) -> None:
    import signal

    from clients.tem import TemMicroscopeClient

    options = ("--instance", "a=tem-autofocus:3", "--instance", "b=stem-atom-finding:2", "--journal-dir",
               str(tmp_path / "journals"), "--data-dir", str(tmp_path / "files"))
    server = ServerProcess.start(*options)
    try:
        for team, defocus in (("a", 31e-9), ("b", -12e-9)):
            microscope = TemMicroscopeClient()
            microscope.connect(HOST, server.port, team)
            microscope.optics.defocus = defocus
            microscope.acquisition.acquire_stem_image("HAADF", 64, 1e-6)
            microscope.disconnect()
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to tidy up
    server = ServerProcess.start(*options, "--resume")
    try:
        printed = "\n".join(server.lines)
        for team, scenario, seed in (("a", "tem-autofocus", 3), ("b", "stem-atom-finding", 2)):
            journal = f"{scenario}-seed{seed}-{team}.jsonl"
            assert f"{team}: carried on {journal} (2 calls made again; playing)" in printed
        for team, defocus in (("a", 31e-9), ("b", -12e-9)):
            microscope = TemMicroscopeClient()
            microscope.connect(HOST, server.port, team)
            assert microscope.optics.defocus == pytest.approx(defocus)
            microscope.disconnect()
    finally:
        assert server.stop() == 0
