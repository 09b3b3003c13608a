"""The confluent adapter gives up on a transactional call librdkafka never answers.

Seen in the chaos run after a broker failover: ``send_offsets_to_transaction`` waited on
librdkafka's internal reply for minutes, whatever timeout it was given, and the instance
stopped processing. No broker is needed to show the adapter's side: a call that outlives
its timeout (plus grace) becomes ``ProducerFencedError`` (replace the producer), and the
abandoned producer's ``close`` returns at once."""

from __future__ import annotations

import threading
import time

import pytest

from fluvial.io import kafka
from fluvial.io.client import ProducerFencedError
from fluvial.io.kafka import KafkaProducer


def test_a_call_that_never_answers_abandons_the_producer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "TXN_GRACE_S", 0.2)
    producer = KafkaProducer({"bootstrap.servers": "127.0.0.1:1"})  # never connects
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(ProducerFencedError, match="did not answer"):
        producer._txn("send_offsets_to_transaction", lambda _left: release.wait(30), 0.3)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    producer.close()  # would flush for 30 s; an abandoned producer is left alone
    assert time.monotonic() - started < 1
    release.set()


def test_an_answered_call_passes_its_error_through() -> None:
    producer = KafkaProducer({"bootstrap.servers": "127.0.0.1:1"})

    def fails(_left: float) -> None:
        raise ValueError("from the call")

    with pytest.raises(ValueError, match="from the call"):
        producer._txn("commit_transaction", fails, 1.0)
    producer.close()
