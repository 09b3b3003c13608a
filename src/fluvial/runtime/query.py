"""Interactive queries: a store read from any instance, routed to the one running the key's task.

Key-value stores answer ``get``, ``range`` and ``all``; window stores ``fetch(key, time_from,
time_to)``; session stores ``fetch(key)`` (``sessions(key)``, the same).

A key's partition is the one its changelog record goes to: murmur2 of the key as the store's
key serde writes it, as Kafka's default partitioner. Only a running task answers (never a
restoring one); when no running owner is known the answer is ``StoreMovingError``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fluvial.errors import ConfigError, FluvialError, StoreMovingError
from fluvial.io.client import TopicPartition
from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.io.serdes import Float64Serde, Int64Serde, Serde, SerdeError
from fluvial.state.session import SessionStore
from fluvial.state.store import KeyValueStore, ReadOnlyView
from fluvial.state.window import WindowStore

if TYPE_CHECKING:
    from fluvial.runtime.app import App

LOCAL_HEADER = "X-Fluvial-Local"  # a forwarded query: answer from this instance only
HTTP_TIMEOUT_S = 10.0
CALLS = {"kv": "get, get_with_metadata, range, all", "window": "fetch(key, time_from, time_to)",
         "session": "fetch(key), sessions(key)"}  # what each kind of store answers


@dataclass(frozen=True)
class KeyAnswer:
    value: Any  # None: the owner has no such key
    partition: int
    instance: str  # the address (or "local") that answered
    active: bool = True  # answered by the active task (standbys are not queried yet)


def key_from_text(serde: Serde, text: str) -> Any:
    """A key as given in a URL, in the store's key type: numbers for the number serdes,
    otherwise what the serde reads from the text's UTF-8 bytes."""
    try:
        if isinstance(serde, Int64Serde):
            return int(text)
        if isinstance(serde, Float64Serde):
            return float(text)
        return serde.deserialize(text.encode())
    except (ValueError, SerdeError) as exc:
        raise ValueError(f"key {text!r} is not a valid {type(serde).__name__} key: "
                         f"{exc}") from None


def key_to_text(serde: Serde, key: Any) -> str:
    if isinstance(serde, Int64Serde | Float64Serde):
        return str(key)
    data = serde.serialize(key)
    return data.decode() if data is not None else ""


@dataclass(frozen=True)
class RowsAnswer:
    """A window or session read of one key: ``rows`` as ``fetch`` returns them."""
    rows: list[tuple[Any, Any]]
    partition: int
    instance: str
    active: bool = True


class StoreQuery:
    """``app.query(name)``: a key-value, window or session store over the whole application
    (the calls each kind answers: ``CALLS``)."""

    def __init__(self, app: App, name: str) -> None:
        self._app = app
        self.name = name
        self._spec = app.topology.stores[name]
        self.kind = self._spec.kind
        if self.kind not in CALLS:
            raise ConfigError(f"store {name!r} is a {self.kind} store; interactive queries "
                              f"read key-value, window and session stores only (so far)")
        subtopology = app.topology.subtopology_of_store(name)
        self._subtopology = subtopology.id
        self._source = subtopology.source_topics(app.config.application_id)[0]

    @property
    def key_serde(self) -> Serde:
        return self._spec.key_serde

    def _partitions(self) -> int:
        thread = self._app.stream_thread
        if thread is None:
            raise StoreMovingError(f"store {self.name!r}: the application has not started")
        return thread.plan.task_counts[self._subtopology]

    def partition_of(self, key: Any) -> int:
        data = self._spec.key_serde.serialize(key)
        if data is None:
            raise ValueError(f"store {self.name!r}: a key may not be None")
        return partition_for_key(data, self._partitions())

    def require(self, kind: str, call: str) -> None:
        """Refuse a call the store's kind does not answer, naming the ones it does."""
        if self.kind != kind:
            raise ConfigError(f"store {self.name!r} is a {self.kind} store: it answers "
                              f"{CALLS[self.kind]}, not {call}")

    # -- this instance --------------------------------------------------------------------

    def local_stores(self) -> dict[int, Any]:
        """Partition -> the store of each task running here (restoring ones left out)."""
        thread = self._app.stream_thread
        if thread is None:
            return {}
        stores = {}
        for task_id, active in list(thread.tasks.items()):
            st_id, partition = (int(x) for x in task_id.split("_"))
            store = active.stores.stores.get(self.name) if st_id == self._subtopology else None
            if store is not None:
                stores[partition] = store.store
        return stores

    def local_views(self) -> dict[int, ReadOnlyView]:
        """Partition -> a read-only view of each running task's key-value store."""
        return {p: ReadOnlyView(store) for p, store in self.local_stores().items()
                if isinstance(store, KeyValueStore)}

    def _local_store(self, key: Any) -> tuple[int, Any]:
        partition = self.partition_of(key)
        store = self.local_stores().get(partition)
        if store is None:
            raise StoreMovingError(f"store {self.name!r}: partition {partition} is not "
                                   f"running on this instance; retry")
        return partition, store

    def local_get(self, key: Any) -> KeyAnswer:
        self.require("kv", "get")
        partition, store = self._local_store(key)
        return KeyAnswer(ReadOnlyView(store).get(key), partition, "local")

    def local_windows(self, key: Any, time_from: int, time_to: int) -> RowsAnswer:
        """``key``'s committed windows starting in [from, to] here, values without their
        timestamps."""
        self.require("window", "fetch(key, time_from, time_to)")
        partition, store = self._local_store(key)
        assert isinstance(store, WindowStore)
        rows = [(start, _plain(store, value))
                for start, value in store.fetch_range(key, time_from, time_to, committed=True)]
        return RowsAnswer(rows, partition, "local")

    def local_sessions(self, key: Any) -> RowsAnswer:
        """``key``'s committed sessions here, values without their timestamps."""
        self.require("session", "sessions(key)")
        partition, store = self._local_store(key)
        assert isinstance(store, SessionStore)
        rows = [(bounds, _plain(store, value)) for bounds, value in store.fetch(key, True)]
        return RowsAnswer(rows, partition, "local")

    def local_rows(self, lo: Any = None, hi: Any = None) -> tuple[list[int], list[list[Any]]]:
        """(partitions answered, their ``[key, value, partition]`` rows): the local part of
        ``all`` or ``range``."""
        self.require("kv", "all" if lo is None else "range")
        views = self.local_views()
        rows = [[k, v, p] for p, view in views.items()
                for k, v in (view.all() if lo is None else view.range(lo, hi))]
        return sorted(views), rows

    # -- the application ------------------------------------------------------------------

    def get(self, key: Any) -> Any:
        return self.get_with_metadata(key).value

    def get_with_metadata(self, key: Any) -> KeyAnswer:
        self.require("kv", "get")
        partition = self.partition_of(key)
        if partition in self.local_stores():
            return self.local_get(key)
        address, (status, body) = self._ask_owner(partition, key, "")
        if status == 404:
            return KeyAnswer(None, partition, address)
        return KeyAnswer(body["value"], partition, address, body["metadata"]["active"])

    def fetch(self, key: Any, time_from: int | None = None,
              time_to: int | None = None) -> list[tuple[Any, Any]]:
        """A window store: ``[(window start, value)]`` of ``key``'s windows starting in
        [time_from, time_to] (ms, both included). A session store (no times):
        ``[((start, end), value)]`` of ``key``'s sessions."""
        if self.kind == "session" and time_from is None and time_to is None:
            return self.sessions(key)
        self.require("window", "fetch(key, time_from, time_to)")
        if time_from is None or time_to is None:
            raise ValueError(f"store {self.name!r}: a window fetch needs both time_from and "
                             f"time_to (ms)")
        return self.fetch_with_metadata(key, time_from, time_to).rows

    def fetch_with_metadata(self, key: Any, time_from: int, time_to: int) -> RowsAnswer:
        self.require("window", "fetch(key, time_from, time_to)")
        partition = self.partition_of(key)
        if partition in self.local_stores():
            return self.local_windows(key, time_from, time_to)
        query = urllib.parse.urlencode({"from": time_from, "to": time_to})
        address, (_, body) = self._ask_owner(partition, key, f"/windows?{query}")
        return RowsAnswer([(start, value) for start, value in body["windows"]], partition,
                          address, body["metadata"]["active"])

    def sessions(self, key: Any) -> list[tuple[Any, Any]]:
        """``[((start, end), value)]`` of ``key``'s sessions, by end then start."""
        return self.sessions_with_metadata(key).rows

    def sessions_with_metadata(self, key: Any) -> RowsAnswer:
        self.require("session", "sessions(key)")
        partition = self.partition_of(key)
        if partition in self.local_stores():
            return self.local_sessions(key)
        address, (_, body) = self._ask_owner(partition, key, "/sessions")
        return RowsAnswer([((start, end), value) for start, end, value in body["sessions"]],
                          partition, address, body["metadata"]["active"])

    def _ask_owner(self, partition: int, key: Any, suffix: str) -> tuple[str, tuple[int, Any]]:
        """(address, answer) of ``/stores/<store>/keys/<key><suffix>`` on the instance
        running ``partition``."""
        address = self.owner_address(partition)
        if address is None:
            raise StoreMovingError(f"store {self.name!r}: partition {partition} has no running "
                                   f"owner known right now (a rebalance or restore); retry")
        directory = self._directory()
        text = urllib.parse.quote(key_to_text(self.key_serde, key), safe="")
        return address, _http_get(address, f"/stores/{self.name}/keys/{text}{suffix}",
                                  directory.token)

    def owner_address(self, partition: int) -> str | None:
        """The HTTP address of the other live instance running ``partition``'s task, as the
        instance directory knows it; None when no other instance serving HTTP is known to."""
        directory = self._directory()
        owner = directory.owner_of(TopicPartition(self._source, partition))
        if owner is None or owner[0] == directory.member_id:
            return None
        address: str | None = owner[1]
        return address

    def all(self) -> list[tuple[Any, Any]]:
        self.require("kv", "all")
        return self._everywhere(None, None)

    def range(self, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        """Keys from ``lo`` to ``hi`` (both included, in the serialized keys' order)."""
        self.require("kv", "range")
        return self._everywhere(lo, hi)

    def _everywhere(self, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        answered, rows = self.local_rows(lo, hi)
        done = set(answered)
        directory = self._directory()
        query = "" if lo is None else "?" + urllib.parse.urlencode(
            {"from": key_to_text(self.key_serde, lo), "to": key_to_text(self.key_serde, hi)})
        for address in directory.peers():
            try:
                _, body = _http_get(address, f"/stores/{self.name}{query}", directory.token)
            except StoreMovingError:
                continue  # what it holds is left unanswered: reported below
            fresh = set(body["partitions"]) - done
            done |= fresh
            rows += [row for row in body["rows"] if row[2] in fresh]
        missing = sorted(set(range(self._partitions())) - done)
        if missing:
            raise StoreMovingError(f"store {self.name!r}: partitions {missing} have no running "
                                   f"owner known right now (a rebalance or restore); retry")
        return [(k, v) for k, v, _ in rows]

    def _directory(self) -> Any:
        directory = self._app.directory
        if directory is None:
            raise FluvialError(f"store {self.name!r}: the key is not on this instance and no "
                               f"HTTP server (AppServer) routes queries to the others")
        return directory


def _plain(store: WindowStore | SessionStore, stored: Any) -> Any:
    return stored[0] if store.codec.timestamped and stored is not None else stored


def _http_get(address: str, path: str, token: str | None) -> tuple[int, Any]:
    """A forwarded query to a peer: 200 and its JSON body, or 404; 503 (the peer's task is
    moving) or no answer at all raise ``StoreMovingError``."""
    headers = {LOCAL_HEADER: "1"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://{address}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return 404, None
        if exc.code == 503:
            raise StoreMovingError(f"{address}: {exc.read().decode().strip()}") from None
        raise FluvialError(f"{address}{path}: HTTP {exc.code}: "
                           f"{exc.read().decode().strip()}") from None
    except OSError as exc:
        raise StoreMovingError(f"{address} did not answer ({exc}); retry") from None
