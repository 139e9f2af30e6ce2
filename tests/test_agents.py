"""Agent interfaces against a real server: the MCP tools over stdio, and the Gymnasium environment."""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    journals = tmp_path_factory.mktemp("journals")
    process = ServerProcess.start("--instance", "llm=tem-autofocus:5", "--instance", "rl=tem-autofocus:6",
                                  "--journal-dir", str(journals))
    yield process
    assert process.stop() == 0


def test_an_mcp_client_lists_the_tools_and_drives_the_instruments(server, tmp_path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    command = StdioServerParameters(command=sys.executable, args=[
        "-m", "twin", "mcp", "--port", str(server.port), "--instance", "llm", "--images", str(tmp_path)])

    async def session() -> dict:
        async with Client(command, read_timeout_seconds=60) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            goal = (await client.call_tool("challenge_goal", {})).structured_content
            moved = (await client.call_tool("tem_stage_move", {"x": 2e-6, "y": -1e-6})).structured_content
            focus = (await client.call_tool("tem_set_defocus", {"defocus": -20e-9})).structured_content
            image = (await client.call_tool("stem_acquire_image", {"size": 64, "dwell_time": 1e-6}))
            png = await client.call_tool("view_last_image", {})
            camera = (await client.call_tool("tem_acquire_image", {"size": 512, "exposure_time": 0.01}))
            approach = (await client.call_tool("afm_approach", {})).structured_content
            scan = (await client.call_tool("afm_scan", {"width": 10e-9, "points": 32, "lines": 16}))
            line = (await client.call_tool("afm_read_line", {"line": 3})).structured_content
            bad = await client.call_tool("afm_read_line", {"line": 3, "channel": "Smell"})
            status = (await client.call_tool("challenge_status", {})).structured_content
            return {"tools": tools, "goal": goal, "moved": moved, "focus": focus, "image": image, "png": png,
                    "camera": camera, "approach": approach, "scan": scan, "line": line, "bad": bad,
                    "status": status}

    out = asyncio.run(session())
    expected = {"tem_stage_move", "tem_stage_position", "tem_set_defocus", "tem_acquire_image",
                "stem_acquire_image", "afm_approach", "afm_scan", "afm_read_line", "challenge_submit"}
    assert expected <= out["tools"]
    assert out["goal"]["name"] == "tem-autofocus"
    assert out["moved"]["x"] == pytest.approx(2e-6, abs=1e-7)
    assert out["focus"]["defocus"] == pytest.approx(-20e-9)
    summary = out["image"].structured_content
    assert summary["shape"] == [64, 64] and summary["mean"] > 0 and summary["finite_pixels"] == 64 * 64
    np.testing.assert_array_equal(np.load(summary["npy"]).shape, (64, 64))
    assert out["png"].content[0].type == "image" and out["png"].content[0].mime_type == "image/png"
    camera = out["camera"].structured_content  # the camera tool switches the column back to TEM mode
    assert camera["shape"] == [512, 512] and camera["defocus"] == pytest.approx(-20e-9)
    assert out["approach"]["approached"] is True
    assert out["scan"].structured_content["shape"] == [16, 32]
    assert len(out["line"]["result"]) == 32 and all(abs(v) < 5e-9 for v in out["line"]["result"])
    assert out["bad"].is_error and "allowed channels" in out["bad"].content[0].text
    assert out["status"]["budgets"]["calls"]["spent"] >= 6  # the tools' calls pass the challenge's gate


def test_the_gym_environment_plays_the_autofocus_challenge_in_process_and_remotely(server) -> None:
    from gymnasium.utils.env_checker import check_env

    from twin.agents.gym_env import AutofocusEnv

    env = AutofocusEnv(max_steps=4, size=32)
    check_env(env, skip_render_check=True)
    first, info = env.reset(seed=3)
    again, _ = AutofocusEnv(max_steps=4, size=32).reset(seed=3)
    np.testing.assert_array_equal(first, again)  # the seed draws the hidden state and the noise
    assert first.shape == (32, 32) and first.dtype == np.float32 and np.isfinite(info["sharpness"])
    observation, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0, 0.0, 0.0]))
    assert np.isfinite(reward) and not terminated and not truncated
    *_, terminated, _, info = env.step(np.array([0.0, 0.0, 0.0, 1.0]))  # stop: the column is scored
    assert terminated and 0.0 <= info["score"] <= 1.0

    remote = AutofocusEnv(server=(HOST, server.port, ["rl"]), max_steps=3, size=32)
    remote.reset()
    remote.action_space.seed(0)
    for _ in range(3):
        action = remote.action_space.sample()
        action[3] = -1.0  # random steps, none of them asking to stop
        *_, terminated, truncated, info = remote.step(action)
    assert truncated and not terminated and 0.0 <= info["score"] <= 1.0
    with pytest.raises(RuntimeError, match="the episode is over; call reset"):
        remote.step(action)
    with pytest.raises(RuntimeError, match="all 1 server instances have been played"):
        remote.reset()
    remote.close()
    assert remote._connection is None


def test_an_mcp_answer_may_name_npy_files_for_its_arrays(tmp_path) -> None:
    from twin.agents.mcp_server import arrays_from_files

    heights = np.linspace(0.0, 1e-9, 12).reshape(3, 4)
    np.save(tmp_path / "heights.npy", heights)
    answer = arrays_from_files({"heights": str(tmp_path / "heights.npy"), "frame_index": 3,
                                "notes": ["missing.npy", "text"]})
    np.testing.assert_array_equal(answer["heights"], heights)
    assert answer["frame_index"] == 3 and answer["notes"] == ["missing.npy", "text"]
