"""Prometheus metrics read from the runtime's own counters when scraped.

Nothing is counted per record for the sake of metrics: the collector reads the totals the
loop keeps anyway, so an idle scrape costs the hot path nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fluvial.runtime.app import App


class AppCollector(Collector):
    def __init__(self, app: App) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        app_id = self._app.config.application_id
        thread = self._app.stream_thread
        labels = ["application_id"]

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"fluvial_{name}", doc, labels=labels)
            family.add_metric([app_id], value)
            return family

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"fluvial_{name}", doc, labels=labels)
            family.add_metric([app_id], value)
            return family

        yield gauge("up", "1 while the processing loop runs", 1.0 if self._app.running else 0.0)
        if thread is None:
            return
        yield counter("records_consumed", "Records consumed and processed", thread.processed)
        yield counter("records_produced", "Records sent by sinks (outputs, repartition, "
                      "dead letters)", thread.collector.sent)
        yield counter("commits", "Commits (transactions under exactly-once)", thread.commits)
        yield counter("transaction_aborts", "Aborted transactions", thread.aborts)
        yield counter("records_restored", "Changelog records replayed into stores",
                      sum(n for per_task in thread.restored.values() for n in per_task.values()))
        yield counter("records_skipped", "Records skipped or dead-lettered by the error policy "
                      "(tasks now assigned)",
                      sum(a.task.skipped for a in thread.tasks.values()))
        yield counter("records_dropped", "Records operators dropped by their semantics: late "
                      "for a closed window, a null key (tasks now assigned)",
                      sum(a.task.dropped for a in thread.tasks.values()))
        yield gauge("tasks_assigned", "Tasks this instance runs", len(thread.tasks))
        yield gauge("tasks_restoring", "Tasks assigned here whose stores are catching up with "
                    "their changelogs", len(thread.restoring))
        yield gauge("last_poll_age_seconds", "Seconds since the loop last polled",
                    time.monotonic() - thread.last_poll)
