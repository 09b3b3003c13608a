"""Turning messages into records at sources and records into bytes at sinks."""

from __future__ import annotations

import struct
from typing import Any

from fluvial.io.serdes import Serde, SerdeError
from fluvial.record import Change

_LEN = struct.Struct(">i")


class ChangeSerde:
    """Table changes on a repartition topic: a flag byte, then the new and/or old value.

    flag bit 0: a new value follows; bit 1: an old value follows. With both, the new value is
    length-prefixed.
    """

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, change: Any) -> bytes | None:
        new = None if change.new is None else self.inner.serialize(change.new)
        old = None if change.old is None else self.inner.serialize(change.old)
        if new is not None and old is not None:
            return b"\x03" + _LEN.pack(len(new)) + new + old
        if new is not None:
            return b"\x01" + new
        if old is not None:
            return b"\x02" + old
        return b"\x00"

    def deserialize(self, data: bytes | None) -> Any:
        if not data:
            raise SerdeError("a table change record needs at least its flag byte")
        flag = data[0]
        if flag == 1:
            return Change(self.inner.deserialize(data[1:]), None)
        if flag == 2:
            return Change(None, self.inner.deserialize(data[1:]))
        if flag == 3:
            (n,) = _LEN.unpack_from(data, 1)
            return Change(self.inner.deserialize(data[5:5 + n]),
                          self.inner.deserialize(data[5 + n:]))
        if flag == 0:
            return Change(None, None)
        raise SerdeError(f"unknown table change flag {flag}")
