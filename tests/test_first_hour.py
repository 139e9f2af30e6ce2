"""A new user's first hour (issue 20): commands that do not simulate answer without the simulation stack,
a YAML typo names its file and line, journals go to the user's data folder, the help texts say what a
new user asks, and no test can reach beyond this machine."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from twin.cli import main, parser

from .conftest import OffMachineConnection, on_this_machine

ROOT = Path(__file__).resolve().parent.parent
SIMULATION = ("abtem", "ase", "scipy", "xarray", "dask", "matplotlib", "zarr", "h5py")
BAD_YAML = "name: typo\nlayers: [\n  - material: graphene\n"  # a flow sequence never closed

# every command that only lists, explains or refuses: each must leave the simulation stack unimported
QUICK = [["--help"], ["scenario", "list"], ["serve", "--help"], ["run", "--help"], ["generate", "--help"],
         ["scenario", "--help"], ["scenario", "list", "--help"], ["scenario", "replay", "--help"],
         ["scenario", "score", "--help"], ["scenario", "leaderboard", "--help"], ["mcp", "--help"],
         ["bench", "--help"], ["serve", "--sample", "nosuchfile.yaml"], ["serve", "--sample", "{bad}"],
         ["serve", "--sample", "{typo}"], ["serve", "--sample", "graphite"], ["serve", "--port", "70000"]]


def test_commands_that_do_not_simulate_import_no_simulation_stack(tmp_path: Path) -> None:
    """Each command in a fresh interpreter, as ``twin`` runs it; what it imported is listed (no clock)."""
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    (tmp_path / "typo.yaml").write_text("name: typo\nlayers: [{material: unobtainium}]\n")
    commands = [[part.format(bad=tmp_path / "bad.yaml", typo=tmp_path / "typo.yaml") for part in argv]
                for argv in QUICK]
    check = (
        "import contextlib, io, json, sys\n"
        "from twin.cli import main\n"
        f"stack = {SIMULATION!r}\n"
        "found = {}\n"
        f"for argv in {commands!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    found[' '.join(argv)] = sorted(m for m in sys.modules if m.split('.')[0] in stack)\n"
        "print(json.dumps(found))\n"
    )
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))  # this checkout's code
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert len(found) == len(QUICK)
    assert {command: modules for command, modules in found.items() if modules} == {}


def test_scenario_list_reads_the_titles_without_building_a_twin(capsys) -> None:
    from twin.scenarios import catalog

    assert main(["scenario", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(catalog.available())
    assert all("unreadable" not in line for line in lines)


def test_a_yaml_syntax_error_in_a_sample_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(BAD_YAML)
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--sample", str(path)])
    message = str(refused.value.code)
    assert message.startswith(f"twin serve: sample file {str(path)!r}, line 3, column 3: not valid YAML")
    assert "<unicode string>" not in message


def test_a_yaml_syntax_error_in_a_scenario_or_dataset_file_names_the_file_and_the_line(tmp_path) -> None:
    from twin.datasets import load_config
    from twin.scenarios import spec

    path = tmp_path / "broken.scenario.yaml"
    path.write_text("title: a probe\ngoal: look\nscore: {function: tem_focus\n")
    with pytest.raises(ValueError, match=rf"^scenario file '{path}', line 4, column 1: not valid YAML: "):
        spec.load(path)
    with pytest.raises(SystemExit, match=rf"scenario file '{path}', line 4"):
        main(["serve", "--scenario", str(path), "--journal-dir", str(tmp_path / "journals")])
    config = tmp_path / "dataset.yaml"
    config.write_text("items: 4\nsample: [graphene\n")
    with pytest.raises(ValueError, match=rf"^dataset config '{config}', line 3, column 1: not valid YAML"):
        load_config(config)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder, here a temporary one."""
    from twin.instruments import files

    folder = tmp_path / "user-data"
    monkeypatch.setattr(files, "default_data_dir", lambda: folder)
    return folder


def test_journals_and_the_organiser_key_default_to_the_user_data_folder(data_dir: Path, tmp_path: Path,
                                                                         monkeypatch, caplog, capsys) -> None:
    from clients import challenge
    from twin.scenario_commands import instances_from, key_path
    from twin.scenarios.secret import OrganiserKey

    elsewhere = tmp_path / "clone"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where a user runs the commands: nothing may land here
    args = parser().parse_args(["serve", "--instance", "a=tem-autofocus:1"])
    journals = data_dir / "journals"
    assert key_path(args) == journals / "organiser.key"
    with caplog.at_level("INFO", logger="twin"):
        (instance,), key = instances_from(args)
    assert f"journals written to {journals.resolve()}" in caplog.text
    instance.invoke("tem.set", ["optics.defocus", 10e-9], {})
    instance.episode.journal.close()
    assert sorted(p.name for p in journals.iterdir()) == ["organiser.key", "tem-autofocus-seed1-a.jsonl"]
    assert list(elsewhere.iterdir()) == []

    assert main(["scenario", "replay", "tem-autofocus-seed1-a.jsonl"]) == 0  # found there, key beside it
    assert "0 different" in capsys.readouterr().out

    asked = []
    monkeypatch.setattr(challenge, "leaderboard", lambda host, port, organiser: asked.append(organiser) or [])
    assert main(["scenario", "leaderboard"]) == 0  # the organiser's view: the key from the same folder
    assert asked == [key.organiser_token()]
    assert key.id == OrganiserKey.load(journals / "organiser.key").id


def test_help_texts_a_new_user_reads(capsys, monkeypatch) -> None:
    from scenarios.baselines._common import main as baseline

    texts = {}
    for argv in (["serve", "--help"], ["run", "--help"], ["scenario", "leaderboard", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        texts[argv[-2]] = " ".join(capsys.readouterr().out.split())
    monkeypatch.setattr(sys, "argv", ["tem_autofocus.py", "--help"])
    with pytest.raises(SystemExit):
        baseline(lambda host, port, instance: {}, "a baseline")
    texts["baseline"] = " ".join(capsys.readouterr().out.split())
    assert "Serves a simulated TEM/STEM and AFM" in texts["serve"]
    assert "Nanosurf" in texts["run"] and "AutoScript" in texts["run"]
    assert "the server's address (default 127.0.0.1)" in texts["leaderboard"]
    assert "the server's port (default 9095)" in texts["leaderboard"]
    assert "the challenge server's address (default 127.0.0.1)" in texts["baseline"]
    assert "the challenge server's port (default 9095)" in texts["baseline"]


def test_a_test_cannot_connect_beyond_this_machine() -> None:
    for address in (("10.46.217.241", 9095), ("192.168.1.20", 80), ("172.16.0.1", 22), ("fd00::1", 1),
                    ("example.org", 80), ("0.0.0.0", 80)):
        assert not on_this_machine(address), address
    for address in (("127.0.0.1", 9095), ("127.8.9.10", 1), ("::1", 1, 0, 0), ("localhost", 1),
                    ("::ffff:127.0.0.1", 1), "/tmp/twin.sock", b"\0abstract"):
        assert on_this_machine(address), address
    family = {4: socket.AF_INET, 6: socket.AF_INET6}
    with socket.socket() as sock, pytest.raises(OffMachineConnection, match="10.46.217.241"):
        sock.connect(("10.46.217.241", 9095))
    with socket.socket(family[6], socket.SOCK_STREAM) as sock, pytest.raises(OffMachineConnection):
        sock.connect_ex(("fd00::1", 9095, 0, 0))
    with pytest.raises(OffMachineConnection, match="192.168.1.20"):
        socket.create_connection(("192.168.1.20", 80), timeout=1)
    with pytest.raises(OffMachineConnection, match="example.org"):  # refused before any name lookup
        socket.create_connection(("example.org", 80), timeout=1)
    tls = ssl.create_default_context().wrap_socket(socket.socket(), server_hostname="instrument")
    with tls, pytest.raises(OffMachineConnection):
        tls.connect(("172.16.0.1", 443))


def test_the_guard_lets_loopback_connections_through() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) == 0


def readme_examples() -> list[tuple[str, str]]:
    """The README's Python examples of a newcomer's path: (section, code), in the README's order."""
    found, section = [], ""
    blocks = (ROOT / "README.md").read_text().split("```")
    for k in range(1, len(blocks), 2):
        heading = [line for line in blocks[k - 1].splitlines() if line.startswith("## ")]
        section = heading[-1][3:] if heading else section
        if blocks[k].startswith("python\n") and section.startswith(("TEM example", "AFM example")):
            found.append((section, blocks[k].removeprefix("python\n")))
    return found


def test_the_readme_examples_run_in_order_against_one_server(server, tmp_path: Path, monkeypatch) -> None:
    """The TEM and AFM examples as a newcomer pastes them, one after the other into one session, against
    one server (whatever earlier tests left on it: the examples start with a reset)."""
    from clients.connection import redirect_connections

    examples = readme_examples()
    assert [section for section, _ in examples].count("TEM example (AutoScript-like)") == 3
    monkeypatch.chdir(tmp_path)
    session: dict = {}
    with redirect_connections("127.0.0.1", server.port):
        for section, code in examples:
            exec(compile(code, f"README.md: {section}", "exec"), session)
    assert session["image"].data.shape == (1024, 1024)
    assert session["topography"].shape == (256, 256)
    assert (tmp_path / "map.emd").exists() and (tmp_path / "point.msa").exists()
    session["microscope"].disconnect()
    session["spm"].close()
