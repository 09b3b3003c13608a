"""Repeated cases: one figure per system x workload from several runs (the median).

The machines these run on are shared and noisy: one run of a case can lose a third of its
throughput, or gain a 200 ms tail, to something else on the box. Cases are therefore run in
rounds (every system once per round, so a slow minute hits all of them alike) and each
figure is the median over the rounds; every run's own figures stay in ``repeats``.
"""

from __future__ import annotations

import statistics
from typing import Any

#: figures taken as the median of the runs that finished ("ok" or "partial")
_TOP = ("throughput", "seconds", "peak_rss_mb", "cpu_s_per_m", "startup_s")
_LATENCY = ("p50_ms", "p99_ms", "max_ms", "mean_ms")


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """One run's headline figures, kept beside the median."""
    lat = run.get("latency", {})
    return {"status": run["status"], "throughput": run.get("throughput"),
            "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"),
            "cpu_s_per_m": run.get("cpu_s_per_m"), "peak_rss_mb": run.get("peak_rss_mb")}


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One case from its runs: medians of the finished runs, or the first failure if none."""
    if len(runs) == 1:
        return runs[0]
    done = [r for r in runs if r["status"] in ("ok", "partial")]
    if not done:
        return {**runs[0], "repeats": [summary(r) for r in runs]}
    by_throughput = sorted(done, key=lambda r: r.get("throughput") or 0.0)
    merged = dict(by_throughput[len(by_throughput) // 2])  # the median run, for the rest
    for name in _TOP:
        merged[name] = _median([r.get(name) for r in done])
    latencies = [r["latency"] for r in done if "latency" in r]
    if latencies:
        merged["latency"] = {**latencies[0],
                             **{name: _median([lat.get(name) for lat in latencies])
                                for name in _LATENCY}}
    if any(r["status"] == "partial" for r in done):
        merged["status"] = "partial"
    merged["repeats"] = [summary(r) for r in runs]
    return merged
