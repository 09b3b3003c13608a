"""Interactive queries: a store read from any instance, routed to the one running the key's task.

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
from fluvial.state.store import KeyValueStore, ReadOnlyView

if TYPE_CHECKING:
    from fluvial.runtime.app import App

LOCAL_HEADER = "X-Fluvial-Local"  # a forwarded query: answer from this instance only
HTTP_TIMEOUT_S = 10.0


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


class StoreQuery:
    """``app.query(name)``: ``get``, ``range`` and ``all`` over the whole application."""

    def __init__(self, app: App, name: str) -> None:
        self._app = app
        self.name = name
        self._spec = app.topology.stores[name]
        if self._spec.kind != "kv":
            raise ConfigError(f"store {name!r} is a {self._spec.kind} store; interactive "
                              f"queries read key-value stores only (so far)")
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

    # -- this instance --------------------------------------------------------------------

    def local_views(self) -> dict[int, ReadOnlyView]:
        """Partition -> the store of each task running here (restoring ones left out)."""
        thread = self._app.stream_thread
        if thread is None:
            return {}
        views = {}
        for task_id, active in list(thread.tasks.items()):
            st_id, partition = (int(x) for x in task_id.split("_"))
            store = active.stores.stores.get(self.name) if st_id == self._subtopology else None
            if store is not None and isinstance(store.store, KeyValueStore):
                views[partition] = ReadOnlyView(store.store)
        return views

    def local_get(self, key: Any) -> KeyAnswer:
        partition = self.partition_of(key)
        view = self.local_views().get(partition)
        if view is None:
            raise StoreMovingError(f"store {self.name!r}: partition {partition} is not "
                                   f"running on this instance; retry")
        return KeyAnswer(view.get(key), partition, "local")

    def local_rows(self, lo: Any = None, hi: Any = None) -> tuple[list[int], list[list[Any]]]:
        """(partitions answered, their ``[key, value, partition]`` rows): the local part of
        ``all`` or ``range``."""
        views = self.local_views()
        rows = [[k, v, p] for p, view in views.items()
                for k, v in (view.all() if lo is None else view.range(lo, hi))]
        return sorted(views), rows

    # -- the application ------------------------------------------------------------------

    def get(self, key: Any) -> Any:
        return self.get_with_metadata(key).value

    def get_with_metadata(self, key: Any) -> KeyAnswer:
        partition = self.partition_of(key)
        if partition in self.local_views():
            return self.local_get(key)
        address = self.owner_address(partition)
        if address is None:
            raise StoreMovingError(f"store {self.name!r}: partition {partition} has no running "
                                   f"owner known right now (a rebalance or restore); retry")
        directory = self._directory()
        text = urllib.parse.quote(key_to_text(self.key_serde, key), safe="")
        status, body = _http_get(address, f"/stores/{self.name}/keys/{text}", directory.token)
        if status == 404:
            return KeyAnswer(None, partition, address)
        return KeyAnswer(body["value"], partition, address, body["metadata"]["active"])

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
        return self._everywhere(None, None)

    def range(self, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        """Keys from ``lo`` to ``hi`` (both included, in the serialized keys' order)."""
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
