"""(3) Airline scoring: CSV flight lines → LightGBM delay model → a prediction per flight.

Two workloads, on the same input (the same rows in the same order, so their ratio compares
like with like):

* ``airline``: each system scores the way it can best: fluvial with ``fluvial.ml.score`` (one
  model call per poll batch of a partition, the batch's lines parsed column-wise by
  ``examples.airline.flights.parse_columns``), the ceiling with one model call per poll batch
  (the same parser);
  Quix Streams and Faust have no batch operator, so they score one record at a time in their
  per-record step (``apply`` / the agent's loop).
* ``airline-per-record``: every system scores one record at a time through the model inside a
  per-record map: the talk's design (fluvial: ``map_values``; ceiling: a ``predict`` per
  message; Quix and Faust as in ``airline``).

Input: rows of ``examples/airline/data/allyears2k_headers.csv.gz``, exactly as in the file
(latin-1 bytes), cycled in a fixed shuffled order (seed 20240905); key = the flight
(``1987-10-14 PS1451 SAN-SFO 0730``, ``examples.airline.flights.flight_key``), partition =
crc32(key) mod partitions, so one flight's lines stay in order. Output: key = the flight,
value = ``{"prediction": "YES"|"NO", "probability": P(YES)}`` as JSON. The tracker checks each
output against the probability the driver computed with the same model (|Δ| ≤ 1e-9, same
label), and matches the n-th output of a flight with its n-th input (for latency).

The model is trained once (``examples.airline.demo.load_or_train``: seed 42, 100 trees) into
``bench/results/tmp/airline-model.json`` by the driver, and every system loads that file
(``fluvial.ml.LightGBMModel.load``, 1 LightGBM thread). Java Kafka Streams is not run: there
is no Java scorer for this model here.

The same workloads with the other scoring backends (issue 15), fluvial and the ceiling only:
``airline-compiled`` / ``airline-per-record-compiled`` (the same trees compiled to machine
code, ``fluvial.ml.compiled``) and ``airline-onnx`` / ``airline-per-record-onnx`` (exported
to ONNX, ``fluvial.ml.onnx``). The driver exports the model to
``bench/results/tmp/airline-model.<backend>.json`` (and compiles it, so no system compiles);
each expected score is that backend's own (its batch and per-record scores are equal). Their
per-record scorers use ``predict_row``, the backends' one-record path; the talk's design
(``airline-per-record``) stays LightGBM's ``predict_proba`` on a one-row batch.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from bench.workloads import ALL_SYSTEMS, Input, Tracker, Workload, register

MODEL_PATH = Path(__file__).resolve().parents[1] / "results" / "tmp" / "airline-model.json"
ROW_SEED = 20240905
TOLERANCE = 1e-9

BACKENDS = ("lightgbm", "compiled", "onnx")

_models: dict[str, Any] = {}


def model_path(backend: str) -> Path:
    return MODEL_PATH if backend == "lightgbm" else MODEL_PATH.with_suffix(f".{backend}.json")


def load_model(backend: str = "lightgbm") -> Any:
    """The benchmark's model: trained once (cached by data sha256 + training settings), then
    exported to ``backend`` (and compiled, for ``compiled``) if it is another."""
    if backend not in _models:
        if backend == "lightgbm":
            from examples.airline.demo import load_or_train

            MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
            _models[backend], _ = load_or_train(MODEL_PATH, say=lambda *_a: None)
        else:
            from examples.airline.train import export

            _models[backend] = export(load_model("lightgbm"), backend)
            _models[backend].save(model_path(backend))
    return _models[backend]


def _system_model(backend: str) -> Any:
    """In a system's process: load the file the driver wrote (never train there)."""
    from fluvial import ml

    return ml.load_model(model_path(backend))


def _labels(model: Any) -> tuple[str, str, float]:
    negative, positive = getattr(model, "classes", ("NO", "YES"))
    return negative, positive, float(model.threshold)


def batch_scorer(model: Any) -> Callable[[list[bytes]], list[bytes]]:
    """CSV lines → JSON outputs, one model call for the whole list (the ceiling's batch),
    parsed column-wise as fluvial's batches are."""
    from examples.airline.flights import parse_columns

    negative, positive, threshold = _labels(model)
    predict, dumps = model.predict_proba, orjson.dumps

    def score(lines: list[bytes]) -> list[bytes]:
        probs = predict(parse_columns(lines)).tolist()
        return [dumps({"prediction": positive if p >= threshold else negative,
                       "probability": p}) for p in probs]

    return score


def record_scorer(model: Any, one_row: bool = False) -> Callable[[bytes], dict[str, Any]]:
    """One CSV line → its output dict, one model call per line: the talk's design
    (``predict_proba`` on a batch of one), or with ``one_row`` the model's ``predict_row``."""
    from examples.airline.flights import parse_line

    features = model.features
    negative, positive, threshold = _labels(model)
    predict, predict_row = model.predict_proba, model.predict_row

    def score(line: bytes) -> dict[str, Any]:
        flight = parse_line(line)
        p = float(predict({f: [flight[f]] for f in features})[0])
        return {"prediction": positive if p >= threshold else negative, "probability": p}

    def score_row(line: bytes) -> dict[str, Any]:
        p = predict_row(parse_line(line))
        return {"prediction": positive if p >= threshold else negative, "probability": p}

    return score_row if one_row else score


class _Rows:
    """The data file's rows in a fixed order, each with its key and expected output."""

    def __init__(self, backend: str) -> None:
        from examples.airline.flights import flight_key, parse_line, read_lines

        model = load_model(backend)
        lines = read_lines()
        random.Random(ROW_SEED).shuffle(lines)
        flights = [parse_line(line) for line in lines]
        probs = model.predict_proba({f: [fl[f] for fl in flights]
                                     for f in model.features}).tolist()
        negative, positive, threshold = _labels(model)
        self.values = [line.encode("latin-1") for line in lines]
        self.keys = [flight_key(fl).encode() for fl in flights]
        self.expected = [(positive if p >= threshold else negative, p) for p in probs]


class AirlineTracker(Tracker):
    def __init__(self) -> None:
        super().__init__()
        self._due: dict[bytes, list[tuple[str, float, int | None]]] = {}
        self._answered: dict[bytes, int] = {}
        self._expected = 0
        self._matched = 0

    def expect(self, record: Input, ts: int | None) -> None:
        label, p = record.meta
        with self.lock:
            self._due.setdefault(record.key, []).append((label, p, ts))
            self._expected += 1

    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        k = key or b""
        try:
            out = orjson.loads(value or b"")
            label, p = out["prediction"], float(out["probability"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.bad.append(f"{k!r}: bad value {value!r} ({exc})")
            return
        with self.lock:
            due = self._due.get(k)
            if due is None:
                self.bad.append(f"unexpected output key {k!r}")
                return
            n = self._answered.get(k, 0)
            if n >= len(due):
                self.duplicates += 1
                return
            want_label, want_p, ts = due[n]
            if label != want_label or abs(p - want_p) > TOLERANCE:
                self.bad.append(f"{k!r}: got {label} {p!r}, expected {want_label} {want_p!r}")
            self._answered[k] = n + 1
            self._matched += 1
            if ts is not None:
                self.latencies.append(append_ms - ts)

    def pending(self) -> int:
        return self._expected - self._matched

    def expected_outputs(self) -> int:
        return self._expected


@register
class Airline(Workload):
    name = "airline"
    title = "(3) airline scoring, batched (fluvial.ml.score; Quix/Faust per record)"
    systems = ALL_SYSTEMS - {"java"}
    default_records = 100_000
    per_record = False
    backend = "lightgbm"
    _rows: ClassVar[dict[str, _Rows]] = {}

    @property
    def fluvial_target(self) -> str:
        return f"bench.workloads.airline:fluvial_{self.name.replace('-', '_')}"

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        if self.backend not in Airline._rows:
            Airline._rows[self.backend] = _Rows(self.backend)
        rows = Airline._rows[self.backend]
        n = len(rows.values)
        out = []
        for i in range(start, start + count):
            r = i % n
            key = rows.keys[r]
            out.append(Input(i, key, rows.values[r], zlib.crc32(key) % partitions,
                             rows.expected[r]))
        return out

    def tracker(self) -> Tracker:
        return AirlineTracker()

    # -- the systems --------------------------------------------------------------------------

    def fluvial_topology(self) -> Any:
        import os

        from examples.airline.flights import parse_columns, parse_line

        import fluvial
        from fluvial import ml, serdes

        model = _system_model(self.backend)
        builder = fluvial.StreamsBuilder()
        lines = builder.stream(os.environ["BENCH_INPUT"], value_serde=serdes.Bytes())
        if self.per_record:  # the talk's design: the model inside a per-record map
            scored = lines.map_values(record_scorer(model, self.backend != "lightgbm"))
        else:  # one model call per poll batch of a partition
            scored = ml.score(lines, model, featurize=parse_line, featurize_batch=parse_columns,
                              output=lambda _line, p: {"prediction": p.label,
                                                       "probability": p.probability},
                              version_header=None)
        scored.to(os.environ["BENCH_OUTPUT"], value_serde=serdes.Json())
        return builder.build()

    def ceiling_loop(self, args: Any) -> Any:
        from bench.systems.ceiling import CeilingLoop

        model = _system_model(self.backend)
        per_record, one_row = self.per_record, self.backend != "lightgbm"

        class Loop(CeilingLoop):
            def process(self, msgs: list[Any]) -> None:
                out = self.args.output
                produce = self.producer.produce
                if per_record:
                    one, dumps = record_scorer(model, one_row), orjson.dumps
                    values = [dumps(one(m.value())) for m in msgs]
                else:
                    values = batch_scorer(model)([m.value() for m in msgs])
                for m, v in zip(msgs, values, strict=True):
                    try:
                        produce(out, v, m.key())
                    except BufferError:
                        self.produce(out, m.key(), v)

        return Loop(args)

    def quix_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        score = record_scorer(_system_model(self.backend))  # no batch operator: per record
        sdf = app.dataframe(app.topic(input_topic, value_deserializer="bytes"))
        sdf = sdf.apply(score)
        sdf.to_topic(app.topic(output_topic, value_serializer="json"))
        return sdf

    def faust_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        score = record_scorer(_system_model(self.backend))  # per record in the agent
        source = app.topic(input_topic, key_serializer="raw", value_serializer="raw")
        sink = app.topic(output_topic, key_serializer="raw", value_serializer="json")

        @app.agent(source)
        async def airline(stream: Any) -> None:
            async for key, line in stream.items():
                await sink.send(key=key, value=score(line))

        return airline


@register
class AirlinePerRecord(Airline):
    name = "airline-per-record"
    title = "(3) airline scoring, per record (the talk's design: model in a map_values)"
    default_records = 30_000
    per_record = True


@register
class AirlineCompiled(Airline):
    name = "airline-compiled"
    title = "(3) airline scoring, batched, compiled trees (fluvial.ml.compiled)"
    systems = frozenset({"fluvial", "ceiling"})
    backend = "compiled"


@register
class AirlineOnnx(Airline):
    name = "airline-onnx"
    title = "(3) airline scoring, batched, ONNX Runtime (fluvial.ml.onnx)"
    systems = frozenset({"fluvial", "ceiling"})
    default_records = 30_000
    backend = "onnx"


@register
class AirlinePerRecordCompiled(AirlinePerRecord):
    name = "airline-per-record-compiled"
    title = "(3) airline scoring, per record in a map_values, compiled trees (predict_row)"
    systems = frozenset({"fluvial", "ceiling"})
    backend = "compiled"


@register
class AirlinePerRecordOnnx(AirlinePerRecord):
    name = "airline-per-record-onnx"
    title = "(3) airline scoring, per record in a map_values, ONNX Runtime (predict_row)"
    systems = frozenset({"fluvial", "ceiling"})
    default_records = 10_000
    backend = "onnx"


def __getattr__(name: str) -> Callable[[], Any]:
    """``fluvial_<workload>`` (dashes as underscores): the topology function that ``fluvial run
    bench.workloads.airline:fluvial_airline_compiled`` calls, one per airline workload."""
    from bench.workloads import get

    workloads = {f"fluvial_{w.replace('-', '_')}": w for w in _AIRLINE}
    if name not in workloads:
        raise AttributeError(name)
    return get(workloads[name]).fluvial_topology


_AIRLINE = ("airline", "airline-per-record", "airline-compiled", "airline-onnx",
            "airline-per-record-compiled", "airline-per-record-onnx")
