"""Processors read global stores by name (as in Kafka Streams); process_values keeps keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from fluvial import Materialized, Record, RecordProcessor, StreamsBuilder, TestDriver
from fluvial.errors import TopologyError
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App


class Enrich(RecordProcessor):
    """Appends the rate the global store holds for the record's currency."""

    def init(self, context: Any) -> None:
        super().init(context)
        self.rates = context.get_store("rates")

    def process_record(self, record: Record) -> None:
        entry = self.rates.get(record.value)
        self.forward_record(record, value=f"{record.value}:{entry[0] if entry else None}")


def _build() -> StreamsBuilder:
    b = StreamsBuilder()
    b.global_table("rates-topic", value_serde="string",
                   materialized=Materialized("rates", persistent=False))
    b.stream("in", value_serde="string").process_values(Enrich).to("out",
                                                                   value_serde="string")
    return b


def test_a_processor_reads_a_global_store_without_connecting_it() -> None:
    with TestDriver(_build().build()) as d:
        d.input_topic("in").pipe("eur", key="k1")
        d.input_topic("rates-topic").pipe("1.1", key="eur")
        d.input_topic("in").pipe("eur", key="k2")
        assert d.output_topic("out").read_key_values() == [("k1", "eur:None"),
                                                           ("k2", "eur:1.1")]


def test_an_unknown_store_is_still_refused() -> None:
    class Reads(RecordProcessor):
        def init(self, context: Any) -> None:
            super().init(context)
            context.get_store("nope")

    b = StreamsBuilder()
    b.stream("in").process_values(Reads).to("out")
    with pytest.raises(TopologyError, match="not connected"):
        TestDriver(b.build())


def test_process_values_keeps_the_key_so_grouping_needs_no_repartition() -> None:
    b = StreamsBuilder()
    b.global_table("rates-topic", value_serde="string",
                   materialized=Materialized("rates", persistent=False))
    (b.stream("in", value_serde="string").process_values(Enrich).group_by_key()
     .count("n").to_stream().to("out", value_serde="int64"))
    topology = b.build()
    assert "repartition" not in topology.describe()


def test_app_processors_read_the_global_store(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    for topic in ("in", "out", "rates-topic"):
        broker.create_topic(topic, 1)
    broker.append("rates-topic", b"eur", b"1.1", 1)
    broker.append("in", b"k1", b"eur", 2)
    with App(_build().build(), "enrich", broker=broker, state_dir=tmp_path) as app:
        deadline = time.monotonic() + 20
        while not list(broker.records("out")):
            assert app.error is None
            assert time.monotonic() < deadline, "no output in time"
            time.sleep(0.01)
    assert [(m.key(), m.value()) for m in broker.records("out")] == [(b"k1", b"eur:1.1")]
