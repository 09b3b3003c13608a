"""score(featurize_batch=...): the same outputs as featurize alone; a batch that does not
parse as a whole goes record by record, so the error policy sees exactly the bad ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from examples.airline.flights import columns, parse_columns, parse_line

import fluvial
from fluvial import StreamsBuilder, TestDriver
from fluvial.ml import FeatureBatch, LightGBMModel, Prediction, ScoringMetrics, score

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")
BAD = ["", "not,a,flight", REFERENCE.replace("1987", "19x7", 1)]


def as_output(value: Any, p: Prediction) -> dict[str, Any]:
    return {"line": value, **p.as_dict()}


class Counting:
    """parse_columns, counting its calls and the values it saw."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, values: list[Any]) -> FeatureBatch:
        self.calls.append(len(values))
        return parse_columns(values)


def topology(model: Any, featurize_batch: Any = None, metrics: ScoringMetrics | None = None,
             **kwargs: Any) -> fluvial.Topology:
    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), model, featurize=parse_line,
          featurize_batch=featurize_batch, output=as_output, metrics=metrics,
          **kwargs).to("out")
    return b.build()


def run(batch_runner: Any, topo: fluvial.Topology, batch: Sequence[str],
        on_error: str = "dead_letter") -> Any:
    runner = batch_runner(topo, on_error=on_error)
    runner.run("in", [line.encode() for line in batch])
    return runner


def dead_letters(runner: Any) -> list[tuple[bytes | None, dict[str, bytes | None]]]:
    return [(v, dict(h or [])) for t, _, v, h in runner.collector.sent
            if t == "app-dead-letter"]


def test_the_same_outputs_with_and_without_featurize_batch(
        model: LightGBMModel, lines: list[str], batch_runner: Any) -> None:
    sample = lines[::97][:400]
    counting = Counting()
    fast = run(batch_runner, topology(model, counting), sample)
    slow = run(batch_runner, topology(model), sample)
    assert counting.calls == [400]
    assert fast.collector.sent == slow.collector.sent  # keys, values, headers: byte for byte
    probabilities = [orjson.loads(v)["probability"] for v in fast.collector.values("out")]
    assert probabilities == [float(p) for p in model.predict_proba(
        columns([parse_line(line) for line in sample], model.features))]
    with TestDriver(topology(model, parse_columns)) as d:  # one record a batch
        d.input_topic("in").pipe_list(sample[:50])
        assert [v["probability"] for v in d.output_topic("out").read_values()] == \
            probabilities[:50]


def test_a_malformed_record_goes_to_the_error_policy_and_the_rest_are_scored(
        model: LightGBMModel, lines: list[str], batch_runner: Any) -> None:
    batch = lines[:60]
    for at, bad in zip((0, 17, 59), BAD, strict=True):
        batch[at] = bad
    metrics = ScoringMetrics()
    fast = run(batch_runner, topology(model, parse_columns, metrics), batch)
    slow = run(batch_runner, topology(model), batch)
    assert len(fast.collector.values("out")) == 57
    assert [(v, h["fluvial.offset"]) for v, h in dead_letters(fast)] == [
        (b"", b"0"), (BAD[1].encode(), b"17"), (BAD[2].encode(), b"59")]
    assert b"empty line" in dead_letters(fast)[0][1]["fluvial.error"]
    assert dead_letters(fast)[0][1]["fluvial.stage"] == b"score: featurize"
    assert fast.collector.sent == slow.collector.sent
    assert (metrics.scored, metrics.failed, metrics.batches) == (57, 3, 1)

    skipped = run(batch_runner, topology(model, parse_columns), batch, on_error="skip")
    assert len(skipped.collector.values("out")) == 57

    with TestDriver(topology(model, parse_columns), on_error="dead_letter") as d:
        d.input_topic("in").pipe_list(batch)
        assert len(d.read("out")) == 57
        assert [m.value() for m in d.read("test-app-dead-letter")] == [b.encode() for b in BAD]


def test_a_featurize_batch_that_gets_it_wrong_falls_back(
        model: LightGBMModel, lines: list[str], batch_runner: Any) -> None:
    def short(values: list[Any]) -> FeatureBatch:
        return {f: col[1:] for f, col in parse_columns(values).items()}  # one value short

    def broken(values: list[Any]) -> FeatureBatch:
        raise RuntimeError("not today")

    sample = lines[:100]
    want = run(batch_runner, topology(model), sample).collector.sent
    for featurize_batch in (short, broken):
        assert run(batch_runner, topology(model, featurize_batch), sample).collector.sent == want


def test_the_shadow_model_scores_the_batch_columns(
        model: LightGBMModel, small_v2: Any, lines: list[str], batch_runner: Any) -> None:
    sample = lines[:300]
    outputs, agreed = [], []
    for featurize_batch in (parse_columns, None):
        metrics = ScoringMetrics()
        runner = run(batch_runner, topology(model, featurize_batch, metrics,
                                            shadow=small_v2.model), sample)
        outputs.append(runner.collector.sent)
        agreed.append((metrics.shadow_scored, metrics.shadow_agreed, metrics.shadow_failed))
    assert outputs[0] == outputs[1]
    assert agreed[0] == agreed[1]
    assert agreed[0][0] == 300 and 0 < agreed[0][1] < 300
    assert "shadow" in orjson.loads(outputs[0][0][2])


def test_a_prediction_is_a_named_tuple_with_its_fields() -> None:
    shadow = Prediction(0.25, False, "NO", 0.5, "candidate", "v2")
    p = Prediction(0.75, True, "YES", 0.5, "airline-delay", "v1", shadow)
    assert (p.probability, p.positive, p.label, p.threshold, p.model, p.version) == (
        0.75, True, "YES", 0.5, "airline-delay", "v1")
    assert p.shadow is shadow and shadow.shadow is None
    assert p.as_dict() == {"prediction": "YES", "probability": 0.75, "threshold": 0.5,
                           "model": "airline-delay", "model_version": "v1",
                           "shadow": {"prediction": "NO", "probability": 0.25,
                                      "threshold": 0.5, "model": "candidate",
                                      "model_version": "v2"}}
    with pytest.raises(AttributeError):
        p.label = "NO"  # type: ignore[misc]

