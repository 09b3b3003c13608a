"""``/healthz``, ``/readyz``, ``/metrics``, the store queries (``/stores/...``) and the live
dashboard (``/dashboard``) over aiohttp, in a thread beside the loop.

Liveness says the processing loop is making progress — never whether a broker is reachable,
or a Kafka outage would turn into a restart loop. Readiness says the instance has joined,
holds its tasks with their state restored, and is not shutting down; its answer lists the
tasks by state (running, restoring), so an operator sees what a restart is waiting for.

The server binds to localhost unless told otherwise; with a token, ``/stores`` and the
dashboard's data ask for ``Authorization: Bearer <token>`` (the probes and metrics stay open
to the platform; the dashboard's page and scripts hold no data).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)

from fluvial.errors import ConfigError, StoreMovingError
from fluvial.runtime.query import LOCAL_HEADER, KeyAnswer, RowsAnswer, StoreQuery, key_from_text
from fluvial.server.dashboard import HISTORY, SAMPLE_S, Dashboard
from fluvial.server.metrics import AppCollector

if TYPE_CHECKING:
    from fluvial.runtime.app import App

log = logging.getLogger("fluvial.http")

STATIC = Path(__file__).parent / "static"
PROTECTED = ("/stores", "/dashboard/data")  # what the bearer token guards
DEFAULT_HISTORY = 60  # samples a dashboard answer carries unless asked otherwise


class AppServer:
    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0,
                 liveness_timeout_s: float = 60.0, token: str | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.token = token
        self.liveness_timeout_s = liveness_timeout_s
        self.registry = CollectorRegistry()
        self.registry.register(AppCollector(app))
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.dashboard = Dashboard(app)
        self._sampling: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

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

    # -- store queries --------------------------------------------------------------------

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token is not None and request.path.startswith(PROTECTED):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return _error(401, "missing or wrong bearer token (Authorization: Bearer ...)")
        response: web.StreamResponse = await handler(request)
        return response

    def _query(self, request: web.Request, known: tuple[str, ...]) -> StoreQuery:
        """The store the path names, read with the ``replica`` parameter; any parameter but
        ``known`` and ``replica`` is a 400."""
        name = request.match_info["store"]
        if name not in self.app.topology.stores:
            raise web.HTTPNotFound(text=_reason(f"no store {name!r}"),
                                   content_type="application/json")
        unknown = sorted(set(request.query) - {*known, "replica"})
        if unknown:
            raise web.HTTPBadRequest(text=_reason(
                f"unknown parameter(s): {', '.join(unknown)}; known: "
                f"{', '.join([*known, 'replica'])}"), content_type="application/json")
        try:
            return StoreQuery(self.app, name, request.query.get("replica", "active"))
        except ConfigError as exc:
            raise web.HTTPBadRequest(text=_reason(str(exc)),
                                     content_type="application/json") from None

    def _key(self, query: StoreQuery, text: str) -> Any:
        try:
            return key_from_text(query.key_serde, text)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=_reason(str(exc)),
                                     content_type="application/json") from None

    async def _store_key(self, request: web.Request) -> web.Response:
        query = self._query(request, ())
        self._supports(query, "kv", "get")
        text = request.match_info["key"]
        key = self._key(query, text)
        read = query.local_get if request.headers.get(LOCAL_HEADER) else query.get_with_metadata
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, read, key)
        except StoreMovingError as exc:
            return _error(503, f"moving, retry: {exc}")
        if answer.value is None:
            return _json({"error": f"no key {text!r} in store {query.name!r}",
                          "metadata": self._metadata(answer)}, 404)
        return _json({"key": key, "value": answer.value, "metadata": self._metadata(answer)})

    def _metadata(self, answer: KeyAnswer | RowsAnswer) -> dict[str, Any]:
        """Which copy answered: its partition, instance, whether active, its changelog lag."""
        instance = self._address() if answer.instance == "local" else answer.instance
        return {"partition": answer.partition, "instance": instance, "active": answer.active,
                "lag": answer.lag}

    async def _read_key(self, request: web.Request, query: StoreQuery,
                        local: Callable[[], RowsAnswer], routed: Callable[[], RowsAnswer],
                        field: str, row: Callable[[Any, Any], list[Any]]) -> web.Response:
        """A window or session read of one key: here only when forwarded, else routed."""
        read = local if request.headers.get(LOCAL_HEADER) else routed
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, read)
        except StoreMovingError as exc:
            return _error(503, f"moving, retry: {exc}")
        return _json({"key": self._key(query, request.match_info["key"]),
                      field: [row(a, b) for a, b in answer.rows],
                      "metadata": self._metadata(answer)})

    async def _store_windows(self, request: web.Request) -> web.Response:
        """``key``'s windows starting in [from, to] (ms): ``[start, value]`` rows."""
        query = self._query(request, ("from", "to"))
        self._supports(query, "window", "fetch(key, time_from, time_to)")
        time_from, time_to = _time_range(request)
        key = self._key(query, request.match_info["key"])
        return await self._read_key(
            request, query, lambda: query.local_windows(key, time_from, time_to),
            lambda: query.fetch_with_metadata(key, time_from, time_to), "windows",
            lambda start, value: [start, value])

    async def _store_all_windows(self, request: web.Request) -> web.Response:
        """Every key's windows starting in [from, to] (ms): this instance's part
        (``partitions``, ``[key, start, value, partition]`` rows), or with ``all=true`` the
        whole store's ``[key, start, value]`` rows, by start then key."""
        query = self._query(request, ("from", "to", "all"))
        self._supports(query, "window", "fetch_all(time_from, time_to)")
        if query.replica != "active":
            return _error(400, f"a gathered read reads running tasks only: replica must be "
                               f"active, got {query.replica!r}")
        time_from, time_to = _time_range(request)
        everywhere = _flag(request, "all")
        loop = asyncio.get_running_loop()
        if everywhere and not request.headers.get(LOCAL_HEADER):
            try:
                rows = await loop.run_in_executor(None, query.fetch_all, time_from, time_to)
            except StoreMovingError as exc:
                return _error(503, f"moving, retry: {exc}")
            return _json({"rows": [[key, start, value] for (key, start), value in rows]})
        partitions, local_rows = await loop.run_in_executor(
            None, query.local_window_rows, time_from, time_to)
        return _json({"partitions": partitions, "rows": local_rows})

    async def _store_sessions(self, request: web.Request) -> web.Response:
        """``key``'s sessions: ``[start, end, value]`` rows, by end then start."""
        query = self._query(request, ())
        self._supports(query, "session", "sessions(key)")
        key = self._key(query, request.match_info["key"])
        return await self._read_key(
            request, query, lambda: query.local_sessions(key),
            lambda: query.sessions_with_metadata(key), "sessions",
            lambda bounds, value: [bounds[0], bounds[1], value])

    @staticmethod
    def _supports(query: StoreQuery, kind: str, call: str) -> None:
        try:
            query.require(kind, call)
        except ConfigError as exc:
            raise web.HTTPBadRequest(text=_reason(str(exc)),
                                     content_type="application/json") from None

    async def _store(self, request: web.Request) -> web.Response:
        """The local part (``partitions`` it holds, ``[key, value, partition]`` rows), or the
        whole store's ``[key, value]`` rows with ``?all=true``; ``from`` and ``to`` bound the
        keys (both included)."""
        query = self._query(request, ("from", "to", "all"))
        self._supports(query, "kv", "all")
        params = request.query
        if query.replica != "active":
            return _error(400, f"a gathered read reads running tasks only: replica must be "
                               f"active, got {query.replica!r}")
        if ("from" in params) != ("to" in params):
            return _error(400, "give both 'from' and 'to', or neither")
        everywhere = _flag(request, "all")
        lo = self._key(query, params["from"]) if "from" in params else None
        hi = self._key(query, params["to"]) if "to" in params else None
        loop = asyncio.get_running_loop()
        if everywhere and not request.headers.get(LOCAL_HEADER):
            read = query.all if lo is None else (lambda: query.range(lo, hi))
            try:
                rows = await loop.run_in_executor(None, read)
            except StoreMovingError as exc:
                return _error(503, f"moving, retry: {exc}")
            return _json({"rows": [[k, v] for k, v in rows]})
        partitions, local_rows = await loop.run_in_executor(None, query.local_rows, lo, hi)
        return _json({"partitions": partitions, "rows": local_rows})

    # -- dashboard ------------------------------------------------------------------------

    async def _dashboard_page(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "dashboard.html")

    async def _dashboard_data(self, request: web.Request) -> web.Response:
        """``scope=application`` (default): every instance's view, gathered from here;
        ``scope=instance``: this one's. ``history``: samples per instance (0-HISTORY)."""
        params = request.query
        unknown = sorted(set(params) - {"scope", "history"})
        if unknown:
            return _error(400, f"unknown parameter(s): {', '.join(unknown)}; "
                               f"known: scope, history")
        scope = params.get("scope", "application")
        if scope not in ("application", "instance"):
            return _error(400, f"scope must be application or instance, got {scope!r}")
        text = params.get("history", str(DEFAULT_HISTORY))
        if not (text.isascii() and text.isdigit()) or int(text) > HISTORY:
            return _error(400, f"history must be a whole number from 0 to {HISTORY}, "
                               f"got {text!r}")
        history = int(text)
        self.dashboard.watched()
        local = self.dashboard.instance(self._address(), history)
        if scope == "instance":
            return _json({"application_id": self.app.config.application_id,
                          "viewed_from": local["instance"], "instances": [local]})
        directory = self.app.directory
        # not this address again: an entry under this process's previous member id may linger
        peers = [p for p in (directory.peers() if directory is not None else [])
                 if p != local["instance"]]
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return _json(await self.dashboard.application(self._session, local, peers,
                                                      self.token, history))

    async def _sample(self) -> None:
        """The dashboard's timer: a sample each SAMPLE_S, in a worker thread (reading lag
        asks the broker), never in the processing loop."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.dashboard.sample)
            except Exception:  # a sample is best effort: the next one tries again
                log.exception("dashboard sample")
            await asyncio.sleep(SAMPLE_S)

    async def _stop_dashboard(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling
        if self._session is not None:
            await self._session.close()

    def _address(self) -> str:
        directory = self.app.directory
        if directory is not None and directory.address is not None:
            return directory.address
        return f"{self.host}:{self.port}"

    def start(self) -> AppServer:
        web_app = web.Application(middlewares=[self._authorize])
        web_app.add_routes([web.get("/healthz", self._healthz), web.get("/readyz", self._readyz),
                            web.get("/metrics", self._metrics),
                            web.get("/stores/{store}/keys/{key}", self._store_key),
                            web.get("/stores/{store}/keys/{key}/windows",
                                    self._store_windows),
                            web.get("/stores/{store}/keys/{key}/sessions",
                                    self._store_sessions),
                            web.get("/stores/{store}/windows", self._store_all_windows),
                            web.get("/stores/{store}", self._store),
                            web.get("/dashboard", self._dashboard_page),
                            web.get("/dashboard/data", self._dashboard_data),
                            web.static("/dashboard/static", STATIC)])
        self._runner = web.AppRunner(web_app, access_log=None)
        started = threading.Event()

        sock = socket.create_server((self.host, self.port), reuse_port=False)
        self.port = sock.getsockname()[1]  # the one the OS picked, when 0 was asked for
        # published in the instance directory: peers route store queries here, and any
        # instance's dashboard gathers this one's view from here
        self.app.serve_queries(self.app.config.application_server
                               or f"{_reachable(self.host)}:{self.port}", self.token)

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            assert self._runner is not None
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
            self._sampling = self._loop.create_task(self._sample())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fluvial-http", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._thread is None or self._runner is None:
            return
        self.app.stop_serving_queries()
        asyncio.run_coroutine_threadsafe(self._stop_dashboard(), self._loop).result(10)
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self.dashboard.close()


def _time_range(request: web.Request) -> tuple[int, int]:
    """The ``from`` and ``to`` of a window read: integer ms, both required."""
    params = request.query
    missing = [name for name in ("from", "to") if name not in params]
    if missing:
        raise web.HTTPBadRequest(text=_reason(
            f"missing parameter(s) {', '.join(missing)}: give from and to, window start "
            f"times in ms"), content_type="application/json")
    try:
        return int(params["from"]), int(params["to"])
    except ValueError:
        raise web.HTTPBadRequest(text=_reason(
            f"from and to must be integer ms, got from={params['from']!r}, "
            f"to={params['to']!r}"), content_type="application/json") from None


def _flag(request: web.Request, name: str) -> bool:
    text = request.query.get(name, "false")
    if text not in ("true", "false"):
        raise web.HTTPBadRequest(text=_reason(f"{name} must be true or false, got {text!r}"),
                                 content_type="application/json")
    return text == "true"


def _reason(text: str) -> str:
    return json.dumps({"error": text.splitlines()[0] if text else text})


def _error(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=_reason(text), content_type="application/json")


def _json(body: Any, status: int = 200) -> web.Response:
    # a value the JSON encoder does not know (bytes, a custom object) is sent as its text
    return web.Response(status=status, text=json.dumps(body, default=str),
                        content_type="application/json")


def _reachable(host: str) -> str:
    """The address peers use when none is configured: the bound one, or this host's name when
    bound to every interface."""
    return socket.gethostname() if host in ("", "0.0.0.0", "::") else host
