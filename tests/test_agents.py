"""Agent interfaces against a real server: the MCP tools over stdio, and the Gymnasium environment."""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
import pytest

from clients.challenge import Challenge
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    journals = tmp_path_factory.mktemp("journals")
    process = ServerProcess.start("--instance", "llm=tem-autofocus:5", "--instance", "rl=tem-autofocus:6",
                                  "--instance", "pid=afm-pid-tuning:7", "--journal-dir", str(journals))
    yield process
    assert process.stop() == 0


def test_an_mcp_client_lists_the_tools_and_drives_the_instruments(server, tmp_path) -> None:
    import jsonschema
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from twin.instruments.tem.hardware import TemHardware

    command = StdioServerParameters(command=sys.executable, args=[
        "-m", "twin", "mcp", "--port", str(server.port), "--instance", "llm", "--images", str(tmp_path)])
    calls = {"goal": ("challenge_goal", {}), "moved": ("tem_stage_move", {"x": 2e-6, "y": -1e-6}),
             "stepped": ("tem_stage_step", {"dx": 1e-6}), "focus": ("tem_set_defocus", {"defocus": -20e-9}),
             "image": ("stem_acquire_image", {"size": 64, "dwell_time": 1e-6}),
             "png": ("view_last_image", {}),
             "camera": ("tem_acquire_image", {"size": 64, "exposure_time": 0.01}),
             "approach": ("afm_approach", {}),
             "scan": ("afm_scan", {"width": 10e-9, "points": 32, "lines": 16}),
             "line": ("afm_read_line", {"line": 3}),
             "bad": ("afm_read_line", {"line": 3, "channel": "Smell"}),
             "small": ("tem_acquire_image", {"size": 32}), "far": ("tem_stage_move", {"x": 2e-3}),
             "status": ("challenge_status", {})}

    async def session() -> dict:
        async with Client(command, read_timeout_seconds=60) as client:
            out = {"tools": (await client.list_tools()).tools,
                   "resources": (await client.list_resources()).resources,
                   "sample": (await client.read_resource("twin://sample")).contents}
            for key, (name, arguments) in calls.items():
                out[key] = await client.call_tool(name, arguments)
            return out

    out = asyncio.run(session())
    tools = {tool.name: tool for tool in out["tools"]}
    expected = {"tem_stage_move", "tem_stage_step", "tem_stage_position", "tem_set_defocus",
                "tem_acquire_image", "stem_acquire_image", "afm_approach", "afm_scan", "afm_read_line",
                "view_last_image",
                "challenge_goal", "challenge_status", "challenge_submit"}
    assert expected <= set(tools)
    for tool in tools.values():  # what an LLM needs to call a tool well, on every tool and parameter
        hints = tool.annotations
        assert hints is not None and None not in (hints.read_only_hint, hints.destructive_hint,
                                                  hints.idempotent_hint, hints.open_world_hint), tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
        assert tool.output_schema is not None or tool.name == "view_last_image", tool.name
    # an exposure to the beam may knock atoms out; reading never changes anything
    assert {n for n, t in tools.items() if t.annotations.destructive_hint} == {
        "tem_acquire_image", "stem_acquire_image", "challenge_submit"}
    assert {"tem_stage_position", "afm_read_line", "view_last_image", "challenge_goal"} <= {
        n for n, t in tools.items() if t.annotations.read_only_hint}
    sizes = tools["tem_acquire_image"].input_schema["properties"]["size"]
    assert sizes["enum"] == sorted(TemHardware().camera("BM-Ceta").sizes)  # the camera's read-out sizes
    assert "m;" in tools["afm_scan"].input_schema["properties"]["width"]["description"].replace(")", ";")
    for key, (name, _) in calls.items():  # every structured answer is what the tool declares
        if key not in ("bad", "small", "far", "png"):
            assert not out[key].is_error, (key, out[key].content)
            jsonschema.validate(out[key].structured_content, tools[name].output_schema)

    assert [r.uri for r in out["resources"]] == ["twin://sample"]
    sample = json.loads(out["sample"][0].text)
    assert sample["material"] == "graphene" and "seed" not in sample and "defects" not in sample
    assert out["goal"].structured_content["name"] == "tem-autofocus"
    assert out["moved"].structured_content["x"] == pytest.approx(2e-6, abs=1e-7)
    assert out["stepped"].structured_content["x"] == pytest.approx(3e-6, abs=1e-7)
    assert out["focus"].structured_content["defocus_m"] == pytest.approx(-20e-9)
    summary = out["image"].structured_content
    assert summary["shape"] == [64, 64] and summary["mean"] > 0 and summary["finite_pixels"] == 64 * 64
    np.testing.assert_array_equal(np.load(summary["npy"]).shape, (64, 64))
    png = out["png"].content[0]
    assert png.type == "image" and png.mime_type == "image/png" and len(png.data) < 20_000
    camera = out["camera"].structured_content  # the camera tool switches the column back to TEM mode
    assert camera["shape"] == [64, 64] and camera["defocus_m"] == pytest.approx(-20e-9)
    assert out["approach"].structured_content["approached"] is True
    assert out["scan"].structured_content["shape"] == [16, 32]
    line = out["line"].structured_content
    assert line["unit"] == "m" and len(line["values"]) == 32 and all(abs(v) < 5e-9 for v in line["values"])
    assert len(out["line"].content) == 1  # one block, not one per number
    assert out["bad"].is_error and "'Topography'" in out["bad"].content[0].text  # the enum, before the twin
    assert out["small"].is_error and out["far"].is_error  # outside the declared sizes and stage range
    assert out["status"].structured_content["budgets"]["calls"]["spent"] >= 6  # calls pass the gate


def test_the_gym_environment_plays_the_autofocus_challenge_in_process_and_remotely(server) -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    from twin.agents.gym_env import AutofocusEnv

    env = gymnasium.make("MicroscopeTwin/Autofocus-v0", max_steps=4, size=32, render_mode="rgb_array")
    assert isinstance(env.unwrapped, AutofocusEnv)
    check_env(env.unwrapped)  # with the render check: rgb_array in every declared mode
    env = env.unwrapped
    first, info = env.reset(seed=3)
    again, _ = AutofocusEnv(max_steps=4, size=32).reset(seed=3)
    np.testing.assert_array_equal(first, again)  # the seed draws the hidden state and the noise
    assert first.shape == (32, 32) and first.dtype == np.float32 and np.isfinite(info["sharpness"])
    observation, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0, 0.0, 0.0]))
    assert np.isfinite(reward) and not terminated and not truncated
    *_, terminated, _, info = env.step(np.array([0.0, 0.0, 0.0, 1.0]))  # stop: the column is scored
    from twin.scenarios import spec
    from twin.server.instances import Instance

    same = Instance.playing("direct", spec.load("tem-autofocus"), 3)  # the column set by hand instead
    same.invoke("tem.set", ["optics.defocus", same.invoke("tem.get", ["optics.defocus"], {}) + 10e-9], {})
    assert terminated and info["score"] == pytest.approx(same.invoke("episode.submit", [{}], {})["score"])
    picture = env.render()
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8 and picture.max() > picture.min()

    remote = AutofocusEnv(server=(HOST, server.port, ["rl"]), max_steps=3, size=32)
    remote.reset()
    remote.action_space.seed(0)
    for _ in range(3):
        action = remote.action_space.sample()
        action[3] = -1.0  # random steps, none of them asking to stop
        *_, terminated, truncated, info = remote.step(action)
    assert truncated and not terminated
    assert info["score"] == Challenge(HOST, server.port, "rl").status()["score"]["score"]  # what it recorded
    with pytest.raises(RuntimeError, match="the episode is over; call reset"):
        remote.step(action)
    with pytest.raises(RuntimeError, match="all 1 server instances have been played"):
        remote.reset()
    remote.close()
    assert remote._connection is None


def test_the_afm_environment_rewards_a_loop_that_follows_the_surface(server) -> None:
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    import twin.agents.gym_env  # registers the environments

    env = gymnasium.make("MicroscopeTwin/AfmPidTuning-v0", max_steps=8, lines=4, render_mode="rgb_array")
    env = env.unwrapped
    check_env(env)
    assert env.observation_space.shape == (2, 4, 128)
    # one episode sweeps the gains (PGain = IGain / 2, DGain = IGain / 10) and keeps the best ...
    env.reset(seed=11)
    swept = {}
    for gain in 10.0 ** np.arange(1, 6):
        _, swept[gain], *_ = env.step(env.action_for(gain, gain / 2, gain / 10, 0.02))
    best = max(swept, key=swept.get)
    *_, terminated, _, good = env.step(env.action_for(best, best / 2, best / 10, 0.02, stop=True))
    assert terminated and good["IGain"] == pytest.approx(best, rel=1e-3)
    assert good["Scantime"] == pytest.approx(0.02, rel=1e-3)
    # ... another on the same instrument leaves the loop too weak to follow
    env.reset(seed=11)
    _, weak_reward, terminated, _, weak = env.step(env.action_for(1.0, 1.0, 1.0, 0.02, stop=True))
    assert swept[best] > weak_reward + 0.3 and weak["share"] > 0.8  # weak: the traces miss half the signal
    # the challenge's own measure (the forward trace against the ideal one) agrees with the reward
    assert good["score_details"]["tracking_error"] < 0.5 * weak["score_details"]["tracking_error"]
    assert good["score"] >= weak["score"]
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.shape == (3 * 4, 128, 3)

    remote = twin.agents.gym_env.AfmPidEnv(server=(HOST, server.port, ["pid"]), max_steps=2, lines=4)
    observation, info = remote.reset()
    assert observation.shape == (2, 4, 128) and info["share"] > 0
    *_, terminated, truncated, info = remote.step(remote.action_for(1e3, 500, 100, 0.05, stop=True))
    assert terminated and info["score"] == Challenge(HOST, server.port, "pid").status()["score"]["score"]
    remote.close()
    remote.close()  # closing twice is harmless


def test_an_mcp_answer_may_name_npy_files_for_its_arrays(tmp_path) -> None:
    from twin.agents.mcp_server import arrays_from_files

    heights = np.linspace(0.0, 1e-9, 12).reshape(3, 4)
    np.save(tmp_path / "heights.npy", heights)
    answer = arrays_from_files({"heights": str(tmp_path / "heights.npy"), "frame_index": 3,
                                "notes": ["missing.npy", "text"]})
    np.testing.assert_array_equal(answer["heights"], heights)
    assert answer["frame_index"] == 3 and answer["notes"] == ["missing.npy", "text"]
