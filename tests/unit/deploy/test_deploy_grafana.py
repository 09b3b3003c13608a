"""deploy/grafana/fluvial.json: Grafana's dashboard shape, and every PromQL expression in it
names only metrics a running fluvial instance exports (scraped from a real App's /metrics
on the embedded broker), filtering on labels it has."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from examples.wordcount.app import INPUT, OUTPUT, build
from prometheus_client.parser import text_string_to_metric_families

from fluvial.io.embedded import EmbeddedBroker
from fluvial.ml import exporter
from fluvial.ml.scoring import ScoringMetrics
from fluvial.runtime.app import App
from fluvial.server import AppServer

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "fluvial.json"

# What Prometheus adds to every scraped series (its target labels), beside the exported ones.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "container", "endpoint"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "rate", "irate", "increase", "delta", "idelta", "deriv", "abs",
    "clamp_min", "clamp_max", "histogram_quantile", "label_replace", "vector", "scalar",
    "time", "absent", "changes", "resets", "avg_over_time", "max_over_time",
    "min_over_time", "sum_over_time", "label_values",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*"\s*')
GRID_COLUMNS = 24


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions(dash: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' targets and the templating queries."""
    found = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for variable in dash["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["query"]["query"])
    return found


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names matched) of each selector. Every metric is written with a
    matcher, so a bare name (which this cannot tell from a function) is refused."""
    found = []
    for name, matchers in SELECTOR.findall(expr):
        labels = set()
        for matcher in filter(None, matchers.split(",")):
            m = MATCHER.fullmatch(matcher)
            assert m, f"{expr}: matcher {matcher!r}"
            labels.add(m.group(1))
        found.append((name, labels))
    rest = SELECTOR.sub(" ", expr)
    rest = re.sub(r"\[[^]]*\]", " ", rest)                      # range selectors
    rest = re.sub(r"\b(by|without)\s*\([^)]*\)", " ", rest)       # grouping labels
    rest = re.sub(r",\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$", ")", rest)  # label_values(m, LABEL)
    bare = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rest)) - PROMQL_WORDS
    assert not bare, f"{expr}: {sorted(bare)} is not a function (a metric needs a matcher)"
    return found


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The samples a running wordcount instance exports, and a scoring operator's (the
    exporter fluvial.ml registers, fed as a ``score`` step feeds it): name -> its labels."""
    scoring = ScoringMetrics(batches=1, scored=3, failed=1, swaps=1, model_version="v2",
                             shadow_version="v3", shadow_scored=2, shadow_agreed=1)
    exporter.track("score", scoring)
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 2)
    broker.create_topic(OUTPUT, 2)
    app = App(build(), "wc", broker=broker, state_dir=tmp_path_factory.mktemp("state"))
    server = AppServer(app, host="127.0.0.1", port=0).start()
    try:
        app.start()
        broker.append(INPUT, None, b"a b", 1)
        deadline = time.monotonic() + 20
        while app.store("counts").get("b") != 1:
            assert time.monotonic() < deadline, "the app never counted"
            time.sleep(0.01)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics",
                                    timeout=5) as response:
            body = response.read().decode()
    finally:
        app.close()
        server.stop()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_the_file_has_grafana_s_dashboard_shape() -> None:
    dash = dashboard()
    assert {"title", "uid", "panels", "schemaVersion", "templating", "time"} <= set(dash)
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dash["uid"])
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    occupied: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        assert panel["type"] in {"row", "stat", "timeseries", "gauge", "table"}, panel["type"]
        assert panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"}
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']!r} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    for name in re.findall(r"\$\{?([a-zA-Z_]+)", json.dumps(dash)):
        assert name in variables or name.startswith("__"), f"${name} is not a variable"


def test_every_expression_names_only_exported_metrics_and_labels(
        scraped: dict[str, set[str]]) -> None:
    used: set[str] = set()
    for expr in expressions(dashboard()):
        found = selectors(expr)
        assert found, f"{expr}: no metric"
        for name, labels in found:
            assert name in scraped, f"{expr}: {name} is not in a fluvial instance's /metrics"
            assert labels <= scraped[name] | TARGET_LABELS, f"{expr}: labels {labels}"
            used.add(name)
    fluvial_families = {n for n in scraped if n.startswith("fluvial_")
                        and not n.endswith("_created")}
    assert fluvial_families <= used, f"not on the dashboard: {fluvial_families - used}"


def test_the_check_refuses_a_metric_fluvial_does_not_export(
        scraped: dict[str, set[str]]) -> None:
    (name, _), = selectors('sum(rate(fluvial_records_consumd_total{instance=~"$x"}[5m]))')
    assert name not in scraped
    with pytest.raises(AssertionError, match="is not a function"):
        selectors("sum(rate(fluvial_records_consumed_total[5m]))")
