"""Exactly-once on the embedded broker: transactional producer, and an App that crashes mid-stream.

The crash is a user function raising in the middle of a poll batch: by then the batch's
earlier lines have gone to the repartition topic, but their input offsets are not committed.
At-least-once replays them (the counts come out too high; shown as a control); exactly-once
aborts the transaction that held them, so after a restart every count is exact.
"""

from __future__ import annotations

import re
import struct
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fluvial
from fluvial import serdes
from fluvial.io.client import (
    ProducerFencedError,
    TopicPartition,
    TopicSpec,
    TransactionAbortableError,
)
from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients, EmbeddedProducer
from fluvial.runtime.app import App
from fluvial.runtime.config import StreamsConfig

TP = TopicPartition
INPUT, OUTPUT = "lines", "counts"
POISON = "poison pill"
_WORD = re.compile(r"\W+")


# -- the transactional producer ---------------------------------------------------------------

def _clients(topics: dict[str, int]) -> EmbeddedClients:
    clients = EmbeddedClients(EmbeddedBroker())
    clients.admin().create_topics([TopicSpec(t, n) for t, n in topics.items()])
    return clients


def _values(clients: EmbeddedClients, topic: str) -> list[bytes | None]:
    return [m.value() for m in clients.broker.records(topic)]


def test_transaction_records_and_offsets_appear_together_on_commit() -> None:
    clients = _clients({"in": 1, "out": 2})
    clients.broker.append("in", None, b"x")
    consumer = clients.consumer("g", {})
    consumer.subscribe(["in"], lambda p: None, lambda p: None, lambda p: None)
    assert len(consumer.poll_batch(10, 1.0)) == 1
    producer = clients.producer({"transactional.id": "t1"})
    producer.init_transactions(5.0)
    producer.begin_transaction()
    producer.produce("out", b"k", b"1", 0)
    producer.produce("out", None, b"2", 0, partition=1)
    producer.send_offsets_to_transaction({TP("in", 0): 1}, consumer.group_metadata(), 5.0)
    assert _values(clients, "out") == []  # nothing visible before the commit
    assert consumer.committed([TP("in", 0)], 1.0) == {TP("in", 0): None}
    producer.commit_transaction(5.0)
    assert sorted(v for v in _values(clients, "out") if v) == [b"1", b"2"]
    assert consumer.committed([TP("in", 0)], 1.0) == {TP("in", 0): 1}


def test_abort_drops_records_and_offsets() -> None:
    clients = _clients({"in": 1, "out": 1})
    consumer = clients.consumer("g", {})
    consumer.subscribe(["in"], lambda p: None, lambda p: None, lambda p: None)
    consumer.poll_batch(10, 0.1)
    producer = clients.producer({"transactional.id": "t1"})
    producer.init_transactions(5.0)
    producer.begin_transaction()
    producer.produce("out", b"k", b"lost", 0)
    producer.send_offsets_to_transaction({TP("in", 0): 0}, consumer.group_metadata(), 5.0)
    producer.abort_transaction(5.0)
    producer.begin_transaction()
    producer.produce("out", b"k", b"kept", 0)
    producer.commit_transaction(5.0)
    assert _values(clients, "out") == [b"kept"]
    assert consumer.committed([TP("in", 0)], 1.0) == {TP("in", 0): None}


def test_new_producer_with_same_id_fences_the_old_one() -> None:
    clients = _clients({"out": 1})
    old = clients.producer({"transactional.id": "t1"})
    old.init_transactions(5.0)
    old.begin_transaction()
    old.produce("out", None, b"zombie", 0)
    new = clients.producer({"transactional.id": "t1"})
    new.init_transactions(5.0)
    with pytest.raises(ProducerFencedError):
        old.commit_transaction(5.0)
    new.begin_transaction()
    new.produce("out", None, b"live", 0)
    new.commit_transaction(5.0)
    assert _values(clients, "out") == [b"live"]
    with pytest.raises(ProducerFencedError):
        old.begin_transaction()


def test_evicted_member_cannot_commit_offsets_in_a_transaction() -> None:
    clients = _clients({"in": 1, "out": 1})
    consumer = clients.consumer("g", {"max.poll.interval.ms": 50})
    consumer.subscribe(["in"], lambda p: None, lambda p: None, lambda p: None)
    consumer.poll_batch(10, 0.1)
    other = clients.consumer("g", {})
    other.subscribe(["in"], lambda p: None, lambda p: None, lambda p: None)
    producer = clients.producer({"transactional.id": "t1"})
    producer.init_transactions(5.0)
    producer.begin_transaction()
    producer.produce("out", None, b"x", 0)
    producer.send_offsets_to_transaction({TP("in", 0): 0}, consumer.group_metadata(), 5.0)
    time.sleep(0.1)
    other.poll_batch(10, 0.5)  # the stalled member is evicted while the other one rejoins
    with pytest.raises(TransactionAbortableError):
        producer.commit_transaction(5.0)
    producer.abort_transaction(5.0)
    assert _values(clients, "out") == []


def test_produce_outside_a_transaction_fails_and_plain_producers_are_unchanged() -> None:
    clients = _clients({"out": 1})
    producer = clients.producer({"transactional.id": "t1"})
    producer.init_transactions(5.0)
    with pytest.raises(fluvial.FluvialError):
        producer.produce("out", None, b"x", 0)
    plain = clients.producer({})
    plain.produce("out", None, b"y", 0)
    assert _values(clients, "out") == [b"y"]


# -- an App under exactly-once ---------------------------------------------------------------

def _lines(n: int) -> list[str]:
    vocabulary = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    return [" ".join(vocabulary[(i * 7 + j * 3) % len(vocabulary)] for j in range(1 + i % 4))
            for i in range(n)]


def _expected(lines: list[str]) -> Counter[str]:
    return Counter(w for line in lines if line != POISON
                   for w in _WORD.split(line.lower()) if w)


def _wordcount(split: Callable[[str], list[str]]) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(INPUT, value_serde=serdes.String())
        .flat_map_values(split)
        .group_by(lambda _key, word: word)
        .count(materialized="counts")
        .to_stream()
        .to(OUTPUT, value_serde=serdes.Int64()))
    return builder.build()


def _crashing_split(armed: list[bool]) -> Callable[[str], list[str]]:
    def split(line: str) -> list[str]:
        if line == POISON and armed[0]:  # fails on every retry until disarmed
            raise RuntimeError("simulated crash")
        return [w for w in _WORD.split(line.lower()) if w and line != POISON]
    return split


def _outputs(broker: EmbeddedBroker) -> list[tuple[str, int]]:
    return [(m.key().decode(), struct.unpack(">q", m.value())[0])  # type: ignore[union-attr,arg-type]
            for m in broker.records(OUTPUT)]


def _latest(outputs: list[tuple[str, int]]) -> dict[str, int]:
    return dict(outputs)


def _wait(condition: Callable[[], Any], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what()}")
        time.sleep(0.02)


def _broker_with_input(lines: list[str]) -> EmbeddedBroker:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 3)
    broker.create_topic(OUTPUT, 3)
    for i, line in enumerate(lines):
        broker.append(INPUT, f"k{i}".encode(), line.encode())
    return broker


def _run_with_crash(tmp_path: Path, guarantee: str, phased: bool, **settings: Any) -> tuple[
        EmbeddedBroker, Counter[str], list[bool]]:
    """Run until the poison line crashes the app; returns the broker and the expected counts.

    ``phased``: the first 1500 lines are processed and committed before the rest (with the
    poison line among them) arrive.
    """
    lines = _lines(3000)
    lines.insert(2000, POISON)
    first = lines[:1500] if phased else lines
    broker = _broker_with_input(first)
    armed = [True]
    app = App(_wordcount(_crashing_split(armed)), "wc", broker=broker,
              processing_guarantee=guarantee, state_dir=tmp_path, **settings)
    app.start()
    try:
        if phased and guarantee == "exactly_once":  # committed every 100 ms
            want = dict(_expected(first))
            _wait(lambda: _latest(_outputs(broker)) == want, 20,
                  lambda: "the first lines' counts were not committed")
        elif phased:  # processed (words sent to the repartition topic), nothing committed
            words = sum(_expected(first).values())
            _wait(lambda: _repartitioned(broker) == words, 20,
                  lambda: f"{_repartitioned(broker)} of {words} words repartitioned")
        for i, line in enumerate(lines[len(first):], start=len(first)):
            broker.append(INPUT, f"k{i}".encode(), line.encode())
        _wait(lambda: not app.running, 20, lambda: "the app did not crash on the poison line")
    finally:
        app.close()
    assert "simulated crash" in str(app.error), app.error
    armed[0] = False
    return broker, _expected(lines), armed


def _repartitioned(broker: EmbeddedBroker) -> int:
    return sum(len(broker.records(t)) for t in broker.partition_counts() if "repartition" in t)


def _wait_drained(broker: EmbeddedBroker) -> None:
    """Until the group's committed offsets reach the end of every repartition partition."""
    tps = [TP(t, p) for t, n in broker.partition_counts().items() if "repartition" in t
           for p in range(n)]
    _wait(lambda: broker.committed("wc", tps) == {tp: broker.watermarks(tp)[1] for tp in tps},
          20, lambda: "the repartition topic was not drained")


def _wait_committed(broker: EmbeddedBroker) -> None:
    """Until the group's committed offsets reach the end of the input."""
    tps = [TP(INPUT, p) for p in range(3)]
    ends = {tp: broker.watermarks(tp)[1] for tp in tps}
    _wait(lambda: broker.committed("wc", tps) == ends, 20,
          lambda: f"committed {broker.committed('wc', tps)}, input ends {ends}")


def _restart_until_caught_up(broker: EmbeddedBroker, tmp_path: Path, guarantee: str,
                             armed: list[bool]) -> None:
    """Until every input line is committed and the counts stop changing (the repartition
    topic is drained too)."""
    app = App(_wordcount(_crashing_split(armed)), "wc", broker=broker,
              processing_guarantee=guarantee, state_dir=tmp_path)
    app.start()
    try:
        _wait_committed(broker)
        _wait_drained(broker)
    finally:
        app.close()
    assert app.error is None, app.error


def test_crash_mid_stream_then_restart_gives_exact_counts(tmp_path: Path) -> None:
    broker, expected, armed = _run_with_crash(tmp_path, "exactly_once", phased=True)
    before = _outputs(broker)
    assert before, "some transactions committed before the crash (commit interval 100 ms)"
    _restart_until_caught_up(broker, tmp_path, "exactly_once", armed)
    outputs = _outputs(broker)
    assert _latest(outputs) == dict(expected)
    per_word: dict[str, list[int]] = {}
    for word, count in outputs:
        per_word.setdefault(word, []).append(count)
    for word, counts in per_word.items():  # no aborted or replayed output is visible
        assert counts == sorted(set(counts)), f"{word}: {counts}"


def test_same_crash_under_at_least_once_overcounts(tmp_path: Path) -> None:
    """The control: without transactions the replayed lines are counted twice."""
    broker, expected, armed = _run_with_crash(tmp_path, "at_least_once", phased=True,
                                              commit_interval_ms=60_000)
    _restart_until_caught_up(broker, tmp_path, "at_least_once", armed)
    latest = _latest(_outputs(broker))
    assert set(latest) == set(expected)
    assert any(latest[w] > expected[w] for w in expected)


def test_failed_commit_aborts_rewinds_and_recovers(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that cannot commit is aborted; the thread rewinds and goes on."""
    lines = _lines(2000)
    broker = _broker_with_input(lines)
    real_commit = EmbeddedProducer.commit_transaction
    failures = [0]

    def flaky_commit(self: EmbeddedProducer, timeout: float) -> None:
        if failures[0] < 3 and self._records and self._offsets:
            failures[0] += 1
            raise TransactionAbortableError("simulated: generation went stale")
        real_commit(self, timeout)

    monkeypatch.setattr(EmbeddedProducer, "commit_transaction", flaky_commit)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              processing_guarantee="exactly_once", state_dir=tmp_path)
    app.start()
    try:
        _wait_committed(broker)
        _wait_drained(broker)
        thread = app.stream_thread
        assert thread is not None and thread.aborts == 3
    finally:
        app.close()
    assert app.error is None, app.error
    assert _latest(_outputs(broker)) == dict(_expected(lines))


def test_exactly_once_config() -> None:
    eos = StreamsConfig.create(application_id="a", processing_guarantee="exactly_once")
    assert eos.commit_interval_ms == 100
    explicit = StreamsConfig.create(application_id="a", processing_guarantee="exactly_once",
                                    commit_interval_ms=500)
    assert explicit.commit_interval_ms == 500
    assert StreamsConfig.create(application_id="a").commit_interval_ms == 1000
    with pytest.raises(fluvial.ConfigError):
        App(_wordcount(_crashing_split([False])), "a", broker=EmbeddedBroker(),
            producer_config={"transactional.id": "mine"}).start()


def test_config_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUVIAL_CONSUMER_CONFIG", '{"session.timeout.ms": 6000}')
    assert StreamsConfig.create(application_id="a").consumer_config == {
        "session.timeout.ms": 6000}
    monkeypatch.setenv("FLUVIAL_PRODUCER_CONFIG", "[1]")
    with pytest.raises(fluvial.ConfigError):
        StreamsConfig.create(application_id="a")
