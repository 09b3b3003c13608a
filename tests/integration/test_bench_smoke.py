"""The benchmark harness's smoke test: fluvial (its DSL and its SQL) and the ceiling on every
workload, tiny sizes.

Benchmarks are not timed tests (issue 5): this only checks that each runner starts, processes
every input and produces the expected outputs on the session's real broker. The peers (Quix,
Faust, Java Kafka Streams) live in bench/.venv and bench/java and are checked by
``make bench-smoke``, never here.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from bench import workloads
from bench.driver import Settings, run_case
from bench.runners.base import Runner
from bench.runners.ceiling import CeilingRunner
from bench.runners.fluvial import FluvialRunner
from bench.runners.fluvial_sql import FluvialSqlRunner
from tests.integration.kafka_helpers import KafkaTestBroker

REPO = Path(__file__).resolve().parents[2]
SMOKE = Settings(records=300, rate=200, latency_seconds=1.0, warmup=8, startup_timeout=60.0,
                 latency_drain_timeout=30.0, throughput_cap=30.0)


CASES = [(system, workload)
         for workload in ["stateless", "wordcount", "airline", "airline-per-record"]
         for system in ["fluvial-1w", "ceiling"]] + [("fluvial-1w", "windowed")] + [
            (system, "nexmark-q1") for system in ["fluvial-1w", "ceiling"]] + [
            ("fluvial-sql", workload) for workload in ["stateless", "wordcount", "windowed"]]


def runner_of(system: str) -> Runner:
    if system == "fluvial-1w":
        return FluvialRunner(sys.executable, REPO, workers=1)
    if system == "fluvial-sql":
        return FluvialSqlRunner(sys.executable, REPO)
    return CeilingRunner(sys.executable, REPO)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("system", "workload"), CASES)
def test_runner_processes_every_input(kafka: KafkaTestBroker, tmp_path: Path, system: str,
                                      workload: str) -> None:
    runner = runner_of(system)
    w = workloads.get(workload)
    result = run_case(runner, w, SMOKE, kafka.bootstrap_servers, tmp_path,
                      f"smoke{uuid.uuid4().hex[:6]}")
    log = Path(tmp_path / f"{system}-{workload}.log")
    detail = f"{result}\n--- log ---\n{log.read_text() if log.is_file() else ''}"
    assert result["status"] == "ok", detail
    assert result["pending"] == 0, detail
    assert result["duplicates"] == 0, detail
    assert "bad_outputs" not in result, detail
    assert result["expected_outputs"] > 0, detail
    if workload in ("wordcount", "windowed"):  # every final count, at least (caches skip some)
        assert result["outputs"] >= result["expected_outputs"], detail
    else:  # one output per record (stateless: per record that passes the filter)
        assert result["outputs"] == result["expected_outputs"], detail
    assert result["throughput"] > 0 and result["latency"]["samples"] > 0, detail
    assert result["latency"]["sustained"], detail


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workload", ["nexmark-q5", "nexmark-q8"])
def test_nexmark_event_query_output_checked(kafka: KafkaTestBroker, tmp_path: Path,
                                            workload: str) -> None:
    """A query over the per-type topics (a repartition and windows; a windowed join): every
    event processed, and the whole output equal to the reference (bench.nexmark.harness)."""
    w = workloads.get(workload)
    result = w.run_case(runner_of("fluvial-1w"), Settings(records=3000, warmup=8,
                                                          startup_timeout=60.0,
                                                          throughput_cap=60.0),
                        kafka.bootstrap_servers, tmp_path, f"smoke{uuid.uuid4().hex[:6]}")
    log = Path(tmp_path / f"fluvial-1w-{workload}.log")
    detail = f"{result}\n--- log ---\n{log.read_text() if log.is_file() else ''}"
    assert result["status"] == "ok", detail
    assert result["check"].startswith("ok: "), detail
    assert result["expected_outputs"] > 0 and result["throughput"] > 0, detail
