"""Train the flight-delay model: LightGBM on the talk model's 11 features → IsDepDelayed.

    python -m examples.airline.train [--data FILE] [--out FILE] [--seed 42] [--trees 100] ...
        [--export lightgbm|compiled|onnx]

The flights are split by a seeded permutation into fit / validation / test (``split``): the
model is fit on the first, the decision threshold chosen on the second (best accuracy), AUC
and accuracy reported on the third, which the model never saw. The same seed, data and
thread count give the same model, byte for byte (but for ``training.trained_at``). The file
written is a fluvial model file (docs/ml.md): load it with ``fluvial.ml.load_model``, publish
it with ``fluvial.ml.publish_model``. ``--export compiled`` writes the same trees as a
``lightgbm-compiled`` file (and compiles it into the cache, so that a service on this machine
loads it at once), ``--export onnx`` as an ONNX model (docs/ml.md, "Backends").
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from examples.airline.flights import (
    CATEGORICAL,
    DATA_FILE,
    FEATURES,
    LABEL,
    columns,
    file_sha256,
    parse_lines,
    read_lines,
)
from fluvial.ml import (
    LightGBMModel,
    MatrixModel,
    accuracy,
    best_threshold,
    encode,
    fit_categories,
    roc_auc,
)

MODEL_NAME = "airline-delay"
DEFAULT_OUT = Path("build/models/airline-delay.json")
EXPORTS = ("lightgbm", "compiled", "onnx")


@dataclass
class Trained:
    model: LightGBMModel
    metrics: dict[str, Any]


def split(n: int, seed: int, test_size: float = 0.2,
          validation_size: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (fit, validation, test): ``test_size`` of all rows for test, then
    ``validation_size`` of the rest for validation, from one seeded permutation."""
    if not 0 < test_size < 1 or not 0 <= validation_size < 1:
        raise ValueError("test_size must be in (0, 1) and validation_size in [0, 1)")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_size))
    n_val = round((n - n_test) * validation_size)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def lightgbm_params(seed: int, threads: int, num_leaves: int,
                    learning_rate: float) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_data_in_leaf": 20,
        "max_cat_to_onehot": 4,
        "cat_smooth": 10.0,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }


def train(lines: Sequence[str] | None = None, *, data: str | Path = DATA_FILE,
          seed: int = 42, test_size: float = 0.2, validation_size: float = 0.2,
          trees: int = 100, num_leaves: int = 31, learning_rate: float = 0.1, threads: int = 2,
          threshold: float | None = None, name: str = MODEL_NAME, version: str | None = None,
          trained_at: str | None = None) -> Trained:
    """Train on ``lines`` (CSV lines of the data file) or on the file ``data``."""
    import lightgbm

    if lines is None:
        lines = read_lines(data)
        data_sha256 = file_sha256(data)
        source = Path(data).name
    else:
        data_sha256 = hashlib.sha256("\n".join(lines).encode("latin-1")).hexdigest()
        source = f"{len(lines)} lines"
    flights, errors = parse_lines(lines)
    labelled = [f for f in flights if f[LABEL] is not None]
    if len(labelled) < 10:
        raise ValueError(f"too few labelled flights to train on: {len(labelled)}")
    fit_idx, val_idx, test_idx = split(len(labelled), seed, test_size, validation_size)

    def subset(idx: np.ndarray) -> tuple[dict[str, list[Any]], np.ndarray]:
        rows = [labelled[i] for i in idx]
        cols = columns(rows)
        return cols, np.asarray(cols[LABEL], dtype=bool)

    fit_cols, y_fit = subset(fit_idx)
    categories = fit_categories(fit_cols, CATEGORICAL)
    x_fit = encode(fit_cols, FEATURES, categories)
    params = lightgbm_params(seed, threads, num_leaves, learning_rate)
    dataset = lightgbm.Dataset(x_fit, label=y_fit.astype(np.float64),
                               feature_name=list(FEATURES),
                               categorical_feature=[FEATURES.index(c) for c in CATEGORICAL],
                               params={"verbosity": -1, "seed": seed}, free_raw_data=True)
    started = time.perf_counter()
    booster = lightgbm.train(params, dataset, num_boost_round=trees)
    fit_seconds = time.perf_counter() - started

    def probabilities(cols: dict[str, list[Any]]) -> np.ndarray:
        return np.asarray(booster.predict(encode(cols, FEATURES, categories),
                                          num_threads=threads), dtype=np.float64)

    threshold_from = "given" if threshold is not None else "best validation accuracy"
    if threshold is None:
        if len(val_idx) == 0:
            threshold_from = "default (no validation rows)"
            threshold = 0.5
        else:
            val_cols, y_val = subset(val_idx)
            threshold = best_threshold(y_val, probabilities(val_cols))
    test_cols, y_test = subset(test_idx)
    p_test = probabilities(test_cols)
    metrics = {
        "test_rows": len(test_idx),
        "test_auc": round(roc_auc(y_test, p_test), 6),
        "test_accuracy": round(accuracy(y_test, p_test, threshold), 6),
        "test_accuracy_at_0.5": round(accuracy(y_test, p_test, 0.5), 6),
        "test_positive_rate": round(float(y_test.mean()), 6),
    }
    training = {
        "data": source,
        "data_sha256": data_sha256,
        "rows": len(lines),
        "malformed_rows": len(errors),
        "fit_rows": len(fit_idx),
        "validation_rows": len(val_idx),
        "test_rows": len(test_idx),
        "seed": seed,
        "test_size": test_size,
        "validation_size": validation_size,
        "trees": trees,
        "params": params,
        "threshold_from": threshold_from,
        "trained_at": trained_at or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    model = LightGBMModel.from_booster(booster, name=name, features=FEATURES,
                                       categories=categories, threshold=threshold,
                                       version=version, metrics=metrics, training=training)
    metrics = {**metrics, "fit_seconds": round(fit_seconds, 3)}
    return Trained(model, metrics)


def export(model: LightGBMModel, backend: str) -> MatrixModel:
    """The trained model for a scoring backend: ``lightgbm`` (itself), ``compiled`` (compiled
    now, into the cache) or ``onnx``; the version says which (``<version>-compiled``)."""
    if backend == "lightgbm":
        return model
    if backend == "compiled":
        from fluvial.ml.compiled import CompiledTreeModel

        return CompiledTreeModel.from_lightgbm(model)
    if backend == "onnx":
        from fluvial.ml.onnx import OnnxModel

        return OnnxModel.from_lightgbm(model)
    raise ValueError(f"backend {backend!r} is not one of {', '.join(EXPORTS)}")


def export_path(out: Path, backend: str) -> Path:
    """``airline-delay.json`` → ``airline-delay.compiled.json`` (the default file names)."""
    return out if backend == "lightgbm" else out.with_suffix(f".{backend}.json")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.airline.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA_FILE, help="CSV(.gz) data file")
    p.add_argument("--out", type=Path, default=None, help="model file to write (default "
                   f"{DEFAULT_OUT}, or .compiled.json / .onnx.json with --export)")
    p.add_argument("--export", choices=EXPORTS, default="lightgbm",
                   help="scoring backend of the file written (default lightgbm)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--test-size", type=float, default=0.2, help="share of rows held out")
    p.add_argument("--validation-size", type=float, default=0.2,
                   help="share of the remaining rows for choosing the threshold")
    p.add_argument("--trees", type=int, default=100, help="boosting rounds")
    p.add_argument("--num-leaves", type=int, default=31)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2, help="LightGBM threads (fixed: "
                   "the result depends on it)")
    p.add_argument("--threshold", type=float, default=None,
                   help="decision threshold on P(delayed) (default: best validation accuracy)")
    p.add_argument("--name", default=MODEL_NAME, help="model name (its models-topic key)")
    p.add_argument("--version", default=None,
                   help="version string (default: a hash of the model)")
    args = p.parse_args(argv)
    if not args.data.exists():
        p.error(f"no data file {args.data}")
    started = time.perf_counter()
    result = train(data=args.data, seed=args.seed, test_size=args.test_size,
                   validation_size=args.validation_size, trees=args.trees,
                   num_leaves=args.num_leaves, learning_rate=args.learning_rate,
                   threads=args.threads, threshold=args.threshold, name=args.name,
                   version=args.version)
    exported = export(result.model, args.export)
    path = exported.save(args.out or export_path(DEFAULT_OUT, args.export))
    m, info = result.metrics, result.model.info
    print(f"trained {info.name} version {info.version} on {info.training['fit_rows']} flights "
          f"({info.training['trees']} trees, seed {args.seed}) in "
          f"{time.perf_counter() - started:.1f}s")
    print(f"held-out {m['test_rows']} flights: AUC {m['test_auc']:.4f}, accuracy "
          f"{m['test_accuracy']:.4f} at threshold {info.threshold} "
          f"({m['test_accuracy_at_0.5']:.4f} at 0.5; {m['test_positive_rate']:.1%} delayed)")
    print(f"wrote {path} ({path.stat().st_size:,} bytes; type {exported.info.type}, version "
          f"{exported.version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
