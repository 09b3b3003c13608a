"""Stores on a real broker: reading topics written with transactions to their end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.kafka_helpers import KafkaTestBroker

from fluvial import Materialized, StreamsBuilder
from fluvial.runtime.app import App


def test_a_global_table_loads_a_transactional_topic_to_its_end(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """Commit markers take offsets a read_committed reader never sees, the last one at the
    very end; aborted records are skipped. Loading must end, with committed records only."""
    rates, source, sink = unique_topic("rates"), unique_topic("in"), unique_topic("out")
    kafka.create_topic(rates, partitions=2)
    kafka.create_topic(source, partitions=1)
    kafka.create_topic(sink, partitions=1)
    producer = kafka.producer({"transactional.id": f"{rates}-writer"})
    producer.init_transactions(30)
    for batch, commit in (([("eur", "1.1"), ("usd", "0.9")], True),
                          ([("eur", "99"), ("chf", "99")], False),
                          ([("usd", "1.0"), ("gbp", "0.8")], True)):
        producer.begin_transaction()
        for key, value in batch:
            producer.produce(rates, value.encode(), key.encode())
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)
            producer.abort_transaction(30)
    b = StreamsBuilder()
    b.global_table(rates, key_serde="string", value_serde="string",
                   materialized=Materialized("rates-store", persistent=False))
    b.stream(source).to(sink)
    with App(b.build(), unique_topic("app"), bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path) as app:  # start() returns once the table is loaded
        assert app.store("rates-store").to_dict() == {"eur": "1.1", "usd": "1.0", "gbp": "0.8"}
    assert app.error is None
