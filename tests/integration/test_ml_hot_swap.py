"""Models as data on a real broker: a model published mid-stream to a compacted topic swaps
in with no restart, and every flight is scored exactly once (with one of the two versions,
the newer once it is live)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from examples.airline.flights import parse_line, read_lines
from examples.airline.train import train
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until

from fluvial import StreamsBuilder
from fluvial.ml import ModelTopic, Prediction, publish_model, score
from fluvial.ml import compiled as ml_compiled
from fluvial.ml.model import dump_envelope
from fluvial.runtime.app import App

NAME = "airline-delay"


def output(line: str, p: Prediction) -> dict[str, Any]:
    return {"prediction": p.label, "probability": p.probability, "model_version": p.version}


def test_hot_swap_mid_stream_on_kafka(kafka: KafkaTestBroker,
                                      unique_topic: Callable[[str], str],
                                      tmp_path: Path) -> None:
    lines = read_lines()
    v1 = train(lines[:3000], trees=10, seed=1, threads=1).model
    v2 = train(lines[:3000], trees=20, seed=2, threads=1).model
    source, sink, models = unique_topic("in"), unique_topic("out"), unique_topic("models")
    kafka.create_topic(source, partitions=3)
    kafka.create_topic(sink, partitions=3)
    publish_model(kafka.bootstrap_servers, models, v1.to_bytes())  # creates the topic

    b = StreamsBuilder()
    topic = ModelTopic(b, models)
    score(b.stream(source, value_serde="string"), topic.model(NAME), featurize=parse_line,
          output=output).to(sink)
    first, second = lines[:500], lines[500:1000]
    kafka.produce(source, [(str(i), line) for i, line in enumerate(first)])
    with App(b.build(), unique_topic("app"), bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path) as app:
        kafka.consume_all(sink, len(first), timeout=60)
        publish_model(kafka.bootstrap_servers, models, v2.to_bytes())
        assert app.global_stores is not None
        store = app.global_stores.stores[topic.store]
        wait_until(lambda: store.get(NAME)[0] == v2.to_bytes() or app.error, timeout=60)
        kafka.produce(source, [(str(i), line) for i, line in enumerate(second, len(first))])
        out = kafka.consume_all(sink, len(first) + len(second), timeout=60)
        assert app.error is None
    assert len(out) == len(first) + len(second)
    by_key = {m.key.decode(): json.loads(m.value) for m in out if m.key is not None}
    assert len(by_key) == len(out)  # none twice
    for i in range(len(first) + len(second)):
        expected = v1 if i < len(first) else v2
        assert by_key[str(i)]["model_version"] == expected.version
    header = dict(out[-1].headers)
    assert header["fluvial.model.version"] in (v1.version.encode(), v2.version.encode())


def test_hot_swap_to_a_compiled_model_on_kafka(kafka: KafkaTestBroker,
                                               unique_topic: Callable[[str], str],
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A LightGBM model scores while the next version, a compiled one, compiles in the
    background; then the compiled one takes over, every flight scored once."""
    monkeypatch.setenv(ml_compiled.CACHE_ENV, str(tmp_path / "compiled"))  # nothing compiled
    lines = read_lines()
    v1 = train(lines[:3000], trees=10, seed=1, threads=1).model
    lgbm_v2 = train(lines[:3000], trees=20, seed=2, threads=1).model
    v2_info = replace(lgbm_v2.info, type=ml_compiled.TYPE, version=f"{lgbm_v2.version}-c")
    v2 = dump_envelope(v2_info, lgbm_v2.booster.model_to_string())
    source, sink, models = unique_topic("in"), unique_topic("out"), unique_topic("models")
    kafka.create_topic(source, partitions=3)
    kafka.create_topic(sink, partitions=3)
    publish_model(kafka.bootstrap_servers, models, v1.to_bytes())

    b = StreamsBuilder()
    topic = ModelTopic(b, models)
    score(b.stream(source, value_serde="string"), topic.model(NAME), featurize=parse_line,
          output=output).to(sink)
    sent = lines[:200]
    kafka.produce(source, [(str(i), line) for i, line in enumerate(sent)])
    with App(b.build(), unique_topic("app"), bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path / "state") as app:
        out = kafka.consume_all(sink, len(sent), timeout=60)  # v1 is live
        publish_model(kafka.bootstrap_servers, models, v2)
        deadline = time.monotonic() + 180
        while not out or json.loads(out[-1].value)["model_version"] != v2_info.version:
            assert time.monotonic() < deadline, "the compiled version never scored"
            batch = lines[len(sent):len(sent) + 200]
            kafka.produce(source, [(str(i), line) for i, line in enumerate(batch, len(sent))])
            sent += batch
            out = kafka.consume_all(sink, len(sent), timeout=60)
            assert app.error is None
    versions = [json.loads(m.value)["model_version"] for m in out]
    assert {m.key for m in out} == {str(i).encode() for i in range(len(sent))}  # each once
    assert len(out) == len(sent)
    assert set(versions) == {v1.version, v2_info.version}
    by_partition: dict[int, list[str]] = {}
    for m, v in zip(out, versions, strict=True):
        by_partition.setdefault(m.partition, []).append(v)
    for seen in by_partition.values():  # v1, then v2 from its first batch on
        assert seen == sorted(seen, key=lambda v: v == v2_info.version)
