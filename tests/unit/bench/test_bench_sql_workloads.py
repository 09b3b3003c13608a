"""The bench workloads written in SQL (the ``fluvial-sql`` system) compute what their DSL
versions compute: the same generated input through both topologies on the TestDriver, the
SQL outputs accepted by the workload's own tracker (the harness's check) and equal to the
DSL's outputs."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from bench import workloads

import fluvial
from fluvial.sql import Engine

RECORDS = 600


def outputs(topology: Any, inputs: list[workloads.Input]) -> list[tuple[bytes, bytes]]:
    with fluvial.TestDriver(topology) as driver:
        source = driver.input_topic("in", "bytes", "bytes")
        sink = driver.output_topic("out", "bytes", "bytes")
        for record in inputs:
            source.pipe(record.value, key=record.key, timestamp=record.index)
        return [(r.key, r.value) for r in sink.read_records()]


def run_both(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[
        workloads.Workload, list[workloads.Input], list[tuple[bytes, bytes]],
        list[tuple[bytes, bytes]]]:
    monkeypatch.setenv("BENCH_INPUT", "in")
    monkeypatch.setenv("BENCH_OUTPUT", "out")
    w = workloads.get(name)
    inputs = w.generate(random.Random(7), 0, RECORDS, 4)
    engine = Engine()
    engine.execute(w.sql_script("in", "out", 4, "app"))
    return w, inputs, outputs(w.fluvial_topology(), inputs), outputs(engine.topology(), inputs)


def accepted(w: workloads.Workload, inputs: list[workloads.Input],
             out: list[tuple[bytes, bytes]]) -> workloads.Tracker:
    tracker = w.tracker()
    for record in inputs:
        tracker.expect(record, None)
    for key, value in out:
        tracker.seen(key, value, 0)
    assert tracker.bad == [] and tracker.pending() == 0 and tracker.duplicates == 0
    return tracker


def last_per_key(out: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return dict(out)


def test_stateless_sql_passes_the_same_records_with_the_same_fields(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w, inputs, dsl, sql = run_both("stateless", monkeypatch)
    accepted(w, inputs, sql)
    assert [k for k, _ in sql] == [k for k, _ in dsl] and len(sql) > RECORDS // 3
    for (_, a), (_, b) in zip(dsl, sql, strict=True):
        ours, theirs = orjson.loads(a), orjson.loads(b)
        # ROUND is ksqlDB's (half up on the decimal value), the DSL's Python's round (on the
        # binary double): a product ending in 5 at the third decimal may differ by a cent
        # (10 of 2,887 outputs of 5,000 inputs)
        assert abs(ours.pop("amount_eur") - theirs.pop("amount_eur")) < 0.0101
        assert ours == theirs


@pytest.mark.parametrize("name", ["wordcount", "windowed"])
def test_counting_sql_reaches_the_dsls_final_counts(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    w, inputs, dsl, sql = run_both(name, monkeypatch)
    tracker = accepted(w, inputs, sql)
    assert tracker.expected_outputs() > 100
    assert last_per_key(sql) == last_per_key(dsl)
