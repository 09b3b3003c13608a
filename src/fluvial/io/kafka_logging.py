"""librdkafka's own log lines, through Python logging and rate-limited.

Without this, librdkafka prints to stderr itself: a broker that is down produces a ``FAIL``
line per connection attempt, hundreds a minute, in a format no log pipeline expects. Every
client fluvial creates passes ``librdkafka_logger()`` as confluent-kafka's ``logger``; its
lines then come out as ``fluvial.librdkafka`` records, each distinct message at most once per
``REPEAT_WINDOW_S`` (numbers ignored when comparing, so retries and counters fold together).
Debug lines (librdkafka's ``debug`` setting with the log level at DEBUG) all pass: whoever
turns them on is tracing something.
"""

from __future__ import annotations

import logging
import re
import threading
import time

REPEAT_WINDOW_S = 60.0
_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Drops a record whose message, numbers aside, was let through less than ``window_s``
    ago; the next one let through says how many were dropped."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[str, tuple[float, int]] = {}  # shape -> (last let through, dropped)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True  # asked for (``debug`` set and the log level DEBUG): all of it
        shape = _NUMBERS.sub("#", record.getMessage())
        now = time.monotonic()
        with self._lock:
            last, dropped = self._seen.get(shape, (-self.window_s, 0))
            if now - last < self.window_s:
                self._seen[shape] = (last, dropped + 1)
                return False
            self._seen[shape] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} like it in the last {self.window_s:.0f} s)"
        return True


_logger = logging.getLogger("fluvial.librdkafka")
_logger.addFilter(RepeatFilter())


def librdkafka_logger() -> logging.Logger:
    """The logger to pass as confluent-kafka's ``logger`` configuration property."""
    return _logger
