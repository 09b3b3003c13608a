"""TEMPORARY stand-in for the window and session stores h2-state is building (removed once
they land in main): one in-memory class answering the key-value, window and session store
interfaces agreed in the brief, patched into the TestDriver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


class StandInStore:
    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[Any, Any] = {}

    # key-value (put with 2 args), window (3 args: key, value, start), session (4 args)
    def put(self, key: Any, *args: Any) -> None:
        if len(args) == 1:
            k, value = key, args[0]
        elif len(args) == 2:
            k, value = (key, args[1]), args[0]
        else:
            k, value = (key, args[0], args[1]), args[2]
        if value is None:
            self._data.pop(k, None)
        else:
            self._data[k] = value

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def delete(self, key: Any) -> Any:
        return self._data.pop(key, None)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._data.items()))

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        return iter(sorted((k, v) for k, v in self._data.items() if start <= k <= end))

    def approximate_num_entries(self) -> int:
        return len(self._data)

    def fetch(self, key: Any, window_start: int) -> Any:
        return self._data.get((key, window_start))

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> Iterator[tuple[int, Any]]:
        return iter(sorted((k[1], v) for k, v in self._data.items()
                           if len(k) == 2 and k[0] == key and time_from <= k[1] <= time_to))

    def fetch_all(self, time_from: int, time_to: int) -> Iterator[tuple[tuple[Any, int], Any]]:
        return iter(sorted(((k, v) for k, v in self._data.items()
                            if len(k) == 2 and time_from <= k[1] <= time_to),
                           key=lambda kv: (kv[0][1], kv[0][0])))

    def find_sessions(self, key: Any, earliest_session_end: int,
                      latest_session_start: int) -> Iterator[tuple[tuple[int, int], Any]]:
        found = [((k[1], k[2]), v) for k, v in self._data.items()
                 if len(k) == 3 and k[0] == key and k[2] >= earliest_session_end
                 and k[1] <= latest_session_start]
        return iter(sorted(found, key=lambda kv: (kv[0][1], kv[0][0])))

    def remove(self, key: Any, start: int, end: int) -> None:
        self._data.pop((key, start, end), None)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def window_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fluvial.testing.driver.InMemoryKeyValueStore", StandInStore)
