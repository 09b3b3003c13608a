"""Scoring counters as Prometheus metrics, served by ``fluvial run --http-port``'s /metrics.

One collector in prometheus_client's default registry reads every live ``ScoringMetrics``
when scraped, labelled by operator name; nothing is counted twice for it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fluvial.ml.scoring import ScoringMetrics


class _ScoringCollector(Collector):
    def __init__(self) -> None:
        self._tracked: weakref.WeakKeyDictionary[ScoringMetrics, str] = \
            weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def track(self, operator: str, metrics: ScoringMetrics) -> None:
        with self._lock:
            self._tracked[metrics] = operator

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            tracked = list(self._tracked.items())
        labels = ["operator"]
        scored = CounterMetricFamily("fluvial_ml_records_scored", "Records scored", labels=labels)
        failed = CounterMetricFamily("fluvial_ml_records_failed",
                                     "Records handed to the error policy", labels=labels)
        swaps = CounterMetricFamily("fluvial_ml_model_swaps",
                                    "Model changes between batches", labels=labels)
        agreement = GaugeMetricFamily("fluvial_ml_shadow_agreement_ratio",
                                      "Share of shadow-scored records whose label matched",
                                      labels=labels)
        version = GaugeMetricFamily("fluvial_ml_model_info", "The model version in use (1)",
                                    labels=[*labels, "version"])
        for metrics, operator in tracked:
            scored.add_metric([operator], metrics.scored)
            failed.add_metric([operator], metrics.failed)
            swaps.add_metric([operator], metrics.swaps)
            if metrics.agreement_rate is not None:
                agreement.add_metric([operator], metrics.agreement_rate)
            if metrics.model_version is not None:
                version.add_metric([operator, metrics.model_version], 1.0)
        yield from (scored, failed, swaps, agreement, version)


_collector = _ScoringCollector()
REGISTRY.register(_collector)


def track(operator: str, metrics: ScoringMetrics) -> None:
    """Export ``metrics`` (weakly held: it goes when its topology goes)."""
    _collector.track(operator, metrics)
