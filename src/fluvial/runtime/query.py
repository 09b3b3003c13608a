"""Interactive queries: a store read from any instance, routed to the one running the key's task.

Key-value stores answer ``get``, ``range`` and ``all``; window stores ``fetch(key, time_from,
time_to)`` and ``fetch_all(time_from, time_to)``; session stores ``fetch(key)``
(``sessions(key)``, the same).

A key's partition is the one its changelog record goes to: murmur2 of the key as the store's
key serde writes it, as Kafka's default partitioner. Only a running task answers (never a
restoring one); when no running owner is known the answer is ``StoreMovingError``. A query
that allows it (``replica``) is answered by a standby copy instead, saying how far behind its
changelog it is.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fluvial.errors import ConfigError, FluvialError, StoreMovingError
from fluvial.io.client import TopicPartition
from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.io.serdes import Float64Serde, Int64Serde, Serde, SerdeError
from fluvial.runtime.stores import OpenStore
from fluvial.state.session import SessionStore
from fluvial.state.store import KeyValueStore, ReadOnlyView
from fluvial.state.window import WindowStore

if TYPE_CHECKING:
    from fluvial.runtime.app import App

T = TypeVar("T")
LOCAL_HEADER = "X-Fluvial-Local"  # a forwarded query: answer from this instance only
HTTP_TIMEOUT_S = 10.0
CALLS = {"kv": "get, get_with_metadata, range, all",
         "window": "fetch(key, time_from, time_to), fetch_all(time_from, time_to)",
         "session": "fetch(key), sessions(key)"}  # what each kind of store answers


REPLICAS = ("active", "any", "standby")  # which copies of a key's state may answer


@dataclass(frozen=True)
class KeyAnswer:
    value: Any  # None: the copy that answered has no such key
    partition: int
    instance: str  # the address (or "local") that answered
    active: bool = True  # answered by the running active task, not a standby
    lag: int | None = 0  # changelog records the answering copy has not applied (None: unknown)


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
    lag: int | None = 0


class StoreQuery:
    """``app.query(name, replica)``: a key-value, window or session store over the whole
    application (the calls each kind answers: ``CALLS``).

    ``replica`` says which copy of a key's state may answer: ``"active"`` the running task
    only; ``"any"`` the running task, or a standby when that is moving or does not answer
    (Kafka Streams' ``enableStaleStores``); ``"standby"`` a standby only (reads kept off the
    active). A standby may be behind: its answer says so (``active`` False, ``lag``)."""

    def __init__(self, app: App, name: str, replica: str = "active") -> None:
        self._app = app
        self.name = name
        if replica not in REPLICAS:
            raise ConfigError(f"replica must be {', '.join(REPLICAS[:-1])} or {REPLICAS[-1]}, "
                              f"got {replica!r}")
        self.replica = replica
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

    def _require_active(self, call: str) -> None:
        if self.replica != "active":
            raise ConfigError(f"store {self.name!r}: {call} reads running tasks only, not "
                              f"replica {self.replica!r}")

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

    def standby_copies(self) -> dict[int, tuple[OpenStore, int | None]]:
        """Partition -> (the standby copy kept here, its changelog lag)."""
        thread = self._app.stream_thread
        if thread is None or thread.standbys is None:
            return {}
        copies = {}
        for task_id, copy in thread.standbys.copies(self.name).items():
            st_id, partition = (int(x) for x in task_id.split("_"))
            if st_id == self._subtopology:
                copies[partition] = copy
        return copies

    def local_views(self) -> dict[int, ReadOnlyView]:
        """Partition -> a read-only view of each running task's key-value store."""
        return {p: ReadOnlyView(store) for p, store in self.local_stores().items()
                if isinstance(store, KeyValueStore)}

    def _read_here(self, key: Any, read: Callable[[Any], T]) -> tuple[int, T, bool, int | None]:
        """(partition, ``read(store)``, active, lag) from this instance's copy of the key's
        partition that ``replica`` allows: the running task first, else a standby (still
        kept after the read: a copy closed mid-read reads as empty)."""
        partition = self.partition_of(key)
        if self.replica != "standby":
            store = self.local_stores().get(partition)
            if store is not None:
                return partition, read(store), True, 0
        if self.replica != "active":
            copy = self.standby_copies().get(partition)
            if copy is not None:
                result = read(copy[0].store)
                again = self.standby_copies().get(partition)
                if again is not None and again[0] is copy[0]:
                    return partition, result, False, copy[1]
        held = {"active": "running", "any": "running or standby", "standby": "standby"}
        raise StoreMovingError(f"store {self.name!r}: partition {partition} has no "
                               f"{held[self.replica]} copy on this instance; retry")

    def local_get(self, key: Any) -> KeyAnswer:
        self.require("kv", "get")
        partition, value, active, lag = self._read_here(
            key, lambda store: ReadOnlyView(store).get(key))
        return KeyAnswer(value, partition, "local", active, lag)

    def local_windows(self, key: Any, time_from: int, time_to: int) -> RowsAnswer:
        """``key``'s committed windows starting in [from, to] here, values without their
        timestamps."""
        self.require("window", "fetch(key, time_from, time_to)")

        def read(store: Any) -> list[tuple[Any, Any]]:
            assert isinstance(store, WindowStore)
            return [(start, _plain(store, value)) for start, value
                    in store.fetch_range(key, time_from, time_to, committed=True)]
        partition, rows, active, lag = self._read_here(key, read)
        return RowsAnswer(rows, partition, "local", active, lag)

    def local_sessions(self, key: Any) -> RowsAnswer:
        """``key``'s committed sessions here, values without their timestamps."""
        self.require("session", "sessions(key)")

        def read(store: Any) -> list[tuple[Any, Any]]:
            assert isinstance(store, SessionStore)
            return [(bounds, _plain(store, value)) for bounds, value in store.fetch(key, True)]
        partition, rows, active, lag = self._read_here(key, read)
        return RowsAnswer(rows, partition, "local", active, lag)

    def local_rows(self, lo: Any = None, hi: Any = None) -> tuple[list[int], list[list[Any]]]:
        """(partitions answered, their ``[key, value, partition]`` rows): the local part of
        ``all`` or ``range``."""
        self.require("kv", "all" if lo is None else "range")
        self._require_active("all" if lo is None else "range")
        views = self.local_views()
        rows = [[k, v, p] for p, view in views.items()
                for k, v in (view.all() if lo is None else view.range(lo, hi))]
        return sorted(views), rows

    def local_window_rows(self, time_from: int,
                          time_to: int) -> tuple[list[int], list[list[Any]]]:
        """(partitions answered, their ``[key, window start, value, partition]`` rows): the
        local part of ``fetch_all``."""
        self.require("window", "fetch_all(time_from, time_to)")
        self._require_active("fetch_all")
        stores = {p: store for p, store in self.local_stores().items()
                  if isinstance(store, WindowStore)}
        rows = [[key, start, _plain(store, value), p] for p, store in stores.items()
                for (key, start), value in store.fetch_all(time_from, time_to, committed=True)]
        return sorted(stores), rows

    # -- the application ------------------------------------------------------------------

    def get(self, key: Any) -> Any:
        return self.get_with_metadata(key).value

    def get_with_metadata(self, key: Any) -> KeyAnswer:
        self.require("kv", "get")

        def answer(address: str, partition: int, status: int, body: Any) -> KeyAnswer:
            active, lag = body["metadata"]["active"], body["metadata"]["lag"]
            value = None if status == 404 else body["value"]
            return KeyAnswer(value, partition, address, active, lag)
        return self._routed(key, lambda: self.local_get(key), "", {}, answer)

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

        def answer(address: str, partition: int, _: int, body: Any) -> RowsAnswer:
            return RowsAnswer([(start, value) for start, value in body["windows"]], partition,
                              address, body["metadata"]["active"], body["metadata"]["lag"])
        return self._routed(key, lambda: self.local_windows(key, time_from, time_to),
                            "/windows", {"from": time_from, "to": time_to}, answer)

    def fetch_all(self, time_from: int, time_to: int) -> list[tuple[tuple[Any, int], Any]]:
        """``((key, window start), value)`` of every key's windows starting in [time_from,
        time_to] (ms, both included), gathered from every instance: by window start, then
        key (as the key serde writes it)."""
        self.require("window", "fetch_all(time_from, time_to)")
        self._require_active("fetch_all")
        rows = self._gather(self.local_window_rows(time_from, time_to),
                            f"/stores/{self.name}/windows", {"from": time_from, "to": time_to})
        encode = self.key_serde.serialize
        return sorted((((key, start), value) for key, start, value, _ in rows),
                      key=lambda row: (row[0][1], encode(row[0][0]) or b""))

    def sessions(self, key: Any) -> list[tuple[Any, Any]]:
        """``[((start, end), value)]`` of ``key``'s sessions, by end then start."""
        return self.sessions_with_metadata(key).rows

    def sessions_with_metadata(self, key: Any) -> RowsAnswer:
        self.require("session", "sessions(key)")

        def answer(address: str, partition: int, _: int, body: Any) -> RowsAnswer:
            return RowsAnswer([((start, end), value) for start, end, value in body["sessions"]],
                              partition, address, body["metadata"]["active"],
                              body["metadata"]["lag"])
        return self._routed(key, lambda: self.local_sessions(key), "/sessions", {}, answer)

    def _routed(self, key: Any, here: Callable[[], T], suffix: str, params: dict[str, Any],
                answer: Callable[[str, int, int, Any], T]) -> T:
        """The answer of the first copy of the key's partition that ``replica`` allows:
        the running task (here or on its owner), then a standby (here, then the others that
        keep one) when the running task is moving or its owner does not answer."""
        partition = self.partition_of(key)
        if partition in (self.standby_copies() if self.replica == "standby"
                         else self.local_stores()):
            return here()
        text = urllib.parse.quote(key_to_text(self.key_serde, key), safe="")
        path = f"/stores/{self.name}/keys/{text}{suffix}"
        failures = []
        if self.replica != "standby":
            address = self.owner_address(partition)
            try:
                if address is None:
                    raise StoreMovingError(f"store {self.name!r}: partition {partition} has "
                                           f"no running owner known right now (a rebalance "
                                           f"or restore); retry")
                return answer(address, partition, *self._ask(address, path, params))
            except StoreMovingError as exc:
                if self.replica == "active":
                    raise
                failures.append(str(exc))
            if partition in self.standby_copies():
                try:
                    return here()
                except StoreMovingError as exc:
                    failures.append(str(exc))
        task_id = f"{self._subtopology}_{partition}"
        for address in self._directory().standby_addresses(task_id):
            try:
                return answer(address, partition,
                              *self._ask(address, path, {**params, "replica": "standby"}))
            except StoreMovingError as exc:
                failures.append(str(exc))
        raise StoreMovingError(f"store {self.name!r}: partition {partition}: no copy allowed "
                               f"by replica {self.replica!r} answered "
                               f"({'; '.join(failures) or 'no standby of task ' + task_id})"
                               f"; retry")

    def _ask(self, address: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return _http_get(address, path + query, self._directory().token)

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
        self._require_active("all")
        return self._everywhere(None, None)

    def range(self, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        """Keys from ``lo`` to ``hi`` (both included, in the serialized keys' order)."""
        self.require("kv", "range")
        self._require_active("range")
        return self._everywhere(lo, hi)

    def _everywhere(self, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        params = {} if lo is None else {"from": key_to_text(self.key_serde, lo),
                                        "to": key_to_text(self.key_serde, hi)}
        rows = self._gather(self.local_rows(lo, hi), f"/stores/{self.name}", params)
        return [(k, v) for k, v, _ in rows]

    def _gather(self, local: tuple[list[int], list[list[Any]]], path: str,
                params: dict[str, Any]) -> list[list[Any]]:
        """This instance's rows and every peer's local part of ``path`` (rows ending in
        their partition), each partition once; ``StoreMovingError`` if one has no running
        owner that answered."""
        answered, rows = local
        done = set(answered)
        directory = self._directory()
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        for address in directory.peers():
            try:
                _, body = _http_get(address, path + query, directory.token)
            except StoreMovingError:
                continue  # what it holds is left unanswered: reported below
            fresh = set(body["partitions"]) - done
            done |= fresh
            rows += [row for row in body["rows"] if row[-1] in fresh]
        missing = sorted(set(range(self._partitions())) - done)
        if missing:
            raise StoreMovingError(f"store {self.name!r}: partitions {missing} have no running "
                                   f"owner known right now (a rebalance or restore); retry")
        return rows

    def _directory(self) -> Any:
        directory = self._app.directory
        if directory is None:
            raise FluvialError(f"store {self.name!r}: the key is not on this instance and no "
                               f"HTTP server (AppServer) routes queries to the others")
        return directory


def _plain(store: WindowStore | SessionStore, stored: Any) -> Any:
    return stored[0] if store.codec.timestamped and stored is not None else stored


def _http_get(address: str, path: str, token: str | None) -> tuple[int, Any]:
    """A forwarded query to a peer: 200 or 404 and its JSON body; 503 (the peer's task is
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
            return 404, json.loads(exc.read())
        if exc.code == 503:
            raise StoreMovingError(f"{address}: {exc.read().decode().strip()}") from None
        raise FluvialError(f"{address}{path}: HTTP {exc.code}: "
                           f"{exc.read().decode().strip()}") from None
    except OSError as exc:
        raise StoreMovingError(f"{address} did not answer ({exc}); retry") from None
