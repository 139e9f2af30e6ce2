"""Gymnasium environments for two challenges: STEM autofocus (``tem-autofocus``) and AFM z-loop tuning
(``afm-pid-tuning``).

Importing this module registers them, so ``gymnasium.make("MicroscopeTwin/Autofocus-v0")`` and
``gymnasium.make("MicroscopeTwin/AfmPidTuning-v0")`` work after ``import twin.agents.gym_env`` (or in
one go: ``gymnasium.make("twin.agents.gym_env:MicroscopeTwin/Autofocus-v0")``). Both take
``render_mode="rgb_array"``.

Each environment runs its own twin in process (``reset(seed=...)`` draws a fresh hidden state: fast,
for training), or plays instances of a shared server (``server=(host, port, [names])``, one per
episode). An episode ends after ``max_steps`` (or when the agent asks to stop) by handing the
instrument's state in for the challenge's score, 10 x which is added to the last reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import gymnasium as gym
except ImportError as error:  # pragma: no cover - the agents extra is missing
    raise ImportError(f"{error}; the Gymnasium environments need the agents extra: "
                      "pip install 'microscope-twin[agents]'") from error

from twin import validation
from twin.common import wire
from twin.scenarios import spec

SCORE_WEIGHT = 10.0  # the challenge's score (0..1) counts this much in the last reward
Server = tuple[str, int, Sequence[str]]


def grey(image: np.ndarray) -> np.ndarray:
    """``image`` as an RGB picture (HxWx3 uint8), contrast stretched to its 1st-99th percentiles, its
    first row at the bottom (as plotted)."""
    data = np.nan_to_num(np.asarray(image, dtype=float))
    lo, hi = np.percentile(data, [1, 99])
    levels = np.round(255 * np.clip((data - lo) / max(hi - lo, 1e-30), 0, 1)).astype(np.uint8)[::-1]
    return np.repeat(levels[:, :, None], 3, axis=2)


class _ChallengeEnv(gym.Env):
    """What both environments share: an instance per episode (in process or on a server), the end of an
    episode by submitting, and rendering the last picture."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    scenario = ""  # the challenge played
    instruments: tuple[str, ...] = ()  # the instance's objects the environment drives

    def __init__(self, server: Server | None, max_steps: int, render_mode: str | None) -> None:
        super().__init__()
        validation.integer("max_steps", max_steps, 1, 100_000)
        if render_mode is not None:
            validation.one_of("render_mode", render_mode, self.metadata["render_modes"])
        self.server, self.max_steps, self.render_mode = server, max_steps, render_mode
        self._scenario = spec.load(self.scenario)
        self._played = 0
        self._objects: dict[str, Any] = {}
        self._connection = None
        self._picture: np.ndarray | None = None
        self._over = True  # until reset

    def _open(self, seed: int) -> None:
        """The next episode's remote objects: a fresh in-process instance, or the server's next one."""
        if self.server is None:
            from twin.server.instances import Instance

            instance = Instance.playing("gym", self._scenario, seed)
            self._objects = {name: instance.objects[name] for name in (*self.instruments, "episode")}
            return
        from clients.connection import Connection

        host, port, names = self.server
        if self._played >= len(names):
            raise RuntimeError(f"all {len(names)} server instances have been played; give more names")
        self.close()
        self._connection = Connection(host, port, names[self._played])
        targets = {"tem": wire.TEM_OBJECT, "afm": wire.AFM_OBJECT, "episode": wire.EPISODE_OBJECT}
        self._objects = {name: self._connection[targets[name]] for name in (*self.instruments, "episode")}

    def _start(self, seed: int | None) -> None:
        self._open(int(self.np_random.integers(2**31)) if seed is None else seed)
        self._played += 1
        self._steps, self._over = 0, False

    def _finish(self, stop: bool, reward: float, info: dict[str, Any]) -> tuple[bool, bool, float]:
        """Count the step; at the episode's end submit the state and add the score to ``reward``."""
        if self._over:
            raise RuntimeError("the episode is over; call reset() for the next one")
        self._steps += 1
        truncated = self._steps >= self.max_steps
        if stop or truncated:
            result = self._objects["episode"].submit({})
            reward += SCORE_WEIGHT * result["score"]
            info["score"], info["score_details"] = result["score"], result["details"]
            self._over = True
        return stop, truncated, float(reward)

    def render(self) -> np.ndarray | None:
        """The last picture as HxWx3 uint8 (``render_mode="rgb_array"``), else None."""
        if self.render_mode != "rgb_array" or self._picture is None:
            return None
        return self._picture.copy()

    def close(self) -> None:
        """Release the connection to the server's instance (if any); closing twice is harmless."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class AutofocusEnv(_ChallengeEnv):
    """STEM autofocus. Observation: a ``size`` x ``size`` HAADF image divided by its mean (float32, at
    most 1000). Action: four numbers in [-1, 1]: a defocus step (x ``defocus_step`` m), two stigmator
    steps (x ``stigmator_step``), and > 0.5 in the fourth ends the episode. Reward: the change of the
    image's sharpness (shot-noise-corrected normalised variance), plus 10 x the challenge score at the
    end. Rendered: the last image."""

    scenario = "tem-autofocus"
    instruments = ("tem",)

    def __init__(self, server: Server | None = None, max_steps: int = 60, size: int = 64,
                 dwell_time: float = 2e-5, defocus_step: float = 20e-9, stigmator_step: float = 0.05,
                 render_mode: str | None = None) -> None:
        super().__init__(server, max_steps, render_mode)
        validation.integer("size", size, 16, 1024)
        validation.positive("dwell_time", dwell_time, 0.0, 1e-3, "s")
        validation.positive("defocus_step", defocus_step, 0.0, 1e-6, "m")
        validation.positive("stigmator_step", stigmator_step, 0.0, 1.0)
        self.size, self.dwell_time = size, dwell_time
        self.defocus_step, self.stigmator_step = defocus_step, stigmator_step
        self.observation_space = gym.spaces.Box(0.0, 1e3, (size, size), np.float32)  # counts / mean
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    @property
    def _tem(self) -> Any:
        return self._objects["tem"]

    def _look(self) -> tuple[np.ndarray, float]:
        image = self._tem.acquire_stem_images(["HAADF"], self.size, self.dwell_time)[0]["data"].astype(float)
        self._picture = grey(image)
        mean = max(image.mean(), 1e-9)
        observation = np.clip(image / mean, 0.0, 1e3).astype(np.float32)
        return observation, float((image.var() - image.mean()) / mean**2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._start(seed)
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
        info: dict[str, Any] = {"sharpness": sharpness, "defocus": self._defocus}
        terminated, truncated, reward = self._finish(bool(action[3] > 0.5), reward, info)
        return observation, reward, terminated, truncated, info


class AfmPidEnv(_ChallengeEnv):
    """AFM z-loop tuning. Action: five numbers in [-1, 1]: the integral, proportional and derivative
    gains and the line time, each on a log scale (gains from ``lowest_gain`` to the controller's
    declared maximum, line times from the declared minimum to ``slowest_line`` s; :meth:`action_for`
    turns values into an action), and > 0.5 in the fifth ends the episode. Each step scans a test
    strip of ``lines`` lines of ``points`` points through the middle of the scored square.
    Observation: the strip's forward and backward topography (nm, each line's mean removed; shape
    ``(2, lines, points)``). Reward: minus the trace-retrace mismatch as a share of the traced signal
    (the RMS of half their difference over the RMS of their mean: about 1 for a loop too weak to follow
    or ringing, small for a loop that follows), plus 10 x the challenge score at the end (the loop and
    line time set then, scored on the whole square). Rendered: forward, backward and their difference."""

    scenario = "afm-pid-tuning"
    instruments = ("afm",)
    gains = ("ZController.IGain", "ZController.PGain", "ZController.DGain")

    def __init__(self, server: Server | None = None, max_steps: int = 20, lines: int = 8, points: int = 128,
                 lowest_gain: float = 1.0, slowest_line: float = 1.0, render_mode: str | None = None) -> None:
        super().__init__(server, max_steps, render_mode)
        self.lines = validation.integer("lines", lines, 4, 64)
        self.points = validation.integer("points", points, 16, 512)
        settings = {s["name"]: s for s in self._declared()}
        self.lowest_gain = validation.real("lowest_gain", lowest_gain, 1e-3,
                                           min(settings[g]["max"] for g in self.gains))
        line_times = settings["Scan.Scantime"]
        self.slowest_line = validation.real("slowest_line", slowest_line, line_times["min"],
                                            line_times["max"], "s")
        self._log_ranges = np.log10([*[(self.lowest_gain, settings[g]["max"]) for g in self.gains],
                                     (line_times["min"], self.slowest_line)])
        self.action_space = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.observation_space = gym.spaces.Box(-1e4, 1e4, (2, self.lines, self.points), np.float32)  # nm

    def _declared(self) -> list[dict[str, Any]]:
        """The AFM's declared settings (units, ranges) as the challenge's instrument validates them."""
        from twin.server.instances import Instance

        return Instance.playing("ranges", self._scenario, 0).objects["afm"].describe()["settings"]

    def action_for(self, i_gain: float, p_gain: float, d_gain: float, line_time: float,
                   stop: bool = False) -> np.ndarray:
        """The action setting these gains and line time (s)."""
        values = np.log10(np.maximum([i_gain, p_gain, d_gain, line_time], 1e-30))
        lo, hi = self._log_ranges[:, 0], self._log_ranges[:, 1]
        return np.append(np.clip(2 * (values - lo) / (hi - lo) - 1, -1, 1), 1.0 if stop else -1.0
                         ).astype(np.float32)

    @property
    def _afm(self) -> Any:
        return self._objects["afm"]

    def _look(self) -> tuple[np.ndarray, float, float]:
        """A test strip's traces (nm), their mismatch and the signal (m)."""
        self._afm.start_frame_up()
        traces = np.stack([np.asarray(self._afm.get_frame(group, 1)["data"], dtype=float)
                           for group in (0, 1)])  # forward, backward topography (m)
        traces = np.nan_to_num(traces - traces.mean(axis=2, keepdims=True))
        mismatch, signal = (float(np.sqrt(np.mean(t**2))) for t in ((traces[0] - traces[1]) / 2,
                                                                      (traces[0] + traces[1]) / 2))
        self._picture = np.concatenate([grey(traces[0]), grey(traces[1]), grey(traces[0] - traces[1])])
        return np.clip(traces * 1e9, -1e4, 1e4).astype(np.float32), mismatch, signal

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._start(seed)
        afm = self._afm
        width = afm.get("Scan.ImageWidth")
        afm.set("Scan.Points", self.points)
        afm.set("Scan.Lines", self.lines)
        afm.set("Scan.ImageHeight", width * self.lines / self.points)  # square pixels
        afm.start_approach()
        observation, mismatch, signal = self._look()
        return observation, self._info(mismatch, signal)

    def _info(self, mismatch: float, signal: float) -> dict[str, Any]:
        return {"mismatch": mismatch, "signal": signal, "share": mismatch / max(signal, 1e-15),
                **{name.split(".")[1]: self._afm.get(name) for name in (*self.gains, "Scan.Scantime")}}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._over:
            raise RuntimeError("the episode is over; call reset() for the next one")
        action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        lo, hi = self._log_ranges[:, 0], self._log_ranges[:, 1]
        values = 10 ** (lo + (action[:4] + 1) / 2 * (hi - lo))
        for name, value in zip((*self.gains, "Scan.Scantime"), values, strict=True):
            self._afm.set(name, float(value))
        observation, mismatch, signal = self._look()
        info = self._info(mismatch, signal)
        terminated, truncated, reward = self._finish(bool(action[4] > 0.5), -info["share"], info)
        return observation, reward, terminated, truncated, info


def _register() -> None:
    for name, entry in (("Autofocus", "AutofocusEnv"), ("AfmPidTuning", "AfmPidEnv")):
        if f"MicroscopeTwin/{name}-v0" not in gym.registry:
            gym.register(f"MicroscopeTwin/{name}-v0", entry_point=f"{__name__}:{entry}")


_register()
