"""A SQL script on the real broker: a CSAS and a CTAS running as persistent queries."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from tests.integration.kafka_helpers import KafkaTestBroker

from fluvial.sql.runner import prepare


def _latest_values(kafka: KafkaTestBroker, topic: str, wanted: dict[str, dict],
                   timeout: float = 90.0) -> dict[str, dict]:
    """The latest JSON value per key of ``topic``, read until it equals ``wanted`` or the
    deadline passes (then whatever was read, for the assertion to show)."""
    consumer = kafka.consumer({"isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                     for p in sorted(kafka.topic_partitions(topic))])
    latest: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while latest != wanted and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=500, timeout=0.2):
                if m.error() is None and m.key() is not None and m.value() is not None:
                    latest[m.key().decode()] = orjson.loads(m.value())
    finally:
        consumer.close()
    return latest


def test_csas_and_ctas_run_on_kafka(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
                                    tmp_path: Path) -> None:
    orders, big, totals = unique_topic("orders"), unique_topic("big"), unique_topic("totals")
    script = f"""
        CREATE STREAM ORDERS (ID STRING KEY, PRODUCT STRING, UNITS INT)
          WITH (KAFKA_TOPIC='{orders}', VALUE_FORMAT='JSON', PARTITIONS=2);
        CREATE STREAM BIG_ORDERS WITH (KAFKA_TOPIC='{big}') AS
          SELECT ID, UCASE(PRODUCT) AS PRODUCT, UNITS FROM ORDERS WHERE UNITS >= 10;
        CREATE TABLE UNITS_BY_PRODUCT WITH (KAFKA_TOPIC='{totals}') AS
          SELECT PRODUCT, SUM(UNITS) AS TOTAL, COUNT(*) AS N FROM ORDERS GROUP BY PRODUCT;
        INSERT INTO ORDERS (ID, PRODUCT, UNITS) VALUES ('o0', 'apple', 10);
    """
    app, _results = prepare(script, application_id=unique_topic("sql-app"),
                            bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path)
    assert sorted(kafka.topic_partitions(orders)) == [0, 1]
    kafka.produce(orders, [(f"o{i}".encode(), orjson.dumps({"PRODUCT": p, "UNITS": u}))
                           for i, (p, u) in enumerate([("pear", 3), ("apple", 12),
                                                       ("pear", 20)], 1)])
    expected_totals = {"apple": {"TOTAL": 22, "N": 2}, "pear": {"TOTAL": 23, "N": 2}}
    expected_big = {"o0": {"PRODUCT": "APPLE", "UNITS": 10},
                    "o2": {"PRODUCT": "APPLE", "UNITS": 12},
                    "o3": {"PRODUCT": "PEAR", "UNITS": 20}}
    with app:
        assert _latest_values(kafka, totals, expected_totals) == expected_totals
        assert _latest_values(kafka, big, expected_big) == expected_big
        assert app.error is None
