"""Serdes: how keys and values become bytes on a topic and back.

``None`` always maps to ``None`` both ways, so tombstones survive every serde.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import orjson

from fluvial.errors import ConfigError


class SerdeError(ValueError):
    """Bytes that a serde cannot read, or a value it cannot write."""


@runtime_checkable
class Serde(Protocol):
    def serialize(self, value: Any) -> bytes | None: ...
    def deserialize(self, data: bytes | None) -> Any: ...


class BytesSerde:
    name = "bytes"

    def serialize(self, value: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise SerdeError(f"bytes serde cannot write a {type(value).__name__}")

    def deserialize(self, data: bytes | None) -> Any:
        return data


class StringSerde:
    name = "string"
    fast_deserialize = staticmethod(bytes.decode)
    fast_serialize = staticmethod(str.encode)

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise SerdeError(f"string serde cannot write a {type(value).__name__}: {value!r}")
        return value.encode()

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise SerdeError(f"not UTF-8: {exc}") from None


_LONG = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")


class Int64Serde:
    """Big-endian signed 64-bit, byte-compatible with Kafka's LongSerializer."""

    name = "int64"
    fast_serialize = staticmethod(_LONG.pack)

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return _LONG.pack(value)
        except struct.error as exc:
            raise SerdeError(f"int64 serde cannot write {value!r}: {exc}") from None

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) != 8:
            raise SerdeError(f"int64 needs 8 bytes, got {len(data)}")
        return _LONG.unpack(data)[0]


class Float64Serde:
    """Big-endian IEEE 754 double, byte-compatible with Kafka's DoubleSerializer."""

    name = "float64"
    fast_serialize = staticmethod(_DOUBLE.pack)

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return _DOUBLE.pack(value)
        except struct.error as exc:
            raise SerdeError(f"float64 serde cannot write {value!r}: {exc}") from None

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) != 8:
            raise SerdeError(f"float64 needs 8 bytes, got {len(data)}")
        return _DOUBLE.unpack(data)[0]


class JsonSerde:
    name = "json"
    fast_deserialize = staticmethod(orjson.loads)
    fast_serialize = staticmethod(orjson.dumps)

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise SerdeError(f"json serde cannot write {value!r}: {exc}") from None

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerdeError(f"invalid JSON: {exc}") from None


def fast_deserializer(serde: Serde) -> Callable[[Any], Any]:
    """A serde's C-level reader for a whole batch, where it has one.

    ``fast_deserialize`` reads non-null bytes with no Python frame in between (``orjson.loads``,
    ``bytes.decode``) and *raises* on ``None`` or bad bytes; the caller then redoes the batch
    record by record with ``deserialize``, which maps ``None`` to ``None`` and explains errors.
    """
    fast = getattr(serde, "fast_deserialize", None)
    return fast if fast is not None else serde.deserialize


def fast_serializer(serde: Serde) -> Callable[[Any], bytes | None]:
    """A serde's C-level writer for non-null values, where it has one.

    ``fast_serialize`` (``orjson.dumps``, ``str.encode``) is only valid for a value that is not
    ``None`` (``orjson.dumps(None)`` would write ``null``, not a tombstone): the caller writes
    ``None`` itself, and redoes a batch with ``serialize`` when the fast writer raises.
    """
    fast = getattr(serde, "fast_serialize", None)
    return fast if fast is not None else serde.serialize


def for_topic(serde: Serde, topic: str, is_key: bool) -> Serde:
    """The serde to use on ``topic``'s keys or values.

    A serde whose bytes depend on the topic (a schema registry serde names its subject after
    it) has ``for_topic(topic, is_key)`` and returns a serde bound to it; others are used as
    they are.
    """
    bind = getattr(serde, "for_topic", None)
    return serde if bind is None else bind(topic, is_key)


_BY_NAME: dict[str, type] = {
    "bytes": BytesSerde,
    "string": StringSerde,
    "str": StringSerde,
    "int64": Int64Serde,
    "long": Int64Serde,
    "float64": Float64Serde,
    "double": Float64Serde,
    "json": JsonSerde,
}


def resolve(serde: Serde | str | None, default: Serde | None = None) -> Serde:
    """Accept a serde object or one of the built-in names ('string', 'json', ...)."""
    if serde is None:
        return default if default is not None else BytesSerde()
    if isinstance(serde, str):
        try:
            return _BY_NAME[serde.lower()]()
        except KeyError:
            names = ", ".join(sorted(_BY_NAME))
            raise ConfigError(f"unknown serde {serde!r}; built-in serdes are: {names}") from None
    if isinstance(serde, type):  # ``serdes.String`` for ``serdes.String()``
        cls: type = serde
        try:
            serde = cls()
        except TypeError as exc:
            raise ConfigError(f"serde class {cls.__name__} needs arguments: pass an "
                              f"instance ({exc})") from None
    if not isinstance(serde, Serde):
        raise ConfigError(
            f"{serde!r} is not a serde: it needs serialize(value) and deserialize(data)")
    return serde
