"""The airline examples run: the score example end to end, the speed measurement's kernels."""

from __future__ import annotations

import pytest
from examples.airline import score_example, scoring_speed
from examples.airline.train import Trained


def test_the_score_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    score_example.main()
    out = capsys.readouterr().out
    assert "Label (aka prediction) is flight departure delayed: " in out
    assert "Class probabilities: " in out
    assert "dead-lettered: 1" in out
    assert "'swaps': 1" in out


def test_the_speed_measurement_runs(small: Trained, lines: list[str]) -> None:
    assert scoring_speed.operator_rate(small.model, lines[:200], 50) > 0
    assert scoring_speed.model_rate(small.model, lines[:200], 50) > 0
