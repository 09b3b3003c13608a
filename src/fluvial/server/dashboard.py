"""The live dashboard's data: what this instance runs, sampled on a timer in the HTTP server's
thread, and the whole application's view gathered from the other instances.

Nothing here runs on the processing loop: a sample reads the totals the loop keeps anyway
(records per task are added once per run of a partition's records, not per record), keeps a
short history, and asks the broker for the inputs' end offsets (lag) only while someone has
looked at the dashboard in the last WATCHED_S, so an unwatched dashboard costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import aiohttp

from fluvial.io.client import Consumer
from fluvial.server.topology_graph import topology_graph

if TYPE_CHECKING:
    from fluvial.runtime.app import App
    from fluvial.runtime.stream_thread import StreamThread

log = logging.getLogger("fluvial.dashboard")

SAMPLE_S = 1.0
HISTORY = 180  # samples kept: three minutes
WATCHED_S = 30.0  # lag is read while the dashboard was asked for within this long
SIZES_S = 5.0  # store sizes are read this often, and when the tasks change
PEER_TIMEOUT_S = 3.0
LAG_TIMEOUT_S = 2.0


class Dashboard:
    def __init__(self, app: App) -> None:
        self.app = app
        self.graph = topology_graph(app.topology, app.config.application_id)
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._previous: tuple[float, dict[str, int]] | None = None  # time, task -> processed
        self._rates: dict[str, float] = {}
        self._lags: dict[str, int] = {}
        self._sizes: list[dict[str, Any]] = []
        self._sized: set[str] = set()  # the tasks those sizes are of
        self._next_sizes = 0.0
        self._watched_until = 0.0
        self._reader: Consumer | None = None  # a free reader, for the inputs' end offsets
        self._lock = threading.Lock()  # a sample still running when the server stops
        self._closed = False

    # -- sampling (the server's sampling thread) ------------------------------------------

    def watched(self) -> None:
        self._watched_until = time.monotonic() + WATCHED_S

    def sample(self) -> None:
        with self._lock:
            thread = self.app.stream_thread
            if thread is not None and not self._closed:
                self._sample(thread)

    def _sample(self, thread: StreamThread) -> None:
        now = time.time()
        active = list(thread.tasks.items())
        processed = {task_id: a.processed for task_id, a in active}
        if self._previous is not None:
            then, before = self._previous
            span = max(now - then, 1e-3)

            def rate(task_id: str, n: int) -> float:
                # a task opened or reopened since (a rebalance, a recovery) counts from zero
                prev = before.get(task_id)
                return (n if prev is None or n < prev else n - prev) / span

            self._rates = {t: rate(t, n) for t, n in processed.items()}
        self._previous = (now, processed)
        self._lags = self._read_lags(active) if time.monotonic() < self._watched_until else {}
        if time.monotonic() >= self._next_sizes or set(processed) != self._sized:
            self._next_sizes = time.monotonic() + SIZES_S
            self._sizes, self._sized = self._read_sizes(active), set(processed)
        self._history.append({
            "t": round(now, 3), "processed": thread.processed,
            "rate": round(sum(self._rates.values()), 2),
            "lag": sum(self._lags.values()) if self._lags else None,
            "tasks": {t: [round(self._rates.get(t, 0.0), 2), self._lags.get(t)]
                      for t in processed}})

    def _read_lags(self, active: list[tuple[str, Any]]) -> dict[str, int]:
        """Per task: its inputs' end offsets minus the next offsets it will process."""
        if self._reader is None:
            self._reader = self.app.clients.consumer(None, {})
        lags: dict[str, int] = {}
        for task_id, a in active:
            try:
                lags[task_id] = sum(max(self._reader.watermarks(tp, LAG_TIMEOUT_S)[1] - pos, 0)
                                    for tp, pos in list(a.positions.items()))
            except Exception as exc:  # a broker away: no more lag this sample (nor waits)
                log.debug("dashboard: lag of task %s: %s", task_id, exc)
                break
        return lags

    @staticmethod
    def _read_sizes(active: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        sizes = []
        for task_id, a in active:
            for name, s in list(a.stores.stores.items()):
                entries, size = s.store.backend.size()
                sizes.append({"store": name, "task": task_id, "entries": entries,
                              "bytes": size, "persistent": s.spec.persistent})
        return sizes

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- answers --------------------------------------------------------------------------

    def instance(self, address: str, history: int) -> dict[str, Any]:
        """This instance's part of the view."""
        app, thread = self.app, self.app.stream_thread
        view: dict[str, Any] = {
            "instance": address, "member": app.member_id, "state": _state(app),
            "time": time.time(), "history": list(self._history)[-history:] if history else [],
            "tasks": [], "stores": self._sizes, "errors": [], "totals": {},
            "rebalances": {"count": 0, "recent": []}}
        if app.error is not None:
            view["errors"].append({"time": None, "kind": "fatal", "reason": str(app.error),
                                   "topic": None, "partition": None, "offset": None,
                                   "task": None})
        if thread is None:
            return view
        tasks = [{"id": t, "state": "running", "processed": a.processed,
                  "rate": round(self._rates.get(t, 0.0), 2), "lag": self._lags.get(t)}
                 for t, a in sorted(list(thread.tasks.items()))]
        for t, pending in sorted(list(thread.restoring.items())):
            applied, total = pending.restore.progress()
            tasks.append({"id": t, "state": "restoring", "applied": applied, "total": total,
                          "restored": pending.restored})
        if thread.standbys is not None:
            tasks += [{"id": t, "state": "standby"} for t in sorted(list(thread.standbys.tasks))]
        view["tasks"] = tasks
        globals_ = app.global_stores
        errors = thread.recent_errors.entries() + (
            globals_.recent_errors.entries() if globals_ is not None else [])
        view["errors"] += sorted(errors, key=lambda e: -e["time"])
        running = list(thread.tasks.values())
        view["totals"] = {
            "processed": thread.processed, "produced": thread.collector.sent,
            "commits": thread.commits, "aborts": thread.aborts,
            "recoveries": thread.recoveries,
            "skipped": sum(n for kind, n in thread.recent_errors.counts.items()
                           if kind != "recovery") + (globals_.skipped if globals_ else 0),
            "dropped": sum(a.task.dropped for a in running),
            "restored": sum(n for per_task in list(thread.restored.values())
                            for n in per_task.values())}
        view["rebalances"] = {"count": thread.rebalances, "recent": [
            {"time": t, "kind": kind, "partitions": n}
            for t, kind, n in reversed(list(thread.recent_rebalances))]}
        return view

    async def application(self, session: aiohttp.ClientSession, local: dict[str, Any],
                          peers: list[str], token: str | None,
                          history: int) -> dict[str, Any]:
        """This instance's view and every peer's (asked over HTTP, at once): the whole
        application as seen from here; a peer that does not answer is listed with why."""
        answers = await asyncio.gather(*(self._ask(session, p, token, history) for p in peers))
        instances, unreachable = [local], []
        for peer, answer in zip(peers, answers, strict=True):
            if isinstance(answer, str):
                unreachable.append({"instance": peer, "error": answer})
            else:
                instances.append(answer)
        return {"application_id": self.app.config.application_id,
                "viewed_from": local["instance"], "graph": self.graph,
                "instances": instances, "unreachable": unreachable}

    @staticmethod
    async def _ask(session: aiohttp.ClientSession, peer: str, token: str | None,
                   history: int) -> dict[str, Any] | str:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = f"http://{peer}/dashboard/data?scope=instance&history={history}"
        try:
            async with session.get(url, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)) as r:
                if r.status != 200:
                    return f"HTTP {r.status}: {(await r.text())[:200]}"
                body = await r.json()
                instances = body.get("instances") if isinstance(body, dict) else None
                if not instances or not isinstance(instances[0], dict):
                    return "answered without an instance view"
                return dict(instances[0])
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _state(app: App) -> str:
    if app.error is not None:
        return "failed"
    if app.closing:
        return "shutting down"
    if not app.running:
        return "starting"
    thread = app.stream_thread
    return "restoring" if thread is not None and thread.restoring else "running"
