"""Compare a query's output with its reference: a benchmark whose output is wrong is void.

Kafka orders records per partition only, so outputs are compared as a multiset of
(key, value) with values in canonical JSON: every expected record exactly once, nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class CheckResult:
    expected: int
    actual: int
    missing: list[tuple[str, Any]] = field(default_factory=list)  # up to 5 examples each
    unexpected: list[tuple[str, Any]] = field(default_factory=list)
    missing_count: int = 0
    unexpected_count: int = 0

    @property
    def ok(self) -> bool:
        return self.missing_count == 0 and self.unexpected_count == 0

    def summary(self) -> str:
        if self.ok:
            return f"ok: {self.actual} outputs match the reference"
        return (f"WRONG: {self.actual} outputs against {self.expected} expected; "
                f"{self.missing_count} missing (e.g. {self.missing[:2]}), "
                f"{self.unexpected_count} unexpected or duplicated (e.g. {self.unexpected[:2]})")


def _canonical(pairs: Iterable[tuple[str | None, Any]]) -> Counter[tuple[str | None, bytes]]:
    return Counter((k, orjson.dumps(v, option=orjson.OPT_SORT_KEYS)) for k, v in pairs)


def check(actual: Iterable[tuple[str | None, Any]],
          expected: Iterable[tuple[str | None, Any]]) -> CheckResult:
    got, want = _canonical(actual), _canonical(expected)
    missing, unexpected = want - got, got - want
    return CheckResult(
        expected=sum(want.values()), actual=sum(got.values()),
        missing=[(str(k), orjson.loads(v)) for k, v in list(missing)[:5]],
        unexpected=[(str(k), orjson.loads(v)) for k, v in list(unexpected)[:5]],
        missing_count=sum(missing.values()), unexpected_count=sum(unexpected.values()))


def check_latest(actual: Iterable[tuple[str | None, Any]],
                 expected: Iterable[tuple[str | None, Any]]) -> CheckResult:
    """For a table's update stream, in the order one partition wrote it: the latest value
    per key must be the expected one (intermediate updates depend on batching and caching)."""
    latest: dict[str | None, Any] = {}
    for key, value in actual:
        latest[key] = value
    return check(latest.items(), expected)
