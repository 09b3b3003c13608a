"""The scoring operator: batches equal per-record scoring; errors go to the error policy;
the talk's reference rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pytest
from examples.airline.flights import columns, parse_line
from examples.airline.train import Trained

import fluvial
from fluvial import ProcessingError, StreamsBuilder, TestDriver
from fluvial.ml import (
    VERSION_HEADER,
    LightGBMModel,
    ModelError,
    Prediction,
    ScoringMetrics,
    score,
)

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")


def _with(line: str, **fields: str) -> str:
    from examples.airline.flights import COLUMNS

    parts = line.split(",")
    for name, value in fields.items():
        parts[COLUMNS.index(name)] = value
    return ",".join(parts)


def as_output(value: Any, p: Prediction) -> dict[str, Any]:
    return {"line": value, **p.as_dict()}


def scoring_topology(model: Any, metrics: ScoringMetrics | None = None,
                     **kwargs: Any) -> fluvial.Topology:
    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), model, featurize=parse_line,
          output=as_output, metrics=metrics, **kwargs).to("out")
    return b.build()


def per_record(model: LightGBMModel, lines: Sequence[str]) -> list[float]:
    """Each line scored alone, straight through the model."""
    return [float(model.predict_proba(columns([parse_line(line)], model.features))[0])
            for line in lines]


# -- the talk's reference rows -------------------------------------------------------------

#: our full-data model (python -m examples.airline.train, defaults) on the talk's test rows;
#: documented in docs/ml.md
REFERENCE_P_YES = 0.6796353269624429
YEAR_1999_P_YES = 0.3374096677575803


def test_the_talks_reference_row_and_year_1999(full: Trained) -> None:
    model = full.model
    with TestDriver(scoring_topology(model)) as d:
        d.input_topic("in").pipe(REFERENCE, key="ref")
        d.input_topic("in").pipe(_with(REFERENCE, Year="1999"), key="1999")
        ref, y1999 = d.output_topic("out").read_values()
    assert ref["prediction"] == "YES"          # as in the talk
    assert y1999["prediction"] == "NO"         # as in the talk
    assert ref["probability"] == pytest.approx(REFERENCE_P_YES, abs=0.01)
    assert y1999["probability"] == pytest.approx(YEAR_1999_P_YES, abs=0.01)
    assert ref["model_version"] == model.version == full.model.info.version
    assert 0.75 < model.info.metrics["test_auc"] < 0.8


# -- batches ---------------------------------------------------------------------------------


def test_a_batch_scores_exactly_as_records_one_by_one(model: LightGBMModel, lines: list[str],
                                                      batch_runner: Any) -> None:
    sample = lines[::97][:400]
    runner = batch_runner(scoring_topology(model))
    runner.run("in", [line.encode() for line in sample])
    batched = [orjson.loads(v)["probability"] for v in runner.collector.values("out")]
    assert batched == per_record(model, sample)  # exactly, not approximately

    with TestDriver(scoring_topology(model)) as d:  # the driver: one record per batch
        d.input_topic("in").pipe_list(sample)
        one_by_one = [v["probability"] for v in d.output_topic("out").read_values()]
    assert one_by_one == batched


def test_the_model_is_called_once_per_batch(model: LightGBMModel, lines: list[str],
                                           batch_runner: Any) -> None:
    class Counting:
        def __init__(self, inner: LightGBMModel) -> None:
            self.inner = inner
            self.name, self.version = inner.name, inner.version
            self.features, self.threshold = inner.features, inner.threshold
            self.calls: list[int] = []

        def predict_proba(self, batch: Mapping[str, Sequence[Any]]) -> np.ndarray:
            self.calls.append(len(batch["Year"]))
            return self.inner.predict_proba(batch)

    counting = Counting(model)
    runner = batch_runner(scoring_topology(counting))
    runner.run("in", [line.encode() for line in lines[:250]])
    runner.run("in", [line.encode() for line in lines[250:300]])
    assert counting.calls == [250, 50]


def test_unknown_carriers_airports_and_missing_values_are_scored(model: LightGBMModel) -> None:
    odd = [_with(REFERENCE, UniqueCarrier="ZZ"), _with(REFERENCE, Origin="XYZ", Dest="QQQ"),
           _with(REFERENCE, FlightNum="99999"),
           _with(REFERENCE, CRSDepTime="NA", CRSElapsedTime="NA", UniqueCarrier="NA")]
    with TestDriver(scoring_topology(model)) as d:
        d.input_topic("in").pipe_list(odd)
        out = d.output_topic("out").read_values()
    assert [o["prediction"] in ("YES", "NO") for o in out] == [True] * 4
    assert [o["probability"] for o in out] == per_record(model, odd)
    # an unseen value scores as missing
    assert out[0]["probability"] == per_record(model, [_with(REFERENCE, UniqueCarrier="NA")])[0]


def test_every_output_carries_the_version_in_value_and_header(model: LightGBMModel) -> None:
    with TestDriver(scoring_topology(model)) as d:
        d.input_topic("in").pipe(REFERENCE, key="k", headers=[("trace", b"1")])
        record = d.output_topic("out").read_record()
    assert record.key == "k"
    assert record.value["model_version"] == model.version
    assert record.value["model"] == "airline-delay"
    assert record.headers == [("trace", b"1"), (VERSION_HEADER, model.version.encode())]


def test_the_default_output_and_featurize(model: LightGBMModel) -> None:
    b = StreamsBuilder()
    flight = parse_line(REFERENCE)
    score(b.stream("in"), model, version_header=None).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe(flight)
        record = d.output_topic("out").read_record()
    assert record.headers is None
    assert record.value["input"] == flight
    assert set(record.value) == {"input", "prediction", "probability", "threshold", "model",
                                 "model_version"}
    assert record.value["threshold"] == model.threshold


# -- errors ----------------------------------------------------------------------------------

BAD = ["", "not,a,flight", _with(REFERENCE, Year="19x7")]


def test_malformed_lines_are_dead_lettered_and_the_rest_of_the_batch_scored(
        model: LightGBMModel, batch_runner: Any) -> None:
    metrics = ScoringMetrics()
    runner = batch_runner(scoring_topology(model, metrics), on_error="dead_letter")
    batch = [REFERENCE, BAD[0], REFERENCE, BAD[1], BAD[2], REFERENCE]
    runner.run("in", [line.encode() for line in batch])
    assert len(runner.collector.values("out")) == 3
    dead = [(v, dict(h or [])) for t, _, v, h in runner.collector.sent
            if t == "app-dead-letter"]
    assert [v for v, _ in dead] == [line.encode() for line in BAD]  # the original bytes
    assert [h["fluvial.offset"] for _, h in dead] == [b"1", b"3", b"4"]
    assert b"empty line" in dead[0][1]["fluvial.error"]
    assert b"column Year" in dead[2][1]["fluvial.error"]
    assert dead[0][1]["fluvial.stage"] == b"score: featurize"
    assert (metrics.scored, metrics.failed, metrics.batches) == (3, 3, 1)


def test_skip_and_stop_policies(model: LightGBMModel) -> None:
    with TestDriver(scoring_topology(model), on_error="skip") as d:
        d.input_topic("in").pipe_list([BAD[0], REFERENCE])
        assert len(d.output_topic("out").read_values()) == 1
    with TestDriver(scoring_topology(model)) as d, pytest.raises(ProcessingError,
                                                                 match="empty line"):
        d.input_topic("in").pipe("")


def test_a_record_the_model_rejects_fails_alone(model: LightGBMModel,
                                               batch_runner: Any) -> None:
    def featurize(line: str) -> dict[str, Any]:
        flight = parse_line(line)
        if flight["Year"] == 1999:
            flight["Year"] = "not a number"  # passes featurize, fails in the model
        return flight

    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), model, featurize=featurize,
          output=as_output).to("out")
    runner = batch_runner(b.build(), on_error="dead_letter")
    runner.run("in", [REFERENCE.encode(), _with(REFERENCE, Year="1999").encode(),
                      REFERENCE.encode()])
    assert len(runner.collector.values("out")) == 2
    (dead,) = [dict(h or []) for t, _, _, h in runner.collector.sent if t == "app-dead-letter"]
    assert dead["fluvial.offset"] == b"1"
    assert b"needs numbers" in dead["fluvial.error"]


def test_a_featurize_result_without_a_feature_fails_that_record(model: LightGBMModel) -> None:
    def featurize(line: str) -> dict[str, Any]:
        flight = parse_line(line)
        if line.startswith("1999"):
            del flight["Dest"]
        return flight

    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), model, featurize=featurize).to("out")
    with TestDriver(b.build()) as d, pytest.raises(ProcessingError, match="'Dest'"):
        d.input_topic("in").pipe(_with(REFERENCE, Year="1999"))


def test_a_failing_output_function_fails_that_record(model: LightGBMModel) -> None:
    def output(value: Any, p: Prediction) -> Any:
        if "SFO" not in value:
            raise RuntimeError("no SFO")
        return p.label

    b = StreamsBuilder()
    score(b.stream("in", value_serde="string"), model, featurize=parse_line,
          output=output).to("out", value_serde="string")
    with TestDriver(b.build(), on_error="skip") as d:
        d.input_topic("in").pipe_list([_with(REFERENCE, Dest="LAX"), REFERENCE])
        assert len(d.output_topic("out").read_values()) == 1


def test_the_feature_encoding_errors_name_the_feature(model: LightGBMModel) -> None:
    flight = parse_line(REFERENCE)
    with pytest.raises(ModelError, match="'Origin'"):
        model.predict_proba(columns([{**flight, "Origin": ["unhashable"]}], model.features))
    with pytest.raises(ModelError, match="'Year' is missing"):
        model.predict_proba({"Month": [1]})
    assert model.predict_proba(columns([], model.features)).shape == (0,)
