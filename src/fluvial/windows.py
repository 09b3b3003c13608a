"""Windows: how a windowed aggregation cuts time, and the windowed keys it emits.

Shared by the DSL (which takes them from users), the operators (which place records in
windows) and the windowed serdes, so they sit beside ``record.py`` with no layer above them.
Times are epoch milliseconds; every duration also accepts a ``timedelta``. The rules are Kafka
Streams': time windows are ``[start, end)``, aligned to the epoch; sliding windows
``[start, end]``; sessions ``[first, last]`` of their records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, NamedTuple

Duration = timedelta | int


def to_ms(duration: Duration, what: str) -> int:
    """Milliseconds of ``duration``; a negative one is refused, naming ``what`` it was."""
    if isinstance(duration, timedelta):
        ms = duration // timedelta(milliseconds=1)
    elif isinstance(duration, int) and not isinstance(duration, bool):
        ms = duration
    else:
        raise TypeError(f"{what} must be a timedelta or milliseconds (int), "
                        f"got {type(duration).__name__}")
    if ms < 0:
        raise ValueError(f"{what} must not be negative, got {ms} ms")
    return ms


class Window(NamedTuple):
    start: int
    end: int


class Windowed(NamedTuple):
    """A key of a windowed aggregation: the grouping key and its window's bounds."""

    key: Any
    start: int
    end: int

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    def __str__(self) -> str:
        return f"[{self.key}@{self.start}/{self.end}]"


@dataclass(frozen=True)
class TimeWindows:
    """Tumbling windows (``advance == size``) or hopping ones (``advance_by`` a step).

    A record at ``ts`` falls in every window whose start is in ``(ts - size, ts]``; a window
    accepts records until stream time passes ``end + grace``.
    """

    size_ms: int
    advance_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError(f"window size must be larger than zero, got {self.size_ms} ms")
        if not 0 < self.advance_ms <= self.size_ms:
            raise ValueError(f"window advance must be more than zero and no more than the "
                             f"size ({self.size_ms} ms), got {self.advance_ms} ms")

    @classmethod
    def of_size_with_no_grace(cls, size: Duration) -> TimeWindows:
        return cls.of_size_and_grace(size, 0)

    @classmethod
    def of_size_and_grace(cls, size: Duration, grace: Duration) -> TimeWindows:
        """``grace``: how long after a window's end late records are still added to it."""
        size_ms = to_ms(size, "window size")
        return cls(size_ms, size_ms, to_ms(grace, "grace period"))

    def advance_by(self, advance: Duration) -> TimeWindows:
        """Hopping windows: a new window starts every ``advance``."""
        return TimeWindows(self.size_ms, to_ms(advance, "window advance"), self.grace_ms)

    def starts_for(self, timestamp: int) -> range:
        """Starts of the windows a record at ``timestamp`` belongs to, ascending."""
        advance = self.advance_ms
        first = (max(0, timestamp - self.size_ms + advance) // advance) * advance
        return range(first, timestamp + 1, advance)

    @property
    def retention_ms(self) -> int:
        """The default store retention: long enough to take every record grace lets in."""
        return self.size_ms + self.grace_ms


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of a fixed ``time_difference`` that slide with the records: each record opens a
    window ending at it (its left window) and one starting just after it (its right window),
    so every distinct set of records within ``time_difference`` of each other gets one window.
    """

    time_difference_ms: int
    grace_ms: int

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference: Duration) -> SlidingWindows:
        return cls.of_time_difference_and_grace(time_difference, 0)

    @classmethod
    def of_time_difference_and_grace(cls, time_difference: Duration,
                                     grace: Duration) -> SlidingWindows:
        return cls(to_ms(time_difference, "time difference"), to_ms(grace, "grace period"))

    @property
    def retention_ms(self) -> int:
        """The default store retention: a new record may update windows two differences back."""
        return 2 * self.time_difference_ms + self.grace_ms


@dataclass(frozen=True)
class SessionWindows:
    """Sessions of activity: records of a key less than ``inactivity_gap`` apart share one;
    a record that bridges two sessions merges them."""

    inactivity_gap_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.inactivity_gap_ms <= 0:
            raise ValueError(f"session inactivity gap must be larger than zero, "
                             f"got {self.inactivity_gap_ms} ms")

    @classmethod
    def of_inactivity_gap_with_no_grace(cls, inactivity_gap: Duration) -> SessionWindows:
        return cls.of_inactivity_gap_and_grace(inactivity_gap, 0)

    @classmethod
    def of_inactivity_gap_and_grace(cls, inactivity_gap: Duration,
                                    grace: Duration) -> SessionWindows:
        return cls(to_ms(inactivity_gap, "inactivity gap"), to_ms(grace, "grace period"))

    @property
    def retention_ms(self) -> int:
        return self.inactivity_gap_ms + self.grace_ms


class EmitStrategy(Enum):
    """When a windowed aggregation emits: on every update of a window (the default), or once,
    when the window closes (stream time past its end plus grace)."""

    ON_WINDOW_UPDATE = "on_window_update"
    ON_WINDOW_CLOSE = "on_window_close"

    @classmethod
    def on_window_update(cls) -> EmitStrategy:
        return cls.ON_WINDOW_UPDATE

    @classmethod
    def on_window_close(cls) -> EmitStrategy:
        return cls.ON_WINDOW_CLOSE


@dataclass(frozen=True)
class JoinWindows:
    """How far apart two records of a stream-stream join may be: a record at ``ts`` joins
    the other stream's records in ``[ts - before, ts + after]``; records are taken until
    stream time passes them by ``after`` (or ``before``) plus ``grace``, and a left/outer
    join's record without a match is emitted only then."""

    before_ms: int
    after_ms: int
    grace_ms: int
    #: False only from ``of``: a left/outer join's unmatched record is emitted at once
    spurious_result_fix: bool = True

    def __post_init__(self) -> None:
        if self.before_ms + self.after_ms < 0:
            raise ValueError(f"join window interval (before + after) must not be negative, "
                             f"got {self.before_ms} + {self.after_ms} ms")

    @classmethod
    def of(cls, time_difference: Duration) -> JoinWindows:
        """Kafka Streams' deprecated ``JoinWindows.of`` (which ksqlDB uses for a ``WITHIN``
        without ``GRACE PERIOD``): 24 hours' grace, and a left or outer join emits a
        record without a match at once, joined with None, rather than when its window
        closes."""
        ms = to_ms(time_difference, "time difference")
        return cls(ms, ms, 24 * 3_600_000, spurious_result_fix=False)

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference: Duration) -> JoinWindows:
        return cls.of_time_difference_and_grace(time_difference, 0)

    @classmethod
    def of_time_difference_and_grace(cls, time_difference: Duration,
                                     grace: Duration) -> JoinWindows:
        ms = to_ms(time_difference, "time difference")
        return cls(ms, ms, to_ms(grace, "grace period"))

    def before(self, time_difference: Duration) -> JoinWindows:
        """Only the other stream's records up to ``time_difference`` earlier (it may be
        negative, if ``after`` covers it)."""
        return dataclasses.replace(self, before_ms=_signed_ms(time_difference))

    def after(self, time_difference: Duration) -> JoinWindows:
        """Only the other stream's records up to ``time_difference`` later."""
        return dataclasses.replace(self, after_ms=_signed_ms(time_difference))

    @property
    def size_ms(self) -> int:
        return self.before_ms + self.after_ms

    @property
    def retention_ms(self) -> int:
        """How long each side's store keeps records: the window plus grace."""
        return self.size_ms + self.grace_ms


def _signed_ms(duration: Duration) -> int:
    if isinstance(duration, timedelta):
        return duration // timedelta(milliseconds=1)
    return -to_ms(-duration, "time difference") if duration < 0 else to_ms(duration,
                                                                          "time difference")
