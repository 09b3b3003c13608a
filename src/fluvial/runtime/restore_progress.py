"""Progress of a long restore: a log line per interval with records and percent per store.

A store restored from a large changelog can take minutes; without a word in the log an
operator cannot tell a slow restore from a stuck one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fluvial.logs import record_context

log = logging.getLogger("fluvial.restore")

INTERVAL_S = 10.0


class RestoreProgress:
    """Told the running counts after each applied batch; logs at most once per interval."""

    def __init__(self, task: str, totals: dict[str, int], interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.task = task
        self.totals = totals  # store -> records to apply
        self.interval_s = INTERVAL_S if interval_s is None else interval_s
        self._clock = clock
        self._last = clock()  # a restore shorter than one interval says nothing

    def report(self, applied: dict[str, int]) -> None:
        now = self._clock()
        if now - self._last < self.interval_s:
            return
        self._last = now
        log.info("task %s restoring: %s", self.task, ", ".join(
            f"{store} {applied.get(store, 0):,} of {total:,} records "
            f"({100 * applied.get(store, 0) // max(total, 1)} %)"
            for store, total in sorted(self.totals.items())),
            extra=record_context(self.task))
