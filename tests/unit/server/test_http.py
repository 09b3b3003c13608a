"""Health, readiness and metrics of an app on the embedded broker, over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from examples.wordcount.app import INPUT, OUTPUT, build

from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.server import AppServer


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probes_and_metrics_follow_the_app(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 2)
    broker.create_topic(OUTPUT, 2)
    app = App(build(), "wc", broker=broker, state_dir=tmp_path)
    server = AppServer(app, host="127.0.0.1", port=0).start()
    try:
        assert get(server.port, "/readyz")[0] == 503  # not running yet
        app.start()
        deadline = time.monotonic() + 10
        while len(app.stream_thread.tasks) < 4 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        status, body = get(server.port, "/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ok", "tasks": {
            "running": ["0_0", "0_1", "1_0", "1_1"], "restoring": []}})
        assert get(server.port, "/healthz")[0] == 200
        for line in ["a b", "b c", "c d"]:
            broker.append(INPUT, None, line.encode(), 1)
        deadline = time.monotonic() + 10
        while app.store("counts").get("c") != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, body = get(server.port, "/metrics")
        assert status == 200
        assert 'fluvial_up{application_id="wc"} 1.0' in body
        assert 'fluvial_records_consumed_total{application_id="wc"} 9.0' in body  # 3 + 6 words
        assert 'fluvial_tasks_assigned{application_id="wc"} 4.0' in body
        app.close()
        assert get(server.port, "/readyz")[0] == 503
    finally:
        app.close()
        server.stop()


def test_liveness_fails_when_the_loop_stalls_or_dies(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 1)
    broker.create_topic(OUTPUT, 1)
    app = App(build(), "wc", broker=broker, state_dir=tmp_path).start()
    server = AppServer(app, host="127.0.0.1", port=0, liveness_timeout_s=0.0)
    try:
        ok, reason = server.live()
        assert not ok and reason.startswith("no poll for")
        app.error = RuntimeError("boom")
        assert server.live() == (False, "stopped: boom")
    finally:
        app.close()


def test_metrics_include_what_the_process_registered(tmp_path: Path) -> None:
    from prometheus_client import Counter

    extra = Counter("fluvial_test_extra", "registered by user code")
    extra.inc(3)
    app = App(build(), "wc", broker=EmbeddedBroker(), state_dir=tmp_path)
    server = AppServer(app, host="127.0.0.1", port=0).start()
    try:
        status, body = get(server.port, "/metrics")
        assert status == 200
        assert "fluvial_test_extra_total 3.0" in body
        assert 'fluvial_up{application_id="wc"} 0.0' in body
    finally:
        server.stop()
