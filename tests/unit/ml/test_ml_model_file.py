"""The model file, the Model interface for other model types, encoding, metrics."""

from __future__ import annotations

import gzip
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from examples.airline.train import Trained

from fluvial import StreamsBuilder, TestDriver
from fluvial.ml import (
    LightGBMModel,
    Model,
    ModelError,
    ModelInfo,
    accuracy,
    best_threshold,
    encode,
    fit_categories,
    load_model,
    read_envelope,
    register_model_type,
    roc_auc,
    score,
)
from fluvial.ml.model import dump_envelope


def test_save_and_load_from_path_bytes_and_gzip(small: Trained, tmp_path: Path) -> None:
    model = small.model
    path = model.save(tmp_path / "deep" / "m.json")
    data = path.read_bytes()
    assert data == model.to_bytes()
    for source in (path, str(path), data, gzip.compress(data)):
        loaded = LightGBMModel.load(source)
        assert loaded.version == model.version and loaded.threshold == model.threshold
    assert isinstance(load_model(path), LightGBMModel)
    assert isinstance(model, Model)


@pytest.mark.parametrize(("data", "message"), [
    (b"not json", "not JSON"),
    (b"[]", "not a fluvial model file"),
    (b'{"format": "fluvial-model", "format_version": 9}', "format_version 9"),
    (b'{"format": "fluvial-model", "format_version": 1, "type": "x"}', "lacks name"),
    (b"\x1f\x8bnot gzip", "bad gzip"),
])
def test_malformed_files_say_why(data: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_model(data)


def _info(**kw: Any) -> ModelInfo:
    return ModelInfo(**{"type": "constant", "name": "c", "version": "1", "features": ("x",),
                        "threshold": 0.5, **kw})


def test_an_unknown_type_or_a_broken_payload_is_refused(small: Trained) -> None:
    with pytest.raises(ModelError, match="model type 'nope' is unknown"):
        load_model(dump_envelope(_info(type="nope"), ""))
    bad = orjson.loads(small.model.to_bytes())
    bad["model"] = "not a lightgbm model"
    with pytest.raises(ModelError, match="LightGBM cannot read"):
        load_model(orjson.dumps(bad))
    with pytest.raises(ModelError, match="not 'lightgbm'"):
        LightGBMModel.load(dump_envelope(_info(), ""))
    with pytest.raises(ModelError, match="must name 2 classes"):
        read_envelope(dump_envelope(_info(classes=("a", "b", "c")), ""))
    with pytest.raises(ModelError, match="unknown features"):
        read_envelope(dump_envelope(_info(categories={"y": ["a"]}), ""))


class Constant:
    """Another model type: P(positive) = x * weight, weight from the payload."""

    def __init__(self, info: ModelInfo, payload: str) -> None:
        self.name, self.version = info.name, info.version
        self.features, self.threshold = info.features, info.threshold
        self.weight = float(payload)

    def predict_proba(self, batch: Any) -> np.ndarray:
        return np.asarray(batch["x"], dtype=np.float64) * self.weight


def test_another_model_type_plugs_in() -> None:
    register_model_type("constant", Constant)
    model = load_model(dump_envelope(_info(version="w2"), "0.25"))
    assert isinstance(model, Constant) and isinstance(model, Model)
    b = StreamsBuilder()
    score(b.stream("in"), model, output=lambda v, p: [p.probability, p.label]).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_list([{"x": 1}, {"x": 3}])
        assert d.output_topic("out").read_values() == [[0.25, "NO"], [0.75, "YES"]]


def test_encode_numbers_categories_missing_and_unseen() -> None:
    cats = {"c": ["a", "b"]}
    x = encode({"n": [1, None, 2.5], "c": ["b", "zz", None]}, ["n", "c"], cats)
    assert x.shape == (3, 2) and x.dtype == np.float64
    assert x[0].tolist() == [1.0, 1.0]
    assert math.isnan(x[1, 0]) and math.isnan(x[1, 1]) and math.isnan(x[2, 1])
    with pytest.raises(ModelError, match="'n' has 1 values, others 2"):
        encode({"c": ["a", "b"], "n": [1]}, ["c", "n"], cats)
    with pytest.raises(ModelError, match="'n' needs numbers"):
        encode({"n": ["x"]}, ["n"], {})
    assert fit_categories({"c": ["b", None, "a", "b"]}, ["c"]) == {"c": ["a", "b"]}


def test_auc_matches_counting_pairs() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300) + y * 0.3, 1)  # many ties
    pairs = [(p, n) for p, n in itertools.product(s[y], s[~y])]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(y, s) == pytest.approx(expected, abs=1e-12)
    assert roc_auc([True, False], [0.9, 0.1]) == 1.0
    with pytest.raises(ValueError, match="both"):
        roc_auc([True, True], [0.1, 0.2])


def test_accuracy_and_threshold() -> None:
    y = np.array([True, True, False, False])
    s = np.array([0.9, 0.45, 0.4, 0.1])
    assert accuracy(y, s, 0.5) == 0.75
    t = best_threshold(y, s)
    assert 0.4 < t <= 0.45 and accuracy(y, s, t) == 1.0
    assert best_threshold(y, np.array([0.9, 0.9, 0.1, 0.1])) == 0.5  # nearest 0.5 wins ties
