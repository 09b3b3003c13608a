"""How fast the scoring operator is, one record per batch against whole batches.

    python -m examples.airline.scoring_speed [--model FILE] [--rows 20000]
        [--backend lightgbm|compiled|onnx]

Runs CSV lines through the scoring processor of a real task (parse, featurize, one model
call per batch, output dicts), with batches of 1, 10, 100 and 1,000 records: featurized a
line at a time (``featurize=parse_line``) and a batch at a time
(``featurize_batch=parse_columns``), and the model alone on the same rows. Without
``--model`` it trains the default model first; ``--backend`` exports it to another scoring
backend first (docs/ml.md, "Backends").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import fluvial
from examples.airline.flights import columns, parse_columns, parse_line, read_lines
from examples.airline.train import EXPORTS, export, train
from fluvial import ml
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.processing.errors import ErrorPolicy
from fluvial.processing.processor import CollectorBase
from fluvial.processing.task import Task
from fluvial.record import Headers


class _Discard(CollectorBase):
    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        pass


def operator_rate(model: ml.Model, lines: Sequence[str], batch: int,
                  columnwise: bool = False) -> float:
    """Records per second through source → score → (no) sink, ``batch`` records a batch;
    ``columnwise``: with ``featurize_batch=parse_columns``."""
    b = fluvial.StreamsBuilder()
    ml.score(b.stream("in", value_serde="string"), model, featurize=parse_line,
             featurize_batch=parse_columns if columnwise else None,
             output=lambda line, p: {"prediction": p.label, "probability": p.probability,
                                     "model_version": p.version}).to("out")
    (st,) = b.build().subtopologies
    task = Task("0_0", st, 0, "speed", {}, _Discard(), ErrorPolicy(), lambda: 0)
    messages = [EmbeddedMessage("in", 0, i, None, line.encode(), i, None)
                for i, line in enumerate(lines)]
    started = time.perf_counter()
    for i in range(0, len(messages), batch):
        task.process("in", messages[i:i + batch])
    return len(messages) / (time.perf_counter() - started)


def model_rate(model: ml.Model, lines: Sequence[str], batch: int) -> float:
    """Records per second of ``predict_proba`` alone on already-parsed columns."""
    flights = [parse_line(line) for line in lines]
    batches = [columns(flights[i:i + batch], model.features)
               for i in range(0, len(flights), batch)]
    started = time.perf_counter()
    for cols in batches:
        model.predict_proba(cols)
    return len(flights) / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.airline.scoring_speed")
    p.add_argument("--model", type=Path, default=None, help="model file (default: train one)")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--backend", choices=EXPORTS, default=None,
                   help="export the (LightGBM) model to this backend first")
    args = p.parse_args(argv)
    model: ml.Model = ml.load_model(args.model) if args.model else train().model
    if args.backend is not None:
        if not isinstance(model, ml.LightGBMModel):
            p.error("--backend exports a LightGBM model; this file is of another type")
        model = export(model, args.backend)
    lines = read_lines()[:args.rows]
    print(f"model {model.name} {model.version}; {len(lines):,} rows; rows/s")
    print(f"{'batch':>6} {'operator':>10} {'columnwise':>11} {'model alone':>12}")
    for batch in (1, 10, 100, 1000):
        print(f"{batch:>6} {operator_rate(model, lines, batch):>10,.0f} "
              f"{operator_rate(model, lines, batch, columnwise=True):>11,.0f} "
              f"{model_rate(model, lines, batch):>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
