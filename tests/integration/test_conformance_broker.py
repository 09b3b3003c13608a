"""Conformance cases end to end: two fluvial instances on the real broker, compared with
Kafka Streams' TopologyTestDriver on the same input (the short form of issue 11's check).

Topics have two partitions, so records of different keys interleave differently than in one
partition: where a key's output depends only on that key's input (keyed aggregates, table
operators), its whole sequence of updates must be Kafka Streams'; where a group gathers
several input keys (a table regrouped), its last update must be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conformance import oracle, topology
from tests.conformance.cases import CASES_BY_NAME, spec
from tests.conformance.records import Output, Outputs
from tests.integration.kafka_helpers import KafkaTestBroker

from fluvial.runtime.app import App

#: case -> whether each key's whole update sequence is deterministic across partitions
CASES = {"stream_count": True, "table_filter": True, "stream_count_having": True,
         "table_group_by_reduce": False}
SEED, RECORDS = 1, 120


@pytest.fixture(scope="module")
def java_outputs() -> dict[str, Outputs | str]:
    try:
        oracle.check()
    except oracle.OracleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return oracle.run([spec(CASES_BY_NAME[name], SEED, RECORDS) for name in CASES])


def _renamed(case_spec: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The spec with its topics renamed (unique on the shared broker)."""
    text = json.dumps(case_spec)
    for old, new in names.items():
        text = text.replace(json.dumps(old), json.dumps(new))
    return json.loads(text)


def _by_key(records: list[Output], whole: bool) -> dict[str | None, Any]:
    """Each key's updates in order, or its last one; records without a key (partitioned at
    random) are left out."""
    keyed: dict[str | None, list[tuple[str | None, int]]] = {}
    for r in records:
        if r.key is not None:
            keyed.setdefault(r.key, []).append((r.value, r.ts))
    return keyed if whole else {k: v[-1] for k, v in keyed.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_two_instances_on_the_broker_emit_what_kafka_streams_does(
        name: str, kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path,
        java_outputs: dict[str, Outputs | str]) -> None:
    case = CASES_BY_NAME[name]
    original = spec(case, SEED, RECORDS)
    java = java_outputs[original["id"]]
    assert not isinstance(java, str), java
    topics = sorted({r["topic"] for r in original["inputs"]} | set(case.outputs))
    names = {t: unique_topic(t) for t in topics}
    ours = _renamed(original, names)
    for topic in names.values():
        kafka.create_topic(topic, partitions=2)
    producer = kafka.producer()
    for r in ours["inputs"]:
        producer.produce(r["topic"], key=topology.to_bytes(r["key"]),
                         value=topology.to_bytes(r["value"]), timestamp=r["ts"])
    assert producer.flush(30) == 0

    settings = {"bootstrap_servers": kafka.bootstrap_servers, "record_cache": False,
                "commit_interval_ms": 200}
    built = topology.build(ours["topology"])
    app_id = unique_topic("app")
    with App(built, app_id, state_dir=tmp_path / "a", **settings) as first, \
            App(built, app_id, state_dir=tmp_path / "b", **settings) as second:
        got = {topic: kafka.consume_all(names[topic], len(java[topic]), timeout=120)
               for topic in case.outputs}
        assert first.error is None and second.error is None
    for topic in case.outputs:
        records = [Output(topology.to_hex(m.key), topology.to_hex(m.value), m.timestamp)
                   for m in got[topic]]
        assert len(records) == len(java[topic])
        assert _by_key(records, CASES[name]) == _by_key(java[topic], CASES[name]), topic
