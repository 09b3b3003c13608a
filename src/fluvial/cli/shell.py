"""``fluvial produce`` / ``fluvial consume``: text lines in and out of the embedded broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fluvial.errors import ConfigError
from fluvial.io.client import TopicPartition
from fluvial.io.embedded.shared import SharedBroker, connect
from fluvial.io.serdes import resolve

_BATCH = 1000
_POLL_S = 0.5  # one wait for new records: the longest Ctrl-C waits in --follow

# text on the command line -> the value the serde writes
_PARSE: dict[str, Callable[[str], Any]] = {
    "string": str, "json": json.loads, "int64": int, "float64": float, "bytes": str.encode,
}


def _parse(serde: str, text: str, what: str, line_no: int) -> bytes | None:
    try:
        return resolve(serde).serialize(_PARSE[serde](text))
    except ValueError as exc:
        raise ConfigError(f"line {line_no}: {what} {text!r} is not {serde}: {exc}") from None


def _show(serde: str, data: bytes | None) -> str:
    value = resolve(serde).deserialize(data)
    if serde == "json":
        return json.dumps(value)
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return "null" if value is None else str(value)


def produce_lines(data_dir: str, topic: str, lines: Iterable[str], key_separator: str | None,
                  key_serde: str, value_serde: str, partitions: int) -> int:
    """Append one record per line (``KEY<SEP>VALUE`` with ``key_separator``); the count."""
    broker, owned = connect(data_dir)
    try:
        if topic not in broker.partition_counts():
            broker.create_topic(topic, partitions)
        count = 0
        for count, line in enumerate(lines, 1):
            key = None
            text = line
            if key_separator is not None:
                if key_separator not in line:
                    raise ConfigError(f"line {count}: no key separator {key_separator!r} in "
                                      f"{line!r}")
                key_text, text = line.split(key_separator, 1)
                key = _parse(key_serde, key_text, "key", count)
            broker.append(topic, key, _parse(value_serde, text, "value", count))
        return count
    finally:
        if owned is not None:
            owned.close()


def consume_records(data_dir: str, topic: str, key_serde: str, value_serde: str,
                    follow: bool, max_records: int | None,
                    timeout: float) -> Iterator[tuple[str, str]]:
    """(key, value) as text from the start of every partition of ``topic``: what is there now,
    or up to ``max_records`` within ``timeout`` seconds, or everything until interrupted."""
    broker, owned = connect(data_dir)
    try:
        yield from _read(broker, topic, key_serde, value_serde, follow, max_records, timeout)
    finally:
        if owned is not None:
            owned.close()


def _read(broker: SharedBroker, topic: str, key_serde: str, value_serde: str, follow: bool,
          max_records: int | None, timeout: float) -> Iterator[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    positions: dict[TopicPartition, int] = {}
    seen = 0
    while True:
        count = broker.partition_counts().get(topic)
        if count is None:
            if follow or (max_records is not None and time.monotonic() < deadline):
                time.sleep(_POLL_S)  # waiting for an app to create it: nothing to wake us
                continue
            raise ConfigError(f"topic {topic!r} does not exist on the embedded broker")
        for p in range(count):
            positions.setdefault(TopicPartition(topic, p), 0)
        waiting = follow or (max_records is not None and seen < max_records)
        got = 0
        for tp, offset in positions.items():
            wait = _POLL_S / len(positions) if waiting else 0.0
            for msg in broker.read(tp, offset, _BATCH, wait):
                positions[tp] = msg.offset() + 1
                got += 1
                seen += 1
                yield _show(key_serde, msg.key()), _show(value_serde, msg.value())
                if max_records is not None and seen >= max_records:
                    return
        if follow:
            continue
        if got == 0 and (max_records is None or time.monotonic() >= deadline):
            return
