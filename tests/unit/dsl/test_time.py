"""Event time: timestamp extractors per source, invalid timestamps, stream time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fluvial import (
    ProcessingError,
    Record,
    StreamsBuilder,
    TestDriver,
    ValueFieldTimestamp,
    WallClockTimestamp,
)


def _copy(extractor: Any) -> Any:
    b = StreamsBuilder()
    b.stream("in", timestamp_extractor=extractor).map_values(lambda v: v).to("out")
    return b.build()


def test_value_field_extractor_sets_event_time_of_outputs() -> None:
    with TestDriver(_copy(ValueFieldTimestamp("at"))) as d:
        t = d.input_topic("in")
        t.pipe({"at": 1_000, "n": 1}, key="a", timestamp=5)
        t.pipe({"at": "1970-01-01T00:00:02.5Z", "n": 2}, key="a", timestamp=5)
        out = d.output_topic("out").read_records()
    assert [(r.value["n"], r.timestamp) for r in out] == [(1, 1_000), (2, 2_500)]


def test_extractor_failure_goes_to_the_error_policy() -> None:
    with TestDriver(_copy(ValueFieldTimestamp("at")), application_id="app") as d, \
            pytest.raises(ProcessingError) as info:
        d.input_topic("in").pipe({"n": 1}, key="a", timestamp=5)
    text = str(info.value)
    assert "extracting the timestamp" in text and "no field 'at'" in text and "offset 0" in text


def test_negative_extracted_timestamp_is_skipped_under_skip() -> None:
    with TestDriver(_copy(ValueFieldTimestamp("at")), on_error="skip") as d:
        d.input_topic("in").pipe({"at": -1, "n": 1}, key="a")
        d.input_topic("in").pipe({"at": 7, "n": 2}, key="a")
        out = d.output_topic("out").read_records()
    assert [(r.value["n"], r.timestamp) for r in out] == [(2, 7)]


def test_negative_record_timestamp_is_refused_with_the_default_extractor() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().count().to_stream().to("out", value_serde="int64")
    with TestDriver(b.build()) as d, \
            pytest.raises(ProcessingError, match=r"invalid \(negative\) timestamp -3"):
        d.input_topic("in").pipe(1, key="a", timestamp=-3)


def test_dead_letter_gets_the_record_with_a_bad_timestamp() -> None:
    with TestDriver(_copy(ValueFieldTimestamp("at")), on_error="dead_letter") as d:
        d.input_topic("in").pipe({"at": "yesterday"}, key="a", timestamp=1)
        dead = d.read("test-app-dead-letter")
    assert len(dead) == 1
    headers = dict(dead[0].headers() or [])
    assert headers["fluvial.stage"] == b"extracting the timestamp"
    assert b"not an ISO-8601 time" in (headers["fluvial.error"] or b"")


def test_function_extractor_sees_partition_time() -> None:
    seen: list[int] = []

    def from_value(record: Record, partition_time: int) -> int:
        seen.append(partition_time)
        return int(record.value)

    with TestDriver(_copy(from_value)) as d:
        t = d.input_topic("in")
        for v in (10, 30, 20):
            t.pipe(v, key="k", timestamp=0)
        out = d.output_topic("out").read_records()
    assert seen == [-1, 10, 30]  # the largest extracted so far, never going back
    assert [r.timestamp for r in out] == [10, 30, 20]


def test_wall_clock_extractor_stamps_processing_time() -> None:
    with TestDriver(_copy(WallClockTimestamp())) as d:
        before = time.time_ns() // 1_000_000
        d.input_topic("in").pipe(1, key="a", timestamp=5)
        after = time.time_ns() // 1_000_000
        (r,) = d.output_topic("out").read_records()
    assert before <= r.timestamp <= after

