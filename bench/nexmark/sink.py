"""Where generated events go: Kafka topics (one per type, and/or one union topic) or a file.

Keys: a person's id, an auction's id, a bid's auction id, as decimal strings (so a bid lands
with its auction when both are partitioned by key). Values: the event as a JSON object; on
the union topic, Flink nexmark's layout ``{"event_type": 0|1|2, "person": ..., "auction":
..., "bid": ...}`` with the two absent types null.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.nexmark.generator import AUCTION, KIND_NAMES, PERSON

Event = tuple[int, dict[str, Any]]


def event_key(kind: int, event: dict[str, Any]) -> bytes:
    return str(event["id"] if kind in (PERSON, AUCTION) else event["auction"]).encode()


def union_value(kind: int, event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {"event_type": kind, "person": None, "auction": None, "bid": None}
    value[KIND_NAMES[kind]] = event
    return value


def topic_names(prefix: str) -> dict[str, str]:
    """``{"person": ..., "auction": ..., "bid": ..., "union": ...}`` under ``prefix``."""
    return {name: f"{prefix}-{name}" for name in (*KIND_NAMES, "union")}


def write_jsonl(events: Iterable[Event], path: Path) -> int:
    """One union-layout JSON object per line; returns the number of events written."""
    count = 0
    with path.open("wb") as out:
        for kind, event in events:
            out.write(orjson.dumps(union_value(kind, event)) + b"\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[Event]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                value = orjson.loads(line)
                kind = value["event_type"]
                yield kind, value[KIND_NAMES[kind]]
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as e:
                raise ValueError(f"{path}:{number}: not a Nexmark union event: {e}") from e


def produce(events: Iterable[Event], bootstrap_servers: str, prefix: str,
            per_type: bool = True, union: bool = True) -> dict[str, int]:
    """Write ``events`` to Kafka and flush; returns the records written per topic.

    Raises ``RuntimeError`` naming the topic and the error if any delivery failed.
    """
    from confluent_kafka import Producer  # only this path needs a broker client

    topics = topic_names(prefix)
    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 20,
                         "batch.size": 1_000_000, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None and len(failures) < 5:
            failures.append(f"{msg.topic()}: {err}")

    counts = dict.fromkeys(topics.values(), 0)
    dumps = orjson.dumps
    for kind, event in events:
        key = event_key(kind, event)
        records = []
        if per_type:
            records.append((topics[KIND_NAMES[kind]], dumps(event)))
        if union:
            records.append((topics["union"], dumps(union_value(kind, event))))
        for topic, value in records:
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)  # the local queue is full: let deliveries drain it
            counts[topic] += 1
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"nexmark: {remaining} events undelivered after 60 s; "
                           f"failures: {failures}")
    return {t: n for t, n in counts.items() if n}
