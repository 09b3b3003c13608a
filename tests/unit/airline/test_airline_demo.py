"""The airline demo: its model cache, the stream it replays, and a short run end to end on
the embedded broker."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from examples.airline import demo
from examples.airline.flights import HEADER, LABEL, parse_line
from examples.airline.train import train

from fluvial import ml


def write_data(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="latin-1", newline="") as f:
        f.write(HEADER + "\n" + "\n".join(lines) + "\n")
    return path


def test_the_model_is_trained_once_then_reused_until_the_data_changes(
        tmp_path: Path, flight_lines: list[str]) -> None:
    data = write_data(tmp_path / "a.csv.gz", flight_lines[:1500])
    cache = tmp_path / "cache" / "model.json"
    said: list[str] = []
    first, trained = demo.load_or_train(cache, data, say=said.append)
    assert trained and cache.exists() and "trained airline-delay" in said[-1]
    again, trained = demo.load_or_train(cache, data, say=said.append)
    assert not trained and again.version == first.version
    data = write_data(tmp_path / "a.csv.gz", flight_lines[1500:3000])
    other, trained = demo.load_or_train(cache, data, say=said.append)
    assert trained and "other data" in said[-2] and other.version != first.version
    cache.write_text("not a model")
    _, trained = demo.load_or_train(cache, data, say=said.append)
    assert trained and "does not load" in said[-2]
    _, trained = demo.load_or_train(cache, data, retrain=True, say=said.append)
    assert trained


def test_held_out_rows_are_the_models_test_split(flight_lines: list[str]) -> None:
    lines = flight_lines[:3000]
    model = train(lines, seed=5, trees=5, num_leaves=7, threads=1).model
    held = sorted(demo.held_out_lines(lines, model))
    assert len(held) == model.info.metrics["test_rows"] == 600
    flights = [parse_line(lines[i]) for i in held]
    p = model.predict_proba({f: [x[f] for x in flights] for f in model.features})
    labels = np.array([x[LABEL] for x in flights])
    assert ml.roc_auc(labels, p) == pytest.approx(model.info.metrics["test_auc"], abs=1e-6)


def test_the_stream_mixes_in_malformed_and_odd_lines(flight_lines: list[str]) -> None:
    data = flight_lines[:1000]
    s = demo.make_stream(data, held_out={0, 5})
    assert len(s.lines) == 1000 + len(demo.MALFORMED) + len(demo.ODD)
    assert s.count("data") == 1000
    assert s.count("malformed") == len(demo.MALFORMED) and s.count("odd") == len(demo.ODD)
    assert s.lines[0] == demo.REFERENCE == data[0]  # the talk's row comes first
    assert [line for line, k in zip(s.lines, s.kinds, strict=True) if k == "data"] == data
    assert sum(s.held_out) == 2 and s.held_out[0]
    for line, kind in zip(s.lines, s.kinds, strict=True):
        if kind == "malformed":
            with pytest.raises(ValueError):
                parse_line(line)
        else:
            parse_line(line)
    plain = demo.make_stream(data[:10], inject=False)
    assert plain.lines == data[:10]
    tiny = demo.make_stream(data[:2])  # more lines to inject than flights: all still there
    assert len(tiny.lines) == 2 + len(demo.MALFORMED) + len(demo.ODD)


def test_short_reason() -> None:
    error = ("application 'a' task 0_7: score-flights: featurize failed on topic 'In' "
             "partition 7 offset 549: MalformedFlight: expected 31 columns, got 2")
    assert demo.short_reason(error) == "MalformedFlight: expected 31 columns, got 2"
    assert demo.short_reason("something else") == "something else"


def test_the_demo_runs_on_the_embedded_broker(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = demo.main(["--limit", "1500", "--no-progress", "--model-cache",
                      str(tmp_path / "model.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Flight Input: 1987,10,14,3,741,730,912,849,PS,1451" in out
    assert "Label (aka prediction) is flight departure delayed: " in out
    assert "records scored          1,502 of 1,502 expected" in out
    assert "dead-lettered           5 of 5 malformed lines" in out
    assert "MalformedFlight: empty line" in out
    assert "lost / duplicated       0 / 0" in out
    assert "held out from training" in out and "accuracy" in out and "AUC" in out


def test_workers_need_a_cluster() -> None:
    with pytest.raises(SystemExit):
        demo.main(["--workers", "3"])
