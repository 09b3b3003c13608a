"""Log lines for people (text) or for log pipelines (one JSON object per line).

``fluvial run --log-format json`` (or ``FLUVIAL_LOG_FORMAT=json``) makes every record of the
process, librdkafka's included (they go through Python logging, io/kafka_logging.py), one
JSON object on one line, so Loki, Elasticsearch or Cloud Logging can index fields instead of
parsing messages. Where a log call knows them it passes the record's coordinates as
``extra=record_context(...)``; they come out as fields (``task``, ``topic``, ``partition``,
``offset``, ``stage``).
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

LOG_FORMATS = ("text", "json")
CONTEXT_FIELDS = ("task", "topic", "partition", "offset", "stage")
TEXT_FORMAT = "%(asctime)s %(levelname)s [{instance}] %(name)s: %(message)s"


def record_context(task: str | None = None, topic: str | None = None,
                   partition: int | None = None, offset: int | None = None,
                   stage: str | None = None) -> dict[str, Any]:
    """``extra=`` for a log call about a task or a record: the fields JSON logs carry."""
    given = {"task": task, "topic": topic, "partition": partition, "offset": offset,
             "stage": stage}
    return {k: v for k, v in given.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    application and instance, the record context fields present, and an exception as
    ``error`` (its one-line summary) plus ``traceback`` (escaped, so still one line)."""

    def __init__(self, application_id: str, instance: str, worker: int | None = None) -> None:
        super().__init__()
        self._fixed: dict[str, Any] = {"application_id": application_id, "instance": instance}
        if worker is not None:
            self._fixed["worker"] = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
                            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self._fixed,
        }
        for field in CONTEXT_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["error"] = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            entry["traceback"] = "".join(traceback.format_exception(exc)).rstrip("\n")
        elif record.stack_info:
            entry["traceback"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


def formatter(log_format: str, application_id: str, instance: str,
              worker: int | None = None) -> logging.Formatter:
    """The formatter for ``--log-format`` (``text`` or ``json``)."""
    if log_format == "json":
        return JsonFormatter(application_id, instance, worker)
    if log_format == "text":
        label = instance if worker is None else f"{instance} worker {worker}"
        # '%' in a name would be read as a format directive
        return logging.Formatter(TEXT_FORMAT.format(
            instance=f"{application_id} {label}".replace("%", "%%")))
    raise ValueError(f"log format {log_format!r} is not one of: {', '.join(LOG_FORMATS)}")
