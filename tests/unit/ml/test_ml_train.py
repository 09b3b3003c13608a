"""Training: deterministic given a seed; metadata in the model file; the CLI."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import lightgbm
import orjson
import pytest
from examples.airline.flights import CATEGORICAL, FEATURES, HEADER
from examples.airline.train import Trained, main, split, train

from fluvial.ml import LightGBMModel, load_model, read_envelope


def test_same_seed_same_model_bytes(lines: list[str], settings: dict[str, Any]) -> None:
    a = train(lines[:2000], **settings)
    b = train(lines[:2000], **settings)
    assert a.model.to_bytes() == b.model.to_bytes()
    assert a.model.version == b.model.version
    assert {k: v for k, v in a.metrics.items() if k != "fit_seconds"} == \
           {k: v for k, v in b.metrics.items() if k != "fit_seconds"}


def test_another_seed_gives_another_version(lines: list[str], settings: dict[str, Any]) -> None:
    a = train(lines[:2000], **settings)
    b = train(lines[:2000], **{**settings, "seed": 99})
    assert a.model.version != b.model.version


def test_the_split_is_seeded_and_disjoint() -> None:
    fit, val, test = split(1000, seed=1, test_size=0.2, validation_size=0.25)
    assert (len(fit), len(val), len(test)) == (600, 200, 200)
    assert len(set(fit) | set(val) | set(test)) == 1000
    assert (split(1000, seed=1)[2] == split(1000, seed=1)[2]).all()
    with pytest.raises(ValueError):
        split(10, seed=1, test_size=0)


def test_the_model_file_carries_its_metadata(small: Trained) -> None:
    model = small.model
    info, payload = read_envelope(model.to_bytes())
    assert info.type == "lightgbm" and info.name == "airline-delay"
    assert info.features == FEATURES
    assert set(info.categories) == set(CATEGORICAL)
    assert "PS" in info.categories["UniqueCarrier"]
    assert 0.05 <= info.threshold <= 0.95
    assert 0.5 < info.metrics["test_auc"] <= 1.0
    assert 0 < info.metrics["test_accuracy"] <= 1.0
    assert len(info.training["data_sha256"]) == 64
    assert info.training["trained_at"] == "2024-01-01T00:00:00+00:00"
    assert info.training["lightgbm_version"] == lightgbm.__version__
    assert info.training["fit_rows"] + info.training["validation_rows"] + \
        info.training["test_rows"] == 3000
    assert payload.startswith("tree")
    doc = orjson.loads(model.to_bytes())
    assert doc["format"] == "fluvial-model" and doc["format_version"] == 1
    again = load_model(model.to_bytes())
    assert isinstance(again, LightGBMModel) and again.version == model.version


def test_a_given_threshold_and_version_are_kept(lines: list[str],
                                                settings: dict[str, Any]) -> None:
    t = train(lines[:1000], **{**settings, "threshold": 0.445}, version="v7")
    assert t.model.threshold == 0.445 and t.model.version == "v7"
    assert t.model.info.training["threshold_from"] == "given"


def test_the_cli_trains_and_writes_a_model_file(tmp_path: Path, lines: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "flights.csv.gz"
    data.write_bytes(gzip.compress(("\r\n".join([HEADER, *lines[:1500]]) + "\r\n")
                                   .encode("latin-1")))
    out = tmp_path / "m" / "model.json"
    assert main(["--data", str(data), "--out", str(out), "--trees", "5", "--seed", "3",
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "accuracy" in printed and str(out) in printed
    model = LightGBMModel.load(out)
    assert model.info.training["trees"] == 5 and model.info.training["seed"] == 3
    assert model.info.training["rows"] == 1500


def test_the_cli_refuses_a_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "nope.csv")])
