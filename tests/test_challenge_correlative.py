"""The correlative-registration scorer, in process (the baseline's band against a real server is in
test_challenges.py, which runs every baseline on one shared server)."""

from __future__ import annotations

import numpy as np
import pytest

from twin.sample import Window
from twin.scenarios import spec
from twin.server.instances import Instance

SEED = 2


@pytest.fixture(scope="module")
def scenario() -> spec.Scenario:
    return spec.load("correlative-registration")


def truth(instance: Instance, kind: str = "contamination") -> dict:
    """The true answer: the hidden AFM frame and one feature of ``kind`` near the origin in both frames."""
    frame = instance.episode.hidden.frames["afm"]
    near = instance.twin.tem.sample.defects_in_window(Window.around(0.0, 0.0, 30e-9, 30e-9))
    feature = next(d for d in near if d.kind == kind)
    in_afm = [float(v) for v in instance.twin.afm.sample.frame.from_sample(feature.x, feature.y)]
    return {"rotation": frame.rotation, "offset": list(frame.offset), "defect_tem": [feature.x, feature.y],
            "defect_afm": in_afm}


def test_the_hidden_frame_stays_inside_the_bounds_the_goal_states(scenario) -> None:
    assert "20 degrees" in scenario.goal and "12 nm" in scenario.goal and "1 nm" in scenario.goal
    frames = [scenario.draw(seed).frames["afm"] for seed in range(40)]
    rotations = np.array([f.rotation for f in frames])
    offsets = np.array([f.offset for f in frames])
    assert np.all(np.abs(rotations) <= np.radians(20)) and np.ptp(rotations) > np.radians(20)
    assert np.all(np.abs(offsets) <= 12e-9) and np.ptp(offsets) > 12e-9
    assert scenario.draw(SEED) == scenario.draw(SEED) and scenario.draw(SEED) != scenario.draw(SEED + 1)


@pytest.mark.parametrize("kind", ["contamination", "adsorbate"])
def test_the_true_answer_scores_one_with_either_kind_of_feature(scenario, kind: str) -> None:
    instance = Instance.playing("a", scenario, SEED)
    result = instance.episode.submit(truth(instance, kind))
    assert result["score"] == pytest.approx(1.0)
    details = result["details"]
    assert details["mapping_error"] < 1e-15 and abs(details["rotation_error"]) < 1e-12
    assert details["defect_tem_error"] < 1e-15 and details["defect_afm_error"] < 1e-15


def test_a_turned_transform_misses_by_the_arc_over_the_region(scenario) -> None:
    instance = Instance.playing("a", scenario, SEED)
    answer = truth(instance)
    turn = np.radians(3.0)
    result = instance.episode.submit({**answer, "rotation": answer["rotation"] + turn})["details"]
    grid = np.linspace(-25e-9, 25e-9, 5)
    radius = np.hypot(*np.meshgrid(grid, grid)).mean()  # |R(a + t) p - R(a) p| = 2 sin(t / 2) |p|
    assert result["mapping_error"] == pytest.approx(2 * np.sin(turn / 2) * radius, rel=1e-9)
    assert result["rotation_error"] == pytest.approx(turn)
    assert result["defect_afm_error"] < 1e-15  # the positions are scored on their own


def test_wrong_answers_score_low_and_each_part_is_weighted_as_the_goal_says(scenario) -> None:
    def score(change: dict) -> dict:
        instance = Instance.playing("a", scenario, SEED)
        return instance.episode.submit({**truth(instance), **change})

    instance = Instance.playing("a", scenario, SEED)
    answer = truth(instance)
    elsewhere = np.array(answer["defect_tem"]) + 200e-9  # any feature counts: the nearest one is scored
    features = np.array([(d.x, d.y) for d in instance.twin.sample.defects_in_window(
        Window.around(*elsewhere, 100e-9, 100e-9)) if d.kind in ("contamination", "adsorbate")])
    nearest = np.hypot(*(features - elsewhere).T)
    result = score({"defect_tem": elsewhere.tolist()})["details"]
    assert result["defect_tem_error"] == pytest.approx(nearest.min())
    candidates = elsewhere + np.stack(np.meshgrid(*2 * [np.linspace(-30e-9, 30e-9, 13)]), -1).reshape(-1, 2)
    gaps = np.array([np.hypot(*(features - c).T).min() for c in candidates])
    empty = candidates[np.argmax(gaps)].tolist()  # the spot farthest from every feature
    assert gaps.max() > 8e-9
    lost = score({"defect_tem": empty, "defect_afm": [1e-6, 1e-6]})  # no feature near either
    assert lost["score"] == pytest.approx(0.6, abs=1e-3) and lost["details"]["defect_tem_error"] > 8e-9
    wrong_afm = score({"defect_afm": answer["defect_tem"]})  # the TEM's coordinates for the AFM's
    assert wrong_afm["score"] == pytest.approx(0.8, abs=0.01)
    shifted = score({"offset": (np.array(answer["offset"]) + [2e-9, 0.0]).tolist()})
    assert shifted["details"]["mapping_error"] == pytest.approx(2e-9)
    assert shifted["score"] == pytest.approx(0.4 + 0.6 * np.exp(-2.0), abs=1e-6)
    naive = score({"rotation": 0.0, "offset": [0.0, 0.0], "defect_afm": answer["defect_tem"]})
    away = [1e-6, 1e-6]
    nothing = score({"rotation": 1.0, "offset": away, "defect_tem": empty, "defect_afm": away})
    assert naive["score"] < 0.6 and nothing["score"] < 1e-6


@pytest.mark.parametrize(("change", "message"), [
    ({"rotation": "north"}, "answer rotation"),
    ({"offset": [1e-9, 2e-9, 3e-9]}, "answer offset must be \\[x, y\\] in m"),
    ({"defect_afm": None}, "answer defect_afm must be \\[x, y\\] in m"),
    ({"defect_tem": [0.0, 5.0]}, "answer defect_tem"),  # 5 m: out of range
])
def test_a_malformed_answer_is_refused_by_name_and_the_episode_goes_on(scenario, change, message) -> None:
    instance = Instance.playing("a", scenario, SEED)
    answer = truth(instance)
    with pytest.raises((ValueError, TypeError), match=message):
        instance.episode.submit({**answer, **change})
    with pytest.raises(ValueError, match="answer is missing defect_tem, defect_afm"):
        instance.episode.submit({"rotation": 0.0, "offset": [0.0, 0.0]})
    assert instance.episode.submit(answer)["score"] == pytest.approx(1.0)
