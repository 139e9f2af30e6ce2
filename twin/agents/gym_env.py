"""A Gymnasium environment for the STEM autofocus challenge (``tem-autofocus``).

Each step changes the defocus and the two stigmator values, takes a small HAADF image and rewards the
gain in image sharpness; the episode ends after ``max_steps`` (or when the agent asks to stop) by
handing the column's state in for the challenge's score, which is added to the last reward. The
environment runs its own twin in process (``reset(seed=...)`` draws a fresh hidden state: fast, for
training), or plays instances of a shared server (``server=(host, port, [names])``, one per episode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from twin import validation
from twin.scenarios import spec
from twin.server import wire

SCENARIO = "tem-autofocus"


class AutofocusEnv(gym.Env):
    """Observation: a ``size`` x ``size`` HAADF image divided by its mean (float32, at most 1000).
    Action: four numbers in [-1, 1]: a defocus step (x ``defocus_step`` m), two stigmator steps
    (x ``stigmator_step``), and > 0.5 in the fourth ends the episode. Reward: the change of the image's
    sharpness (shot-noise-corrected normalised variance), plus 10 x the challenge score at the end."""

    metadata = {"render_modes": []}

    def __init__(self, server: tuple[str, int, Sequence[str]] | None = None, max_steps: int = 60,
                 size: int = 64, dwell_time: float = 2e-5, defocus_step: float = 20e-9,
                 stigmator_step: float = 0.05) -> None:
        super().__init__()
        validation.integer("max_steps", max_steps, 1, 100_000)
        validation.integer("size", size, 16, 1024)
        validation.positive("dwell_time", dwell_time, 0.0, 1e-3, "s")
        validation.positive("defocus_step", defocus_step, 0.0, 1e-6, "m")
        validation.positive("stigmator_step", stigmator_step, 0.0, 1.0)
        self.server = server
        self.max_steps, self.size, self.dwell_time = max_steps, size, dwell_time
        self.defocus_step, self.stigmator_step = defocus_step, stigmator_step
        self.observation_space = gym.spaces.Box(0.0, 1e3, (size, size), np.float32)  # counts / mean
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._scenario = spec.load(SCENARIO)
        self._played = 0
        self._tem = self._episode = self._connection = None
        self._over = True  # until reset

    def _open(self, seed: int) -> None:
        """The next episode's remote objects: a fresh in-process instance, or the server's next one."""
        if self.server is None:
            from twin.server.instances import Instance

            instance = Instance.playing("gym", self._scenario, seed)
            self._tem, self._episode = instance.objects["tem"], instance.objects["episode"]
            return
        from clients._remote import Connection

        host, port, names = self.server
        if self._played >= len(names):
            raise RuntimeError(f"all {len(names)} server instances have been played; give more names")
        self.close()
        self._connection = Connection(host, port, names[self._played])
        self._tem, self._episode = self._connection[wire.TEM_OBJECT], self._connection[wire.EPISODE_OBJECT]

    def _look(self) -> tuple[np.ndarray, float]:
        image = self._tem.acquire_stem_images(["HAADF"], self.size, self.dwell_time)[0]["data"].astype(float)
        mean = max(image.mean(), 1e-9)
        observation = np.clip(image / mean, 0.0, 1e3).astype(np.float32)
        return observation, float((image.var() - image.mean()) / mean**2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._open(int(self.np_random.integers(2**31)) if seed is None else seed)
        self._played += 1
        self._steps, self._over = 0, False
        self._defocus = self._tem.get("optics.defocus")
        self._stigmator = np.array(self._tem.get("optics.objective_stigmator"), dtype=float)
        observation, self._sharpness = self._look()
        return observation, {"sharpness": self._sharpness}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._over:
            raise RuntimeError("the episode is over; call reset() for the next one")
        action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        self._defocus += action[0] * self.defocus_step
        self._stigmator = np.clip(self._stigmator + action[1:3] * self.stigmator_step, -1.0, 1.0)
        self._tem.set("optics.defocus", float(self._defocus))
        self._tem.set("optics.objective_stigmator", self._stigmator.tolist())
        observation, sharpness = self._look()
        reward, self._sharpness = sharpness - self._sharpness, sharpness
        self._steps += 1
        info: dict[str, Any] = {"sharpness": sharpness, "defocus": self._defocus}
        done = action[3] > 0.5 or self._steps >= self.max_steps
        if done:
            result = self._episode.submit({})
            reward += 10.0 * result["score"]
            info["score"] = result["score"]
            self._over = True
        return observation, float(reward), bool(action[3] > 0.5), bool(self._steps >= self.max_steps), info

    def close(self) -> None:
        """Release the connection to the server's instance (if any)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
