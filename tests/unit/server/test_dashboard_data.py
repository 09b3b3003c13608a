"""The dashboard's data over real HTTP, from two instances on the embedded broker: either
instance answers for the whole application (both instances' tasks, totals, dead letters with
their reasons); the token guards the data, a bad parameter is one clear 400."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.dashboard.app import INPUT, OUTPUT, build
from examples.wordcount.app import build as wordcount

from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime import changelog_reader
from fluvial.runtime.app import App
from fluvial.runtime.stores import StoreRestore
from fluvial.server import AppServer
from fluvial.server.topology_graph import topology_graph

TOKEN = "dash-t0ken"


def get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, Any, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={
        "Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(body) if "json" in kind else body, kind
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Content-Type", "")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.05)


def view(port: int, token: str | None = TOKEN) -> dict[str, Any]:
    status, body, _ = get(port, "/dashboard/data", token)
    assert status == 200, body
    return dict(body)


@contextlib.contextmanager
def two_instances(tmp_path: Path, partitions: int, tokens: tuple[str | None, str | None],
                  **settings: Any) -> Iterator[tuple[EmbeddedBroker, list[App], list[int]]]:
    """Instances a and b of the order-totals app, each with its HTTP server; yields the
    broker, the apps and their ports, and checks on the way out that neither failed."""
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, partitions)
    broker.create_topic(OUTPUT, partitions)
    apps, servers = [], []
    try:
        for name, token in zip(("a", "b"), tokens, strict=True):
            app = App(build(), "shop", broker=broker, state_dir=tmp_path / name,
                      commit_interval_ms=100, **settings)
            servers.append(AppServer(app, port=0, token=token).start())
            apps.append(app.start())
        yield broker, apps, [server.port for server in servers]
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
    assert [app.error for app in apps] == [None, None]


def test_either_instance_shows_the_whole_application(tmp_path: Path) -> None:
    with two_instances(tmp_path, 4, (TOKEN, TOKEN), on_error="dead_letter") as (
            broker, apps, (port_a, port_b)):
        wait_for(lambda: len(view(port_a)["instances"]) == 2
                 and all(i["tasks"] for i in view(port_a)["instances"]),
                 "instance a sees both instances with tasks")
        orders = [(f"c{i % 10}", {"amount": i}) for i in range(300)]
        for key, order in orders:
            broker.append(INPUT, key.encode(), json.dumps(order).encode())
        broker.append(INPUT, b"c3", b'{"amount": "lots"}')

        def settled() -> bool:
            instances = view(port_a)["instances"]
            return (sum(i["totals"]["processed"] for i in instances) == len(orders) + 1
                    and any(i["errors"] for i in instances))

        wait_for(settled, "a counts every record and the dead letter")
        body = view(port_a)
        assert body["application_id"] == "shop"
        assert body["viewed_from"] == f"127.0.0.1:{port_a}"
        assert body["unreachable"] == []
        instances = {i["instance"]: i for i in body["instances"]}
        assert set(instances) == {f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"}
        tasks = [t["id"] for i in instances.values() for t in i["tasks"]
                 if t["state"] == "running"]
        assert sorted(tasks) == ["0_0", "0_1", "0_2", "0_3"]  # each task on one instance
        assert sum(t["processed"] for i in instances.values() for t in i["tasks"]) == 301
        [error] = [e for i in instances.values() for e in i["errors"]]
        assert error["kind"] == "dead_letter"
        assert error["topic"] == INPUT and error["offset"] is not None
        assert "order without a whole-number amount: {'amount': 'lots'}" in error["reason"]
        assert sum(i["totals"]["skipped"] for i in instances.values()) == 1
        wait_for(lambda: sorted((s["store"], s["task"]) for i in view(port_a)["instances"]
                                for s in i["stores"])
                 == [("totals", f"0_{p}") for p in range(4)], "the stores' sizes")
        assert all(i["rebalances"]["count"] >= 1 for i in instances.values())
        assert body["graph"] == topology_graph(apps[0].topology, "shop")
        # the history samples the totals each second: it catches up with what was processed

        def sampled() -> bool:
            mine = view(port_a)["instances"][0]
            return bool(mine["history"]) and (mine["history"][-1]["processed"]
                                              == mine["totals"]["processed"] > 0)

        wait_for(sampled, "a sample of a's totals")
        # b answers for the whole application too
        assert {i["instance"] for i in view(port_b)["instances"]} == set(instances)


def test_standby_tasks_are_shown_with_the_instance_keeping_them(tmp_path: Path) -> None:
    with two_instances(tmp_path, 2, (None, None), num_standby_replicas=1) as (_, _, ports):

        def states() -> dict[str, dict[str, str]]:
            return {i["instance"]: {t["id"]: t["state"] for t in i["tasks"]}
                    for i in view(ports[0], token=None)["instances"]}

        wait_for(lambda: sorted(sorted(s.values()) for s in states().values())
                 == [["running", "standby"]] * 2, "a running task and a standby on each")
        a, b = states().values()
        assert {t for t, s in a.items() if s == "standby"} == {
            t for t, s in b.items() if s == "running"}  # a keeps b's task warm, and back


def test_a_restoring_task_shows_its_progress(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 2)
    broker.create_topic(OUTPUT, 2)
    for i in range(600):  # 600 customers: 600 changelog records to restore
        broker.append(INPUT, f"c{i}".encode(), json.dumps({"amount": i}).encode())

    def instance(name: str) -> tuple[App, AppServer]:
        app = App(build(), "shop", broker=broker, state_dir=tmp_path / name,
                  commit_interval_ms=100)
        return app, AppServer(app, port=0, token=TOKEN).start()

    first, server = instance("first")
    with first:
        wait_for(lambda: len(first.store("totals").to_dict()) == 600, "the first run")
    server.stop()
    # a slow restore (10 records a step, 40 ms each) on an instance with no local state
    monkeypatch.setattr(changelog_reader, "MAX_RECORDS", 10)
    step = StoreRestore.step

    def slow_step(self: StoreRestore, wait: float) -> bool:
        time.sleep(0.04)
        return step(self, wait)

    monkeypatch.setattr(StoreRestore, "step", slow_step)
    second, server = instance("second")
    seen: list[dict[str, Any]] = []

    def restoring_midway() -> bool:
        mine = view(server.port)["instances"][0]
        seen[:] = [t for t in mine["tasks"] if t["state"] == "restoring"
                   and 0 < t["applied"] < t["total"]]
        return bool(seen) and mine["state"] == "restoring"

    try:
        with second:
            wait_for(restoring_midway, "a task restoring, part of the way")
            assert seen[0]["total"] == sum(1 for i in range(600)
                                           if second.query("totals").partition_of(f"c{i}")
                                           == int(seen[0]["id"].split("_")[1]))
            wait_for(lambda: sorted(t["state"] for t in view(server.port)["instances"][0][
                "tasks"]) == ["running", "running"], "both tasks running")
    finally:
        server.stop()
    assert second.error is None


def test_an_instance_that_does_not_answer_is_listed_with_why(tmp_path: Path) -> None:
    # b is set up wrongly: another token
    with two_instances(tmp_path, 2, (TOKEN, "another-token")) as (_, _, (port_a, port_b)):
        wait_for(lambda: view(port_a)["unreachable"], "b listed as unreachable")
        body = view(port_a)
        assert [i["instance"] for i in body["instances"]] == [f"127.0.0.1:{port_a}"]
        [b] = body["unreachable"]
        assert b["instance"] == f"127.0.0.1:{port_b}"
        assert b["error"].startswith("HTTP 401: ") and "bearer token" in b["error"]


def test_the_graph_joins_sub_topologies_through_their_repartition_topic() -> None:
    graph = topology_graph(wordcount("lines", "counts-out"), "wc")
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    at = {n["id"]: (n["x"], n["y"]) for n in graph["nodes"]}
    edges = {tuple(e) for e in graph["edges"]}
    [repartition] = [n for n in kinds if n.startswith("topic:wc-") and "repartition" in n]
    into = [a for a, b in edges if b == repartition]
    out_of = [b for a, b in edges if a == repartition]
    assert [kinds[n] for n in into] == ["sink"] and [kinds[n] for n in out_of] == ["source"]
    assert {n for n, k in kinds.items() if k == "store"} == {"store:counts"}
    assert {n for n, k in kinds.items() if k == "topic"} == {
        "topic:lines", "topic:counts-out", repartition}
    # left to right as records flow: every edge goes to a later column
    assert all(at[a][0] < at[b][0] for a, b in edges)
    assert len(set(at.values())) == len(at)  # no two nodes in one place


def test_the_page_is_served_and_the_data_guarded(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 1)
    broker.create_topic(OUTPUT, 1)
    app = App(build(), "shop", broker=broker, state_dir=tmp_path)
    server = AppServer(app, port=0, token=TOKEN).start()
    try:
        status, page, kind = get(server.port, "/dashboard", token=None)
        assert status == 200 and kind.startswith("text/html") and "dashboard.js" in page
        status, script, _ = get(server.port, "/dashboard/static/dashboard.js", token=None)
        assert status == 200 and "function refresh" in script
        assert get(server.port, "/dashboard/data", token=None)[:2] == (401, {
            "error": "missing or wrong bearer token (Authorization: Bearer ...)"})
        assert get(server.port, "/dashboard/data", token="wrong")[0] == 401
        assert get(server.port, "/dashboard/data?scope=everything")[:2] == (400, {
            "error": "scope must be application or instance, got 'everything'"})
        assert get(server.port, "/dashboard/data?history=-1")[:2] == (400, {
            "error": "history must be a whole number from 0 to 180, got '-1'"})
        assert get(server.port, "/dashboard/data?since=1")[:2] == (400, {
            "error": "unknown parameter(s): since; known: scope, history"})
        status, body, _ = get(server.port, "/dashboard/data?scope=instance&history=0")
        assert status == 200 and body["instances"][0]["state"] == "starting"
        assert body["instances"][0]["history"] == []
    finally:
        server.stop()
