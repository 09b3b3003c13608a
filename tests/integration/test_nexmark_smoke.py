"""Nexmark q0-q2 on the real broker: generated events in, every output checked.

The generator writes the per-type and the union topics (4 partitions, keyed by auction), a
fluvial App runs one query, and the output read back from Kafka must equal the query's
plain-Python reference, record for record (issue 14's CI smoke; no timing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from bench.nexmark.check import check
from bench.nexmark.generator import BID, Generator, GeneratorConfig
from bench.nexmark.queries import QUERIES
from bench.nexmark.sink import produce, topic_names
from tests.integration.kafka_helpers import KafkaTestBroker

from fluvial import App

EVENTS = 5_000


@pytest.fixture(scope="module")
def events() -> list[tuple[int, dict]]:
    return list(Generator(GeneratorConfig(seed=11)).events(0, EVENTS))


@pytest.fixture
def topics(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
           events: list) -> Iterator[dict[str, str]]:
    prefix = unique_topic("nexmark")
    names = topic_names(prefix)
    for name in names.values():
        kafka.create_topic(name, partitions=4)
    written = produce(events, kafka.bootstrap_servers, prefix)
    assert written[names["union"]] == EVENTS and written[names["bid"]] == EVENTS * 46 // 50
    yield names


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("name", "union"), [("q0", False), ("q1", False), ("q2", False),
                                             ("q2", True)])
def test_query_on_the_broker_matches_the_reference(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path,
        topics: dict[str, str], events: list, name: str, union: bool) -> None:
    query = QUERIES[name]
    expected = query.reference(e for k, e in events if k == BID)
    assert len(expected) > 10  # q2 keeps about 1 bid in 200
    output = kafka.create_topic(unique_topic("out"), partitions=4)
    source = topics["union" if union else "bid"]
    with App(query.topology(source, output, union=union), unique_topic("app"),
             bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path) as app:
        records = kafka.consume_all(output, len(expected), timeout=120)
        assert app.error is None
    actual = [(r.key.decode() if r.key else None, orjson.loads(r.value or b"null"))
              for r in records]
    result = check(actual, expected)
    assert result.ok, result.summary()
