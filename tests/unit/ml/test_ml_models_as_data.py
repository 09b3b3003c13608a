"""Models as data: a models topic feeds the scoring operator; hot swap between batches,
rollback, shadow scoring, bad files, tombstones; on the TestDriver and on a running App."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from examples.airline.flights import columns, parse_line
from examples.airline.train import Trained

from fluvial import StreamsBuilder, TestDriver, Topology
from fluvial.io.embedded import EmbeddedBroker
from fluvial.io.serdes import BytesSerde, StringSerde
from fluvial.ml import (
    ModelError,
    ModelTopic,
    Prediction,
    ScoringMetrics,
    publish_model,
    score,
    withdraw_model,
)
from fluvial.ml import sources as ml_sources
from fluvial.runtime.app import App
from fluvial.state.stack import memory_store

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")
NAME = "airline-delay"


def as_output(value: Any, p: Prediction) -> dict[str, Any]:
    return {"line": value, **p.as_dict()}


def build(metrics: ScoringMetrics | None = None, shadow: str | None = None,
          featurize: Callable[[str], Any] = parse_line) -> tuple[Topology, ModelTopic]:
    b = StreamsBuilder()
    models = ModelTopic(b, "models")
    score(b.stream("in", value_serde="string"), models.model(NAME), featurize=featurize,
          output=as_output, metrics=metrics,
          shadow=models.model(shadow) if shadow else None).to("out")
    return b.build(), models


def versions(d: TestDriver) -> list[str]:
    return [v["model_version"] for v in d.output_topic("out").read_values()]


def test_hot_swap_and_rollback_on_the_test_driver(small: Trained, small_v2: Trained) -> None:
    v1, v2 = small.model, small_v2.model
    assert v1.version != v2.version
    metrics = ScoringMetrics()
    topology, models = build(metrics)
    with TestDriver(topology, on_error="dead_letter") as d:
        lines = d.input_topic("in")
        lines.pipe(REFERENCE)  # no model yet: the error policy decides (here: dead letter)
        assert d.output_topic("out").is_empty()
        (dead,) = d.read("test-app-dead-letter")
        assert b"no model to score with yet" in dict(dead.headers() or [])["fluvial.error"]

        assert publish_model(d, "models", v1.to_bytes()).version == v1.version
        lines.pipe_list([REFERENCE] * 2)
        publish_model(d, "models", v2.to_bytes())
        lines.pipe_list([REFERENCE] * 3)
        publish_model(d, "models", v1.to_bytes())  # rollback: republish the old file
        lines.pipe(REFERENCE)
        assert versions(d) == [v1.version] * 2 + [v2.version] * 3 + [v1.version]
    assert models.cache.loads == 2  # the rollback found v1 in the cache
    assert metrics.swaps == 2
    assert metrics.versions == {v1.version: 3, v2.version: 3}
    assert (metrics.unavailable, metrics.model_version) == (1, v1.version)


def test_a_swap_never_lands_mid_batch(small: Trained, small_v2: Trained,
                                      batch_runner: Any) -> None:
    v1, v2 = small.model, small_v2.model
    store = memory_store("models-models", StringSerde(), BytesSerde())
    store.put(NAME, (v1.to_bytes(), 0))

    def featurize(line: str) -> Any:
        if line.startswith("1999"):  # a new version arrives while the batch runs
            store.put(NAME, (v2.to_bytes(), 1))
        return parse_line(line)

    topology, _ = build(featurize=featurize)
    runner = batch_runner(topology, global_stores={"models-models": store})
    y1999 = REFERENCE.replace("1987", "1999", 1)
    runner.run("in", [REFERENCE.encode(), y1999.encode(), REFERENCE.encode()])
    runner.run("in", [REFERENCE.encode(), REFERENCE.encode()])
    out = [orjson.loads(v)["model_version"] for v in runner.collector.values("out")]
    assert out == [v1.version] * 3 + [v2.version] * 2


def test_shadow_scoring_and_agreement_rate(small: Trained, small_v2: Trained,
                                           lines: list[str]) -> None:
    v1, v2 = small.model, small_v2.model
    sample = lines[::211][:150]
    metrics = ScoringMetrics()
    topology, _ = build(metrics, shadow="airline-delay-candidate")
    with TestDriver(topology) as d:
        output = d.output_topic("out")
        publish_model(d, "models", v1.to_bytes())
        d.input_topic("in").pipe(REFERENCE)  # no shadow yet: scored all the same
        first = output.read_value()
        assert "shadow" not in first and metrics.agreement_rate is None
        publish_model(d, "models", v2.to_bytes(), name="airline-delay-candidate")
        d.input_topic("in").pipe_list(sample)
        out = output.read_values()
    flights = [parse_line(line) for line in sample]
    p1 = v1.predict_proba(columns(flights, v1.features))
    p2 = v2.predict_proba(columns(flights, v2.features))
    assert [o["probability"] for o in out] == p1.tolist()
    assert [o["shadow"]["probability"] for o in out] == p2.tolist()
    assert {o["shadow"]["model_version"] for o in out} == {v2.version}
    agreed = int(((p1 >= v1.threshold) == (p2 >= v2.threshold)).sum())
    assert 0 < agreed < len(sample)
    assert (metrics.shadow_scored, metrics.shadow_agreed) == (len(sample), agreed)
    assert metrics.agreement_rate == agreed / len(sample)
    assert metrics.shadow_version == v2.version
    assert metrics.as_dict()["shadow_agreement_rate"] == metrics.agreement_rate
    # and the rate is a Prometheus metric, as /metrics serves it
    from prometheus_client import REGISTRY, generate_latest

    exposed = generate_latest(REGISTRY).decode()
    assert f"fluvial_ml_shadow_agreement_ratio{{operator=\"score\"}} {agreed / len(sample)}" \
        in exposed


def test_a_failing_shadow_never_fails_a_record(small: Trained) -> None:
    class Broken:
        name, version, features, threshold = "broken", "b1", ("Year",), 0.5

        def predict_proba(self, batch: Any) -> Any:
            raise RuntimeError("shadow is broken")

    metrics = ScoringMetrics()
    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), small.model, featurize=parse_line,
          shadow=Broken(), metrics=metrics).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_list([REFERENCE] * 2)
        out = d.output_topic("out").read_values()
    assert len(out) == 2 and "shadow" not in out[0]
    assert (metrics.shadow_failed, metrics.shadow_scored, metrics.scored) == (2, 0, 2)


def test_a_bad_file_is_refused_by_publish_and_ignored_by_apps(small: Trained) -> None:
    metrics = ScoringMetrics()
    topology, _ = build(metrics)
    with TestDriver(topology) as d:
        with pytest.raises(ModelError, match="not JSON"):
            publish_model(d, "models", b"garbage")
        publish_model(d, "models", small.model.to_bytes())
        d.input_topic("in").pipe(REFERENCE)
        # a bad file that got on the topic some other way: the model in use stays
        d.input_topic("models", key_serde="string", value_serde="bytes").pipe(b"{}", key=NAME)
        d.input_topic("in").pipe(REFERENCE)
        assert versions(d) == [small.model.version] * 2
    assert metrics.load_errors == 1


def test_a_tombstone_withdraws_the_model(small: Trained) -> None:
    metrics = ScoringMetrics()
    topology, _ = build(metrics)
    with TestDriver(topology, on_error="skip") as d:
        publish_model(d, "models", small.model.to_bytes())
        d.input_topic("in").pipe(REFERENCE)
        withdraw_model(d, "models", NAME)
        d.input_topic("in").pipe(REFERENCE)
        assert versions(d) == [small.model.version]
    assert (metrics.unavailable, metrics.model_version) == (1, None)


def test_big_files_travel_gzipped(small: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ml_sources, "COMPRESS_ABOVE", 100)
    broker = EmbeddedBroker()
    publish_model(broker, "models", small.model.to_bytes())
    (record,) = broker.records("models")
    assert record.key() == NAME.encode()
    assert record.value()[:2] == b"\x1f\x8b"
    topology, _ = build()
    with TestDriver(topology) as d:
        d.input_topic("models", key_serde="string", value_serde="bytes").pipe(
            record.value(), key=NAME)
        d.input_topic("in").pipe(REFERENCE)
        assert versions(d) == [small.model.version]


def test_publish_creates_a_compacted_models_topic(small: Trained) -> None:
    broker = EmbeddedBroker()
    ml_sources.ensure_models_topic(broker, "models")
    admin = ml_sources._clients(broker).admin()
    assert admin.partition_counts(["models"]) == {"models": 1}
    assert broker.topic_config("models")["cleanup.policy"] == "compact"
    with pytest.raises(TypeError, match="publish_model needs"):
        publish_model(object(), "models", small.model.to_bytes())


def _wait_for(condition: Callable[[], object], app: App, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert app.error is None, app.error
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_hot_swap_in_a_running_app(small: Trained, small_v2: Trained, lines: list[str],
                                   tmp_path: Path) -> None:
    v1, v2 = small.model, small_v2.model
    broker = EmbeddedBroker()
    broker.create_topic("in", 3)
    broker.create_topic("out", 3)
    publish_model(broker, "models", v1.to_bytes())
    first, second = lines[:300], lines[300:600]
    for i, line in enumerate(first):
        broker.append("in", str(i).encode(), line.encode(), i)
    topology, _ = build()
    with App(topology, "scorer", broker=broker, state_dir=tmp_path) as app:
        _wait_for(lambda: len(broker.records("out")) == len(first), app)
        publish_model(broker, "models", v2.to_bytes())
        assert app.global_stores is not None
        store = app.global_stores.stores["models-models"]
        _wait_for(lambda: store.get(NAME)[0] == v2.to_bytes(), app)
        for i, line in enumerate(second, start=len(first)):
            broker.append("in", str(i).encode(), line.encode(), i)
        _wait_for(lambda: len(broker.records("out")) == len(first) + len(second), app)
    out = {m.key(): orjson.loads(m.value()) for m in broker.records("out")}
    assert len(out) == len(first) + len(second)  # every record once
    for i in range(len(first) + len(second)):
        expected = v1 if i < len(first) else v2
        assert out[str(i).encode()]["model_version"] == expected.version
    p = v2.predict_proba(columns([parse_line(second[0])], v2.features))[0]
    assert out[str(len(first)).encode()]["probability"] == float(p)


