"""Optional persistence for the embedded broker: one append-only file per partition.

Layout under ``data_dir``::

    topics/<topic>/topic.json   partition count and config, written once at creation
    topics/<topic>/<p>.log      framed records; a record's offset is its position in the file
    offsets.json                committed offsets of every group, replaced atomically

A frame is ``<u32 body length><u32 crc32(body)><body>``. A crash can leave a half-written last
frame; loading stops at the first frame that is short or fails its CRC and cuts the file there,
so a restart never serves garbage and never loses an earlier record.

Durability: appends are buffered and pushed to the OS on ``flush`` (the producer's flush, every
commit, close), which survives a process crash; nothing is fsync'd, so a power loss may not be.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from fluvial.io.client import Headers, TopicPartition
from fluvial.io.embedded.message import EmbeddedMessage

_FRAME = struct.Struct("<II")
_TS = struct.Struct("<q")
_LEN = struct.Struct("<i")
_crc32 = zlib.crc32


def _put_bytes(parts: list[bytes], data: bytes | None) -> None:
    if data is None:
        parts.append(_LEN.pack(-1))
    else:
        parts.append(_LEN.pack(len(data)))
        parts.append(data)


def encode(msg: EmbeddedMessage) -> bytes:
    """One framed record (the offset is implicit: the frame's index in the file)."""
    parts = [_TS.pack(msg._timestamp)]
    _put_bytes(parts, msg._key)
    _put_bytes(parts, msg._value)
    headers = msg._headers
    if headers is None:
        parts.append(_LEN.pack(-1))
    else:
        parts.append(_LEN.pack(len(headers)))
        for name, value in headers:
            _put_bytes(parts, name.encode())
            _put_bytes(parts, value)
    body = b"".join(parts)
    return _FRAME.pack(len(body), _crc32(body)) + body


class _Reader:
    """Cursor over one frame body; raises ValueError when the body is inconsistent."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def i32(self) -> int:
        (n,) = _LEN.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(n)

    def blob(self) -> bytes | None:
        n = self.i32()
        if n < 0:
            return None
        end = self.pos + n
        if end > len(self.buf):
            raise ValueError("field runs past the frame")
        data = self.buf[self.pos:end]
        self.pos = end
        return data


def _decode(body: bytes, topic: str, partition: int, offset: int) -> EmbeddedMessage:
    r = _Reader(body)
    (ts,) = _TS.unpack_from(body, 0)
    r.pos = 8
    key = r.blob()
    value = r.blob()
    count = r.i32()
    headers: Headers | None = None
    if count >= 0:
        headers = []
        for _ in range(count):
            name = r.blob()
            headers.append(("" if name is None else name.decode(), r.blob()))
    return EmbeddedMessage(topic, partition, offset, key, value, ts, headers)


def read_log(path: Path, topic: str, partition: int) -> list[EmbeddedMessage]:
    """Every intact record of a partition file; a torn or corrupt tail is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    out: list[EmbeddedMessage] = []
    pos, size = 0, len(data)
    while pos + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        body = data[start:start + length]
        if len(body) < length or _crc32(body) != crc:
            break
        try:
            out.append(_decode(body, topic, partition, len(out)))
        except (ValueError, struct.error, UnicodeDecodeError):
            break
        pos = start + length
    if pos < size:
        with path.open("r+b") as f:
            f.truncate(pos)
    return out


class LogFile:
    """Buffered appender for one partition file."""

    __slots__ = ("_file", "dirty")

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("ab")
        self.dirty = False

    def append(self, msg: EmbeddedMessage) -> None:
        self._file.write(encode(msg))
        self.dirty = True

    def flush(self) -> None:
        if self.dirty:
            self._file.flush()
            self.dirty = False

    def close(self) -> None:
        self._file.close()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Storage:
    """The files under one ``data_dir``; the broker calls it with its lock held."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir)
        self.topics_dir = self.root / "topics"
        self.topics_dir.mkdir(parents=True, exist_ok=True)
        self.offsets_path = self.root / "offsets.json"

    def load_topics(self) -> list[tuple[str, dict[str, str], list[list[EmbeddedMessage]]]]:
        """(name, config, logs) of every topic on disk; a dir without topic.json is ignored."""
        found = []
        for tdir in sorted(self.topics_dir.iterdir()):
            meta_path = tdir / "topic.json"
            if not meta_path.exists():
                continue
            meta = json.loads(meta_path.read_text())
            name = meta["name"]
            logs = [read_log(tdir / f"{p}.log", name, p) for p in range(int(meta["partitions"]))]
            found.append((name, dict(meta.get("config", {})), logs))
        return found

    def open_logs(self, name: str, partitions: int) -> list[LogFile]:
        tdir = self.topics_dir / name
        return [LogFile(tdir / f"{p}.log") for p in range(partitions)]

    def create_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        tdir = self.topics_dir / name
        if tdir.exists():  # leftovers of a topic whose creation did not finish
            shutil.rmtree(tdir)
        tdir.mkdir(parents=True)
        meta = {"name": name, "partitions": partitions, "config": config}
        _write_atomically(tdir / "topic.json", json.dumps(meta))

    def delete_topic(self, name: str) -> None:
        tdir = self.topics_dir / name
        meta = tdir / "topic.json"
        if meta.exists():
            meta.unlink()  # first, so a crash mid-delete leaves no half topic behind
        shutil.rmtree(tdir, ignore_errors=True)

    def load_offsets(self) -> dict[str, dict[TopicPartition, int]]:
        if not self.offsets_path.exists():
            return {}
        raw: dict[str, Any] = json.loads(self.offsets_path.read_text())
        return {group: {TopicPartition(t, int(p)): int(o) for t, p, o in rows}
                for group, rows in raw.get("groups", {}).items()}

    def save_offsets(self, offsets: dict[str, dict[TopicPartition, int]]) -> None:
        groups = {group: [[tp.topic, tp.partition, o] for tp, o in sorted(per.items())]
                  for group, per in offsets.items() if per}
        _write_atomically(self.offsets_path, json.dumps({"version": 1, "groups": groups}))
