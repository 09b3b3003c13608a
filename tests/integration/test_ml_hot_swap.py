"""Models as data on a real broker: a model published mid-stream to a compacted topic swaps
in with no restart, and every flight is scored exactly once (with one of the two versions,
the newer once it is live)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from examples.airline.flights import parse_line, read_lines
from examples.airline.train import train
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until

from fluvial import StreamsBuilder
from fluvial.ml import ModelTopic, Prediction, publish_model, score
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
