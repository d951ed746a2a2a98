"""Curriculum state: the advance rule, validation, persistence and the status table."""

from __future__ import annotations

import json
import math

import pytest

from tdm_dagster.generate.curriculum import (
    ADVANCE_ACCURACY,
    ADVANCE_WINDOW,
    AdvanceRequirement,
    CurriculumState,
    curriculum_path,
)
from tdm_dagster.generate.generators import SKILLS
from tdm_dagster.home import TdmHome


def record_all(state: CurriculumState, skill: str, accuracies, **kwargs) -> list[bool]:
    return [state.record_evaluation(skill, accuracy, **kwargs) for accuracy in accuracies]


def test_rule_constants():
    assert (ADVANCE_ACCURACY, ADVANCE_WINDOW) == (0.8, 3)


def test_defaults_start_every_skill_at_level_one_with_syllo_active():
    state = CurriculumState()
    assert state.active_skill == "syllo"
    assert {skill: state.level_of(skill) for skill in SKILLS} == {"syllo": 1, "binary": 1}
    assert state.history == {"syllo": [], "binary": []}


# --- the advance rule ------------------------------------------------------------------

@pytest.mark.parametrize("accuracies", [(0.8, 0.8, 0.8), (0.6, 0.9, 0.9), (0.7, 0.85, 0.85), (1.0, 1.0, 0.4)])
def test_advances_when_mean_of_three_is_exactly_the_threshold(accuracies):
    state = CurriculumState()
    assert math.isclose(sum(accuracies) / 3, 0.8)
    assert record_all(state, "syllo", accuracies) == [False, False, True]
    assert state.level_of("syllo") == 2


def test_two_perfect_evaluations_are_not_enough():
    state = CurriculumState()
    assert record_all(state, "syllo", (1.0, 1.0)) == [False, False]
    assert state.level_of("syllo") == 1


@pytest.mark.parametrize("accuracies", [(0.79, 0.79, 0.79), (0.8, 0.8, 0.77), (1.0, 1.0, 0.37)])
def test_does_not_advance_below_the_threshold(accuracies):
    state = CurriculumState()
    assert record_all(state, "syllo", accuracies) == [False, False, False]
    assert state.level_of("syllo") == 1


def test_only_the_last_three_evaluations_count():
    state = CurriculumState()
    assert record_all(state, "binary", (0.0, 0.9, 0.9, 0.9)) == [False, False, False, True]
    assert state.level_of("binary") == 2


def test_window_restarts_after_an_advance():
    state = CurriculumState()
    record_all(state, "syllo", (1.0, 1.0, 1.0))
    assert state.level_of("syllo") == 2
    assert state.window("syllo") == []
    assert record_all(state, "syllo", (1.0, 1.0, 1.0)) == [False, False, True]
    assert state.level_of("syllo") == 3


def test_evaluations_at_another_level_never_count():
    state = CurriculumState()
    assert record_all(state, "syllo", (1.0, 1.0, 1.0), level=2) == [False, False, False]
    assert state.level_of("syllo") == 1
    assert [entry.level for entry in state.history["syllo"]] == [2, 2, 2]
    # Recorded before the advance to level 2, so they do not count at level 2 either.
    record_all(state, "syllo", (1.0, 1.0, 1.0))
    assert state.level_of("syllo") == 2
    assert state.record_evaluation("syllo", 1.0) is False


def test_skills_advance_independently():
    state = CurriculumState()
    record_all(state, "binary", (1.0, 1.0, 1.0))
    assert (state.level_of("binary"), state.level_of("syllo")) == (2, 1)


@pytest.mark.parametrize("skill", list(SKILLS))
def test_level_is_capped_at_the_generators_max_level(skill):
    state = CurriculumState()
    max_level = SKILLS[skill].max_level
    advances = sum(sum(record_all(state, skill, (1.0,) * 3)) for _ in range(max_level + 2))
    assert advances == max_level - 1
    assert state.level_of(skill) == max_level
    assert state.advance_requirement(skill) is None


def test_the_advancing_evaluation_is_marked():
    state = CurriculumState()
    record_all(state, "syllo", (0.9, 0.9, 0.9), note="ckpt-300")
    assert [entry.advanced_to for entry in state.history["syllo"]] == [None, None, 2]
    assert state.history["syllo"][-1].note == "ckpt-300"


def test_skill_names_are_case_insensitive():
    state = CurriculumState()
    state.record_evaluation(" Binary", 0.5)
    assert state.level_of("BINARY") == 1
    assert len(state.history["binary"]) == 1
    state.set_active("BINARY ")
    assert state.active_skill == "binary"


# --- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("accuracy", [1.01, -0.1, 80, float("nan"), float("inf"), True, "0.9", None])
def test_accuracy_outside_zero_to_one_is_refused(accuracy):
    state = CurriculumState()
    with pytest.raises(ValueError, match="accuracy must be"):
        state.record_evaluation("syllo", accuracy)
    assert state.history["syllo"] == []


def test_unknown_skill_is_refused_with_known_skills_listed():
    state = CurriculumState()
    for call in (lambda: state.record_evaluation("chess", 0.5), lambda: state.set_active("chess")):
        with pytest.raises(ValueError, match="known skills: syllo, binary"):
            call()
    assert state.active_skill == "syllo"


@pytest.mark.parametrize("level", [0, 6, "2", 2.0])
def test_explicit_level_must_exist_for_the_skill(level):
    with pytest.raises(ValueError, match=r"level for 'syllo' must be an integer from 1 to 5"):
        CurriculumState().record_evaluation("syllo", 0.5, level=level)


@pytest.mark.parametrize(
    "fields",
    [{"active_skill": "chess"}, {"levels": {"syllo": 6}}, {"levels": {"chess": 1}}, {"levels": {"binary": 0}}],
)
def test_constructor_validates(fields):
    with pytest.raises(ValueError):
        CurriculumState(**fields)


# --- what it takes to advance ----------------------------------------------------------

@pytest.mark.parametrize(
    ("accuracies", "evaluations", "mean"),
    [
        ((), 3, 0.8),
        ((0.5,), 2, 0.95),  # (2.4 - 0.5) / 2
        ((0.7, 0.85), 1, 0.85),  # 2.4 - 1.55
        ((0.5, 0.5), 2, 0.95),  # one more would need 1.4; two more keep only the last 0.5
        ((0.0, 0.0, 0.0), 3, 0.8),
    ],
)
def test_advance_requirement(accuracies, evaluations, mean):
    state = CurriculumState()
    record_all(state, "syllo", accuracies)
    requirement = state.advance_requirement("syllo")
    assert requirement.evaluations == evaluations
    assert math.isclose(requirement.mean_accuracy, mean)


def test_meeting_the_stated_requirement_advances():
    state = CurriculumState()
    record_all(state, "syllo", (0.75, 0.7))
    requirement = state.advance_requirement("syllo")
    assert requirement == AdvanceRequirement(1, pytest.approx(0.95))
    assert state.record_evaluation("syllo", requirement.mean_accuracy)


# --- status table ----------------------------------------------------------------------

def status_row(status: str, skill: str) -> str:
    return next(line for line in status.splitlines() if f" {skill} " in f" {line} ")


def test_status_shows_levels_active_marker_and_what_is_needed():
    state = CurriculumState()
    record_all(state, "syllo", (0.7, 0.85))
    status = state.format_status()
    syllo, binary = status_row(status, "syllo"), status_row(status, "binary")
    assert syllo.startswith("*") and not binary.startswith("*")
    assert "1/5" in syllo and "1/7" in binary
    assert "0.70 0.85" in syllo
    assert "1 more evaluation at >= 0.85" in syllo
    assert "3 more evaluations averaging >= 0.80" in binary


def test_status_rounds_the_needed_accuracy_up():
    state = CurriculumState()
    record_all(state, "syllo", (0.8, 0.795))  # needs 0.805 exactly
    assert ">= 0.81" in status_row(state.format_status(), "syllo")


def test_status_after_advance_and_at_max_level():
    state = CurriculumState(levels={"binary": 7})
    record_all(state, "syllo", (0.9, 0.9, 0.9))
    status = state.format_status()
    assert "0.90@L1 0.90@L1 0.90@L1" in status_row(status, "syllo")
    assert "2/5" in status_row(status, "syllo")
    assert "at max level" in status_row(status, "binary")


# --- persistence -----------------------------------------------------------------------

def test_curriculum_path_is_in_the_state_dir(tmp_path):
    assert curriculum_path(TdmHome(tmp_path)) == tmp_path / "state" / "curriculum.json"


def test_missing_file_loads_defaults_without_creating_it(tmp_path):
    path = tmp_path / "state" / "curriculum.json"
    assert CurriculumState.load(path) == CurriculumState()
    assert not path.exists()


def test_round_trip_keeps_everything(tmp_path):
    path = curriculum_path(TdmHome(tmp_path))
    state = CurriculumState()
    record_all(state, "binary", (0.9, 0.8, 0.9), note="run-7")
    state.record_evaluation("syllo", 0.4, note=None)
    state.record_evaluation("syllo", 0.6, level=3)
    state.set_active("binary")
    state.save(path)
    loaded = CurriculumState.load(path)
    assert loaded == state
    assert loaded.to_dict() == state.to_dict()
    # The restarted window survives a reload: one evaluation at the new level is not enough.
    assert loaded.record_evaluation("binary", 1.0) is False


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "curriculum.json"
    state = CurriculumState()
    state.save(path)
    state.record_evaluation("syllo", 0.5)
    state.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["curriculum.json"]
    assert json.loads(path.read_text())["skills"]["syllo"]["history"][0]["accuracy"] == 0.5


def test_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "curriculum.json"
    CurriculumState().save(path)
    before = path.read_text()
    changed = CurriculumState(active_skill="binary")

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tdm_dagster.files.atomic.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        changed.save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["curriculum.json"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": 2, "active_skill": "syllo", "skills": {}}', "version"),
        ('{"version": 1, "active_skill": "chess", "skills": {}}', "unknown skill 'chess'"),
        ('{"version": 1, "active_skill": "syllo", "skills": {"syllo": {"level": 9}}}', "level for 'syllo'"),
        ('{"version": 1, "active_skill": "syllo", "skills": {"chess": {"level": 1}}}', "unknown skill 'chess'"),
        ('{"version": 1, "active_skill": "syllo", "skills": {"syllo": {"level": 1, "history": {}}}}', "history"),
        (
            '{"version": 1, "active_skill": "syllo", "skills": {"syllo": {"level": 1, "history": '
            '[{"level": 1, "accuracy": 2, "timestamp": "t"}]}}}',
            "accuracy",
        ),
    ],
)
def test_invalid_file_raises_naming_the_file_and_is_left_alone(tmp_path, content, problem):
    path = tmp_path / "curriculum.json"
    path.write_text(content)
    with pytest.raises(ValueError) as raised:
        CurriculumState.load(path)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)
    assert path.read_text() == content


def test_skill_missing_from_an_older_file_starts_at_level_one(tmp_path):
    path = tmp_path / "curriculum.json"
    path.write_text('{"version": 1, "active_skill": "syllo", "skills": {"syllo": {"level": 4, "history": []}}}')
    state = CurriculumState.load(path)
    assert (state.level_of("syllo"), state.level_of("binary")) == (4, 1)
