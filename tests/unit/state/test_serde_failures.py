"""A state value its serde cannot write fails at the operator, through the error policy,
with its location: in the TestDriver (which runs the same store stack) and in an App."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fluvial import Materialized, ProcessingError, StreamsBuilder, TestDriver
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App


def _collect(_key: Any, value: str, agg: Any) -> Any:
    if value == "bad":
        return {value}  # a set: JSON cannot write it
    return [*agg, value]


def _topology() -> Any:
    b = StreamsBuilder()
    (b.stream("in", key_serde="string", value_serde="string").group_by_key()
     .aggregate(list, _collect, Materialized("agg", value_serde="json"))
     .to_stream().to("out", value_serde="json"))
    return b.build()


def test_the_test_driver_stops_at_the_record_whose_state_cannot_be_written() -> None:
    with TestDriver(_topology(), application_id="app") as d:
        topic = d.input_topic("in")
        topic.pipe("x", key="k")
        with pytest.raises(ProcessingError) as info:
            topic.pipe("bad", key="k")
        assert d.store("agg").get("k") == ["x"]
    text = str(info.value)
    for part in ("task 0_0", "topic 'in'", "partition 0", "offset 1", "aggregate",
                 "SerdeError", "json serde cannot write"):
        assert part in text, part


def test_the_test_driver_skips_such_a_record_under_skip() -> None:
    with TestDriver(_topology(), on_error="skip") as d:
        topic = d.input_topic("in")
        for value in ("x", "bad", "y"):
            topic.pipe(value, key="k")
        assert d.store("agg").get("k") == ["x", "y"]
        assert d.output_topic("out").read_values() == [["x"], ["x", "y"]]


def _wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_an_app_dead_letters_the_record_and_keeps_the_rest_of_its_batch(
        tmp_path: Path) -> None:
    """With the record cache a batch updates each key once: the failing key's batch goes
    record by record, so exactly the bad record is dead-lettered, with its offset."""
    broker = EmbeddedBroker()
    broker.create_topic("in", 1)
    broker.create_topic("out", 1)
    for value in ("a", "b", "bad", "c"):
        broker.append("in", b"k", value.encode(), 1)
    broker.append("in", b"other", b"z", 1)
    app = App(_topology(), "app", broker=broker, state_dir=tmp_path, on_error="dead_letter")
    with app:
        _wait_for(lambda: app.store("agg").get("other") == ["z"])
        assert app.store("agg").get("k") == ["a", "b", "c"]
    assert app.error is None
    (dead,) = broker.records("app-dead-letter")
    headers = dict(dead.headers() or [])
    assert dead.value() == b"bad"
    assert headers["fluvial.offset"] == b"2" and headers["fluvial.topic"] == b"in"
    assert b"json serde cannot write" in (headers["fluvial.error"] or b"")
