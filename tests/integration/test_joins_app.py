"""A stream-table join on the real broker: orders rekeyed by customer go through a
repartition topic sized like the customers' topic, and are enriched from the table."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from tests.integration.kafka_helpers import KafkaTestBroker

import fluvial
from fluvial.runtime.app import App

CUSTOMERS = {f"c{i}": ("gold" if i % 3 == 0 else "tin") for i in range(8)}


def _topology(orders: str, customers: str, sink: str) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    table = builder.table(customers)
    (builder.stream(orders)
        .select_key(lambda order_id, order: order["customer"])
        .join(table, lambda order, customer: {"order": order["id"], "tier": customer["tier"]},
              fluvial.Joined(name="orders-by-customer"))
        .to(sink))
    return builder.build()


def test_orders_rekeyed_and_enriched_from_a_co_partitioned_table(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    orders, customers, sink = unique_topic("orders"), unique_topic("customers"), unique_topic("out")
    app_id = unique_topic("app")
    for topic in (orders, customers, sink):
        kafka.create_topic(topic, partitions=2)
    # written as a Java producer writes them (librdkafka's default partitioner hashes keys
    # differently): co-partitioning needs the table's keys where the repartition puts them
    kafka.produce(customers, [(c, orjson.dumps({"tier": t})) for c, t in CUSTOMERS.items()],
                  config={"partitioner": "murmur2_random"})
    consumer = kafka.consumer({"isolation.level": "read_committed"})
    consumer.subscribe([sink])
    seen: dict[str, Any] = {}
    with App(_topology(orders, customers, sink), app_id,
             bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path) as app:
        # an inner join emits nothing for an order processed before its customer arrived,
        # so orders go in rounds until every customer has enriched one
        deadline, round_no = time.monotonic() + 120, 0
        while set(seen) != set(CUSTOMERS) and time.monotonic() < deadline:
            kafka.produce(orders, [(f"o{round_no}-{c}", orjson.dumps(
                {"id": f"o{round_no}-{c}", "customer": c})) for c in CUSTOMERS])
            round_no += 1
            for m in consumer.consume(num_messages=500, timeout=1.0):
                if m.error() is None:
                    seen.setdefault(m.key().decode(), []).append(
                        (m.partition(), orjson.loads(m.value())))
        assert app.error is None
    consumer.close()
    assert set(seen) == set(CUSTOMERS), f"customers never joined: {set(CUSTOMERS) - set(seen)}"
    for customer, outputs in seen.items():
        assert {o["tier"] for _, o in outputs} == {CUSTOMERS[customer]}
        assert all(o["order"].endswith(f"-{customer}") for _, o in outputs)
        assert len({p for p, _ in outputs}) == 1  # one key, one partition
    repartition = kafka.topic_partitions(f"{app_id}-orders-by-customer-repartition")
    assert len(repartition) == 2
