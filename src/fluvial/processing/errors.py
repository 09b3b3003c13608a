"""What happens to a record that cannot be read or processed."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fluvial.errors import ConfigError
from fluvial.record import Headers

log = logging.getLogger("fluvial.errors")


class OnError(StrEnum):
    STOP = "stop"                # stop the app, commit nothing past the record: nothing lost
    SKIP = "skip"                # log it, count it, go on
    DEAD_LETTER = "dead_letter"  # send the original bytes to a topic with the error in headers


@dataclass(frozen=True)
class ErrorPolicy:
    on_error: OnError = OnError.STOP
    dead_letter_topic: str | None = None  # default: "<application id>-dead-letter"

    @classmethod
    def parse(cls, value: str | OnError, dead_letter_topic: str | None = None) -> ErrorPolicy:
        try:
            mode = OnError(value)
        except ValueError:
            allowed = ", ".join(m.value for m in OnError)
            raise ConfigError(f"on_error={value!r} is not one of: {allowed}") from None
        return cls(mode, dead_letter_topic)

    def topic(self, application_id: str) -> str:
        return self.dead_letter_topic or f"{application_id}-dead-letter"


def dead_letter_headers(original: Headers | None, message: str, stage: str, topic: str,
                        partition: int, offset: int, task_id: str | None) -> Headers:
    """A dead letter's headers: the record's own, then what failed, where and why."""
    headers: Headers = [*(original or []),
                        ("fluvial.error", message.encode()),
                        ("fluvial.stage", stage.encode()),
                        ("fluvial.topic", topic.encode()),
                        ("fluvial.partition", str(partition).encode()),
                        ("fluvial.offset", str(offset).encode())]
    if task_id is not None:
        headers.append(("fluvial.task", task_id.encode()))
    return headers


RECENT_ERRORS = 50


class RecentErrors:
    """The last records the error policy skipped or dead-lettered, with why, for the
    dashboard. Written only when a record fails (never per record); ``append`` on a bounded
    deque is atomic, so other threads read a copy without a lock."""

    def __init__(self, size: int = RECENT_ERRORS) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.counts: dict[str, int] = {}  # kind -> times noted, all of them

    def note(self, kind: str, reason: str, topic: str | None = None,
             partition: int | None = None, offset: int | None = None,
             task: str | None = None) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self._entries.append({"time": time.time(), "kind": kind, "reason": reason,
                              "topic": topic, "partition": partition, "offset": offset,
                              "task": task})

    def entries(self) -> list[dict[str, Any]]:
        """Newest first."""
        return list(reversed(list(self._entries)))
