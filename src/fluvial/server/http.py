"""``/healthz``, ``/readyz`` and ``/metrics`` over aiohttp, in a thread beside the loop.

Liveness says the processing loop is making progress — never whether a broker is reachable,
or a Kafka outage would turn into a restart loop. Readiness says the instance has joined,
holds its tasks with their state restored, and is not shutting down; its answer lists the
tasks by state (running, restoring), so an operator sees what a restart is waiting for.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)

from fluvial.server.metrics import AppCollector

if TYPE_CHECKING:
    from fluvial.runtime.app import App


class AppServer:
    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 0,
                 liveness_timeout_s: float = 60.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.liveness_timeout_s = liveness_timeout_s
        self.registry = CollectorRegistry()
        self.registry.register(AppCollector(app))
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- checks ---------------------------------------------------------------------------

    def live(self) -> tuple[bool, str]:
        app, thread = self.app, self.app.stream_thread
        if app.error is not None:
            return False, f"stopped: {app.error}"
        if thread is None:
            return True, "starting"
        age = time.monotonic() - thread.last_poll
        if age > self.liveness_timeout_s:
            return False, f"no poll for {age:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        app = self.app
        if not app.running:
            return False, "not running"
        if app.closing:
            return False, "shutting down"
        thread = app.stream_thread
        restoring = len(thread.restoring) if thread is not None else 0
        if restoring:
            return False, f"restoring {restoring} task(s)"
        return True, "ok"

    def tasks(self) -> dict[str, list[str]]:
        """Task ids by state; read from another thread, so copies first."""
        thread = self.app.stream_thread
        if thread is None:
            return {"running": [], "restoring": []}
        return {"running": sorted(list(thread.tasks)), "restoring": sorted(list(thread.restoring))}

    # -- serving --------------------------------------------------------------------------

    async def _healthz(self, _request: web.Request) -> web.Response:
        ok, reason = self.live()
        return web.json_response({"status": reason}, status=200 if ok else 503)

    async def _readyz(self, _request: web.Request) -> web.Response:
        ok, reason = self.ready()
        return web.json_response({"status": reason, "tasks": self.tasks()},
                                 status=200 if ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        # the app's own metrics, then whatever the process registered in prometheus_client's
        # default registry (fluvial.ml's scoring counters, process and GC metrics)
        body = generate_latest(self.registry) + generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def start(self) -> AppServer:
        web_app = web.Application()
        web_app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz),
                            web.get("/metrics", self._metrics)])
        self._runner = web.AppRunner(web_app, access_log=None)
        started = threading.Event()

        sock = socket.create_server((self.host, self.port), reuse_port=False)
        self.port = sock.getsockname()[1]  # the one the OS picked, when 0 was asked for

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            assert self._runner is not None
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fluvial-http", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._thread is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
