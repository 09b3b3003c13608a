"""(4) Windowed count: hopping windows of 5 minutes every minute, on 10,000 keys.

Input: key = one of 10,000 keys (``key-00042``), spread over partitions by key; value = JSON
``{"ts": event time, "amount": ...}``. Event time comes from the value (a timestamp
extractor), 10 ms apart from one input to the next, so a run covers many windows whatever
the produce rate, and the expected result is known before anything runs. Each record counts
in the five windows containing it. Output: key = Kafka Streams' time-windowed key (the key's
bytes + the window start, 8 bytes), value = the window's running count as a Kafka Long.

The run is complete when every (key, window) has reached its expected count; the latency of
an output ``(key@start, n)`` is measured against the n-th input of that window. Only fluvial
(its DSL and its SQL) runs it so far (issue 11 adds the peers).
"""

from __future__ import annotations

import random
import struct
from typing import Any

import orjson

from bench.workloads import Input, Tracker, Workload, register
from bench.workloads.wordcount import WordCountTracker

KEYS = 10_000
SIZE_MS = 5 * 60_000
ADVANCE_MS = 60_000
EVENT_STEP_MS = 10
EVENT_T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
_START = struct.Struct(">q")

# The same work in ksqlDB's SQL: TIMESTAMP='TS' is the timestamp extractor; the table's
# KAFKA key and value formats are Kafka Streams' windowed key and a Long, as the DSL writes.
SQL = f"""
CREATE STREAM EVENTS (K STRING KEY, TS BIGINT)
  WITH (KAFKA_TOPIC='{{input}}', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', TIMESTAMP='TS',
        PARTITIONS={{partitions}});
CREATE TABLE WINDOW_COUNTS WITH (KAFKA_TOPIC='{{output}}', VALUE_FORMAT='KAFKA') AS
  SELECT K, COUNT(*) AS N FROM EVENTS
  WINDOW HOPPING (SIZE {SIZE_MS // 60_000} MINUTES, ADVANCE BY {ADVANCE_MS // 60_000} MINUTE,
                  GRACE PERIOD 1 MINUTE)
  GROUP BY K;
"""


def window_starts(ts: int) -> range:
    """Starts of the hopping windows holding ``ts`` (as ``TimeWindows.starts_for``)."""
    first = (max(0, ts - SIZE_MS + ADVANCE_MS) // ADVANCE_MS) * ADVANCE_MS
    return range(first, ts + 1, ADVANCE_MS)


class WindowedCountTracker(WordCountTracker):
    """WordCount's bookkeeping, with a key's window as the unit counted."""

    def unit(self, key: bytes | None) -> str:
        raw = key or b""
        if len(raw) < 8:
            return f"<bad key {raw!r}>"
        return f"{raw[:-8].decode()}@{_START.unpack_from(raw, len(raw) - 8)[0]}"


@register
class WindowedCount(Workload):
    name = "windowed"
    title = "(4) windowed count: hopping 5 min / 1 min, 10k keys"
    systems = frozenset({"fluvial", "fluvial-sql"})
    default_records = 200_000

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        out = []
        for i in range(start, start + count):
            k = rng.randrange(KEYS)
            key = f"key-{k:05d}"
            ts = EVENT_T0 + i * EVENT_STEP_MS
            value = orjson.dumps({"ts": ts, "amount": rng.randrange(1, 500)})
            out.append(Input(i, key.encode(), value, k % partitions,
                             [f"{key}@{s}" for s in window_starts(ts)]))
        return out

    def tracker(self) -> Tracker:
        return WindowedCountTracker()

    def fluvial_topology(self) -> Any:
        import os
        from datetime import timedelta

        import fluvial

        builder = fluvial.StreamsBuilder()
        (builder.stream(os.environ["BENCH_INPUT"],
                        timestamp_extractor=fluvial.ValueFieldTimestamp("ts"))
            .group_by_key()
            .windowed_by(fluvial.TimeWindows.of_size_and_grace(timedelta(milliseconds=SIZE_MS),
                                                               timedelta(minutes=1))
                         .advance_by(timedelta(milliseconds=ADVANCE_MS)))
            .count(materialized="window-counts")
            .to_stream()
            .to(os.environ["BENCH_OUTPUT"]))
        return builder.build()

    def sql_script(self, input_topic: str, output_topic: str, partitions: int,
                   app_id: str) -> str:
        return SQL.format(input=input_topic, output=output_topic, partitions=partitions)


def fluvial_topology() -> Any:
    """For ``fluvial run bench.workloads.windowed:fluvial_topology``."""
    return WindowedCount().fluvial_topology()
