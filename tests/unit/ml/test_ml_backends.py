"""Scoring backends: compiled trees (lleaves) and ONNX Runtime against LightGBM's own scores
on the airline data; batch == per record; model files; compile once, off the scoring path;
models as data (hot swap, rollback, shadow, bad files) with every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from examples.airline.flights import columns, parse_columns, parse_line
from examples.airline.train import Trained, train

from fluvial import StreamsBuilder, TestDriver, Topology
from fluvial.ml import (
    LightGBMModel,
    MatrixModel,
    ModelError,
    ModelTopic,
    ScoringMetrics,
    load_model,
    publish_model,
    register_model_type,
    score,
)
from fluvial.ml import compiled as ml_compiled
from fluvial.ml.compiled import CompiledTreeModel
from fluvial.ml.model import dump_envelope
from fluvial.ml.onnx import OnnxModel

#: compiled trees do LightGBM's float64 arithmetic; only the order of the trees' sum differs
COMPILED_TOLERANCE = 1e-12
#: ONNX's tree ensemble takes float32 features and thresholds and sums in float32
ONNX_TOLERANCE = 1e-6
NAME = "airline-delay"


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Compiled models of this module go to their own cache directory."""
    path = tmp_path_factory.mktemp("compiled-models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ml_compiled.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def full(lines: list[str]) -> Trained:
    """Trained on the whole file like the demo's model, with fewer trees (30, not 100) so that
    compiling it takes seconds: the same features, the same 2,000-value categorical splits."""
    return train(lines, trees=30, threads=1, trained_at="2024-01-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def full_compiled(full: Trained) -> CompiledTreeModel:
    return CompiledTreeModel.from_lightgbm(full.model)


@pytest.fixture(scope="module")
def full_onnx(full: Trained) -> OnnxModel:
    return OnnxModel.from_lightgbm(full.model)


@pytest.fixture(scope="module")
def airline(lines: list[str]) -> dict[str, Any]:
    """The whole data file as feature columns."""
    return parse_columns(lines)


# -- exactness ------------------------------------------------------------------------------


def test_compiled_scores_equal_lightgbms_on_the_airline_data(
        full: Trained, full_compiled: CompiledTreeModel, airline: dict[str, Any]) -> None:
    reference = full.model.predict_proba(airline)
    scores = full_compiled.predict_proba(airline)
    assert scores.shape == reference.shape == (43978,)
    assert np.abs(scores - reference).max() <= COMPILED_TOLERANCE
    t = full.model.threshold
    assert ((scores >= t) == (reference >= t)).all()


def test_onnx_scores_equal_lightgbms_within_float32(
        full: Trained, full_onnx: OnnxModel, airline: dict[str, Any]) -> None:
    reference = full.model.predict_proba(airline)
    scores = full_onnx.predict_proba(airline)
    assert np.abs(scores - reference).max() <= ONNX_TOLERANCE
    t = full.model.threshold
    flipped = (scores >= t) != (reference >= t)
    assert (np.abs(reference[flipped] - t) <= ONNX_TOLERANCE).all()  # only at the threshold


@pytest.mark.parametrize("backend", ["lightgbm", "compiled", "onnx"])
def test_one_record_scores_as_in_a_batch_bit_for_bit(
        backend: str, full: Trained, full_compiled: CompiledTreeModel, full_onnx: OnnxModel,
        lines: list[str]) -> None:
    model: MatrixModel = {"lightgbm": full.model, "compiled": full_compiled,
                          "onnx": full_onnx}[backend]
    rows = [parse_line(line) for line in lines[:1500]]
    rows[0] = {**rows[0], "UniqueCarrier": "never seen", "Origin": None, "CRSDepTime": None}
    batch = model.predict_proba(columns(rows, model.features))
    one = np.array([model.predict_row(row) for row in rows])
    assert np.array_equal(one, batch)
    assert model.encode_row(rows[0]) == pytest.approx(
        model.encode(columns(rows[:1], model.features))[0].tolist(), nan_ok=True)


def test_one_record_with_a_bad_value_gets_the_batch_encoders_error(
        full_compiled: CompiledTreeModel, lines: list[str]) -> None:
    row = parse_line(lines[0])
    with pytest.raises(ModelError, match="feature 'CRSDepTime' needs numbers"):
        full_compiled.predict_row({**row, "CRSDepTime": "soon"})
    with pytest.raises(ModelError, match="feature 'Origin' is missing"):
        full_compiled.predict_row({k: v for k, v in row.items() if k != "Origin"})


@pytest.mark.parametrize("backend", ["compiled", "onnx"])
def test_the_operator_scores_batches_as_single_records(
        backend: str, full_compiled: CompiledTreeModel, full_onnx: OnnxModel,
        lines: list[str], batch_runner: Any) -> None:
    model = full_compiled if backend == "compiled" else full_onnx
    values = [line.encode() for line in lines[:400]]

    def run(batch: int) -> list[Any]:
        """Batches of ``batch`` records: column-wise, or one by one through ``predict_row``."""
        b = StreamsBuilder()
        score(b.stream("in", value_serde="string"), model, featurize=parse_line,
              featurize_batch=parse_columns if batch > 1 else None,
              output=lambda _v, p: [p.probability, p.version]).to("out")
        runner = batch_runner(b.build())
        for i in range(0, len(values), batch):
            runner.run("in", values[i:i + batch])
        return [orjson.loads(v) for v in runner.collector.values("out")]

    batched = run(400)
    assert batched == run(1)
    assert {v for _, v in batched} == {model.version}


# -- the model file -------------------------------------------------------------------------


def test_the_file_says_the_backend_and_carries_what_it_needs(
        full_compiled: CompiledTreeModel, full_onnx: OnnxModel, tmp_path: Path,
        airline: dict[str, Any]) -> None:
    for model, cls, kind in ((full_compiled, CompiledTreeModel, "lightgbm-compiled"),
                             (full_onnx, OnnxModel, "onnx")):
        path = model.save(tmp_path / f"{kind}.json")
        assert orjson.loads(path.read_bytes())["type"] == kind
        loaded = load_model(path)
        assert type(loaded) is cls
        assert loaded.version == model.version
        assert loaded.version.endswith(("-compiled", "-onnx"))
        some = {f: col[:3000] for f, col in airline.items()}
        assert np.array_equal(loaded.predict_proba(some), model.predict_proba(some))


def test_compiled_once_then_loaded_from_the_cache(
        small: Trained, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = CompiledTreeModel.from_lightgbm(small.model).to_bytes()
    compiled = list(cache_dir.glob("*.o"))
    assert compiled

    def no_compiler(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("compiled again")

    monkeypatch.setattr(ml_compiled.subprocess, "run", no_compiler)
    load_model(data)  # found in the cache by its hash: no compiler
    assert sorted(cache_dir.glob("*.o")) == sorted(compiled)


def test_a_model_that_does_not_compile_says_why(small: Trained) -> None:
    info = CompiledTreeModel.from_lightgbm(small.model).info
    broken = dump_envelope(info, small.model.booster.model_to_string().replace(
        "num_leaves=", "num_leaves=x", 1))
    with pytest.raises(ModelError, match=r"compiling failed \(exit 1\)"):
        load_model(broken)


def test_an_onnx_file_that_is_not_onnx_says_why(full_onnx: OnnxModel) -> None:
    with pytest.raises(ModelError, match="not base64"):
        load_model(dump_envelope(full_onnx.info, "not base64 !"))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        load_model(dump_envelope(full_onnx.info, "AAAA"))


# -- models as data with every backend ------------------------------------------------------

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")


def build(metrics: ScoringMetrics, shadow: str | None = None) -> tuple[Topology, ModelTopic]:
    b = StreamsBuilder()
    models = ModelTopic(b, "models")
    score(b.stream("in", value_serde="string"), models.model(NAME), featurize=parse_line,
          output=lambda _v, p: {"version": p.version,
                                "shadow": p.shadow.version if p.shadow else None},
          metrics=metrics, shadow=models.model(shadow) if shadow else None).to("out")
    return b.build(), models


def versions(out: Any) -> list[str]:
    """The versions that scored the outputs not read yet from ``out`` (a TestOutputTopic)."""
    return [o["version"] for o in out.read_values()]


class GatedCompiler:
    """The compiled type, with its compile step held until ``release``: to see what scores
    while a new version compiles."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()

    def build(self, info: Any, payload: str) -> Path:
        self.started.set()
        assert self.gate.wait(60), "the test never released the compiler"
        return ml_compiled.compile_model(info, payload)

    def __enter__(self) -> GatedCompiler:
        register_model_type(ml_compiled.TYPE, CompiledTreeModel, build=self.build,
                            built=ml_compiled.is_compiled)
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.gate.set()
        register_model_type(ml_compiled.TYPE, CompiledTreeModel,
                            build=ml_compiled.compile_model, built=ml_compiled.is_compiled)


def pipe_until(d: TestDriver, out: Any, version: str, deadline_s: float = 120.0) -> list[str]:
    """Pipe the reference line until an output carries ``version``; the versions seen."""
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    while not seen or seen[-1] != version:
        assert time.monotonic() < deadline, f"{version} never scored; saw {seen[-3:]}"
        d.input_topic("in").pipe(REFERENCE)
        seen += versions(out)
    return seen


def test_hot_swap_to_a_compiled_model_compiles_off_the_scoring_path(
        small: Trained, small_v2: Trained, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ml_compiled.CACHE_ENV, str(tmp_path))  # nothing compiled yet
    v1 = small.model
    v2_info = replace(small_v2.model.info, type=ml_compiled.TYPE,
                      version=f"{small_v2.model.version}-compiled")
    v2_compiled = dump_envelope(v2_info, small_v2.model.booster.model_to_string())
    metrics = ScoringMetrics()
    topology, _ = build(metrics)
    with GatedCompiler() as compiler, TestDriver(topology) as d:
        out = d.output_topic("out")
        publish_model(d, "models", v1.to_bytes())
        d.input_topic("in").pipe(REFERENCE)
        publish_model(d, "models", v2_compiled)
        d.input_topic("in").pipe_list([REFERENCE] * 3)
        assert compiler.started.wait(30)
        # compiling: the previous version keeps scoring, nothing waits for it
        assert versions(out) == [v1.version] * 4
        compiler.gate.set()
        seen = pipe_until(d, out, v2_info.version)
        assert set(seen) == {v1.version, v2_info.version}
        publish_model(d, "models", v1.to_bytes())  # rollback: in the cache, at once
        d.input_topic("in").pipe(REFERENCE)
        assert versions(out) == [v1.version]
        publish_model(d, "models", v2_compiled)  # compiled and loaded: at once too
        d.input_topic("in").pipe(REFERENCE)
        assert versions(out) == [v2_info.version]
    assert metrics.swaps == 3
    assert metrics.load_errors == 0
    assert len(list(tmp_path.glob("*.o"))) == 1


def test_an_unknown_or_broken_model_keeps_the_previous_version_serving(
        small: Trained, small_v2: Trained, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ml_compiled.CACHE_ENV, str(tmp_path))
    onnx = OnnxModel.from_lightgbm(small.model)
    unknown = dump_envelope(replace(small_v2.model.info, type="xgboost-magic"), "{}")
    info = CompiledTreeModel.from_lightgbm(small_v2.model).info
    broken = dump_envelope(info, small_v2.model.booster.model_to_string().replace(
        "num_leaves=", "num_leaves=x", 1))
    metrics = ScoringMetrics()
    topology, _ = build(metrics)
    with TestDriver(topology) as d:
        publish_model(d, "models", onnx.to_bytes())
        d.input_topic("in").pipe(REFERENCE)
        publish_model(d, "models", unknown)  # no such type: logged, counted, v1 stays
        d.input_topic("in").pipe(REFERENCE)
        publish_model(d, "models", broken)  # does not compile (in the background)
        deadline = time.monotonic() + 120
        while metrics.load_errors < 2:
            assert time.monotonic() < deadline, "the broken model's compile never failed"
            d.input_topic("in").pipe(REFERENCE)
        d.input_topic("in").pipe(REFERENCE)
        assert set(versions(d.output_topic("out"))) == {onnx.version}
    assert metrics.load_errors == 2


def test_shadow_scoring_across_backends(small: Trained) -> None:
    onnx = OnnxModel.from_lightgbm(small.model)
    compiled = CompiledTreeModel.from_lightgbm(small.model)
    metrics = ScoringMetrics()
    topology, _ = build(metrics, shadow="candidate")
    with TestDriver(topology) as d:
        publish_model(d, "models", compiled.to_bytes())
        publish_model(d, "models", onnx.to_bytes(), name="candidate")
        d.input_topic("in").pipe_list([REFERENCE] * 4)
        assert d.output_topic("out").read_values() == [
            {"version": compiled.version, "shadow": onnx.version}] * 4
    assert metrics.agreement_rate == 1.0


def test_lightgbm_files_load_as_before(small: Trained) -> None:
    assert isinstance(load_model(small.model.to_bytes()), LightGBMModel)
