"""A foreign-key table-table join on the real broker: orders (two partitions, written with
librdkafka's default partitioner, not Java's) joined to their customer (two partitions), so
subscriptions cross tasks through the subscription-registration topic and answers must come
back, through the subscription-response topic, to the partition each order lives in, not to
the one Java's partitioner would pick for its key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until

import fluvial
from fluvial.runtime.app import App

NAMES = {"c0": "Ann", "c1": "Bob", "c2": "Cy", "c3": "Di"}
ORDERS = {f"o{i}": (f"c{i % 4}", f"item{i}") for i in range(8)}
#: customers are written as a Java producer writes them: subscriptions reach the customer's
#: partition by Java's partitioner (murmur2), as in Kafka Streams; orders are not
JAVA = {"partitioner": "murmur2_random"}


def _topology(orders: str, customers: str, sink: str, left: bool) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    table = builder.table(orders)
    join = table.left_join if left else table.join
    join(builder.table(customers),
         lambda order, customer: f"{order['item']}/{None if customer is None else customer}",
         foreign_key=lambda order: order["customer"]).to_stream().to(sink)
    return builder.build()


@pytest.mark.parametrize("left", [False, True], ids=["join", "left_join"])
def test_orders_follow_a_foreign_key_change_and_their_customers_updates(
        left: bool, kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
        tmp_path: Path) -> None:
    orders, customers, sink = unique_topic("orders"), unique_topic("customers"), unique_topic("out")
    for topic in (orders, customers, sink):
        kafka.create_topic(topic, partitions=2)
    consumer = kafka.consumer({"isolation.level": "read_committed"})
    consumer.subscribe([sink])
    history: dict[str, list[Any]] = {}

    def latest() -> dict[str, Any]:
        for m in consumer.consume(num_messages=500, timeout=0.2):
            if m.error() is None:
                value = None if m.value() is None else orjson.loads(m.value())
                history.setdefault(m.key().decode(), []).append(value)
        return {k: v[-1] for k, v in history.items()}

    def reaches(expected: dict[str, Any]) -> None:
        wait_until(lambda: all(latest().get(k, "absent") == v for k, v in expected.items()),
                   timeout=90, interval=0.01,
                   message=lambda: f"outputs {latest()} never reached {expected}")

    exactly_once = {"processing_guarantee": "exactly_once", "commit_interval_ms": 100}
    with App(_topology(orders, customers, sink, left), unique_topic("app"),
             bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path,
             **exactly_once) as app:
        kafka.produce(orders, [(o, orjson.dumps({"customer": c, "item": i}))
                               for o, (c, i) in ORDERS.items()])
        if left:  # no customer yet: every order joined with None
            reaches({o: f"{i}/None" for o, (_, i) in ORDERS.items()})
        kafka.produce(customers, [(c, orjson.dumps(n)) for c, n in NAMES.items()], config=JAVA)
        reaches({o: f"{i}/{NAMES[c]}" for o, (c, i) in ORDERS.items()})

        # the foreign key moves: o0 leaves c0 (Ann) for c1 (Bob)
        kafka.produce(orders, [("o0", orjson.dumps({"customer": "c1", "item": "item0"}))])
        reaches({"o0": "item0/Bob"})
        # a right-side update answers every order now on c1, o0 among them
        kafka.produce(customers, [("c1", orjson.dumps("Bob2"))], config=JAVA)
        reaches({"o0": "item0/Bob2", "o1": "item1/Bob2", "o5": "item5/Bob2"})
        # c0's rename reaches its orders but not o0, which unsubscribed
        kafka.produce(customers, [("c0", orjson.dumps("Ann2"))], config=JAVA)
        reaches({"o4": "item4/Ann2"})
        # a right-side tombstone: after c0's answers in o0's response partition (any
        # answer for o0 was written before o4's result was visible), so o0's history is whole
        kafka.produce(customers, [("c1", None)], config=JAVA)
        gone = "item0/None" if left else None
        reaches({"o0": gone, "o1": "item1/None" if left else None})
        assert app.error is None
    consumer.close()

    first = ["item0/None"] if left else []
    assert history["o0"] == [*first, "item0/Ann", "item0/Bob", "item0/Bob2", gone]
    assert history["o4"] == [*(["item4/None"] if left else []), "item4/Ann", "item4/Ann2"]
