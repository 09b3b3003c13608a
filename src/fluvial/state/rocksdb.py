"""A RocksDB key-value store (through rocksdict), holding the same bytes as the changelog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict

from fluvial.state.codec import StoreCodec


class RocksDBKeyValueStore:
    def __init__(self, name: str, path: Path, codec: StoreCodec) -> None:
        self.name = name
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._codec = codec
        self._db = Rdict(str(path), Options(raw_mode=True))

    def get(self, key: Any) -> Any:
        return self._codec.decode_value(self._db.get(self._codec.encode_key(key)))

    def put(self, key: Any, value: Any) -> None:
        raw = self._codec.encode_value(value)
        if raw is None:
            self._db.delete(self._codec.encode_key(key))
        else:
            self._db[self._codec.encode_key(key)] = raw

    def put_raw(self, key: bytes, value: bytes | None) -> None:
        """Apply a changelog record as it is: restore needs no decoding."""
        if value is None:
            self._db.delete(key)
        else:
            self._db[key] = value

    def delete(self, key: Any) -> Any:
        old = self.get(key)
        self._db.delete(self._codec.encode_key(key))
        return old

    def all(self) -> Iterator[tuple[Any, Any]]:
        decode_key, decode_value = self._codec.decode_key, self._codec.decode_value
        return ((decode_key(k), decode_value(v))  # type: ignore[arg-type]  # raw mode: bytes
                for k, v in self._db.items())

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        """Keys between ``start`` and ``end`` inclusive, in the byte order of their serde."""
        lo, hi = self._codec.encode_key(start), self._codec.encode_key(end)
        decode_key, decode_value = self._codec.decode_key, self._codec.decode_value
        for k, v in self._db.items(from_key=lo):
            assert isinstance(k, bytes) and isinstance(v, bytes)  # raw mode
            if k > hi:
                break
            yield decode_key(k), decode_value(v)

    def approximate_num_entries(self) -> int:
        return sum(1 for _ in self._db.keys())  # noqa: SIM118 (Rdict is not iterable)

    def flush(self) -> None:
        self._db.flush()

    def close(self) -> None:
        self._db.close()

    def wipe(self) -> None:
        """Delete the files: used when the local copy cannot be trusted."""
        self._db.close()
        Rdict.destroy(str(self.path))
        self._db = Rdict(str(self.path), Options(raw_mode=True))
