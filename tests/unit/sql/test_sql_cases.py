"""Every case of tests/sql/cases/*.json (ksqlDB's query-validation-test format) passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial.sql.testing import load_cases, run_case

CASES = Path(__file__).resolve().parents[2] / "sql" / "cases"
FILES = sorted(CASES.glob("*.json"))
ALL = [(f.stem, case) for f in FILES for case in load_cases(f)]


def test_the_case_files_are_found() -> None:
    assert len(FILES) >= 5 and len(ALL) >= 100


@pytest.mark.parametrize("case", [c for _, c in ALL], ids=[f"{f}::{c['name']}" for f, c in ALL])
def test_case(case: dict) -> None:
    result = run_case(case)
    assert result.passed, result.detail
