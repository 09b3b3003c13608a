"""Serialization formats of SQL sources: KAFKA, JSON, DELIMITED, AVRO (ksqlDB's), and the
internal one of repartition topics and stores.

Format serdes turn a source's key into a tuple of its key columns' values and its value into
a ``dict`` of its value columns (``None`` both ways for a tombstone). KAFKA primitives are
byte-compatible with Kafka's serializers (INT: 4-byte big-endian, BIGINT: 8, DOUBLE: IEEE
754, STRING: UTF-8). DECIMAL stays exact through JSON: read from the number's text, written
as a plain number.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson

from fluvial.io.serdes import SerdeError
from fluvial.sql import types as t
from fluvial.sql.catalog import Column
from fluvial.sql.types import SqlType

KEY_FORMATS = ("KAFKA", "JSON", "DELIMITED", "NONE")
VALUE_FORMATS = ("KAFKA", "JSON", "DELIMITED", "AVRO")


# -- JSON text with exact decimals --------------------------------------------------------

def delimiter(value: str) -> str:
    """A VALUE_DELIMITER property as the character it means ('TAB', 'SPACE' or one char)."""
    special = {"TAB": "\t", "SPACE": " "}
    if value.upper() in special:
        return special[value.upper()]
    if not value.strip():  # a space or tab must be named: SPACE, TAB
        raise ValueError("Configuration VALUE_DELIMITER is invalid: Delimiter cannot be empty, "
                         "if you meant to have a tab or space for delimiter, please use the "
                         "special values 'TAB' or 'SPACE'")
    if len(value) != 1:
        raise ValueError(f"Configuration VALUE_DELIMITER is invalid: Invalid delimiter value: "
                         f"'{value}'. Delimiter must be a single character or TAB,SPACE")
    return value


def dump_json(value: Any) -> bytes:
    """JSON bytes of ``value``; Decimals are written as plain numbers, exactly."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _dump_exact(value).encode()


def _dump_exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(orjson.dumps(str(k)).decode() + ":" + _dump_exact(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dump_exact(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def load_json(data: bytes | str, exact: bool) -> Any:
    """Parse JSON; ``exact``: numbers with a fraction become Decimals (for DECIMAL columns)."""
    if exact:
        return json.loads(data, parse_float=Decimal)
    return orjson.loads(data)


# -- coercion of parsed values to column types --------------------------------------------

def _to_int(bits: int) -> Callable[[Any], int]:
    wrap = t.wrap_int if bits == 32 else t.wrap_long
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def convert(v: Any) -> int:
        if type(v) is int and low <= v <= high:  # most values: no call, no wrapping
            return v
        if isinstance(v, bool):
            raise SerdeError(f"cannot read {v!r} as an integer")
        if isinstance(v, int):
            if wrap(v) != v:
                raise SerdeError(f"{v} is out of range of a {bits}-bit integer")
            return v
        if isinstance(v, float | Decimal) and v == int(v):
            return int(v)
        if isinstance(v, str):
            try:
                return convert(int(v.strip()))
            except ValueError:
                pass
        raise SerdeError(f"cannot read {v!r} as an integer")
    return convert


def _to_double(v: Any) -> float:
    if isinstance(v, bool):
        raise SerdeError(f"cannot read {v!r} as a DOUBLE")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise SerdeError(f"cannot read {v!r} as a DOUBLE") from None


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict | list):
        return orjson.dumps(v).decode()
    return t.to_text(v)


def _to_boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise SerdeError(f"cannot read {v!r} as a BOOLEAN")


def _to_decimal(type_: SqlType) -> Callable[[Any], Decimal]:
    def convert(v: Any) -> Decimal:
        try:
            number = v if isinstance(v, Decimal) else Decimal(str(v).strip()) \
                if not isinstance(v, float) else Decimal(repr(v))
            return t.quantize(number, type_)
        except (ArithmeticError, ValueError) as exc:
            raise SerdeError(f"cannot read {v!r} as {type_}: {exc}") from None
    return convert


def coercer(type_: SqlType) -> Callable[[Any], Any]:
    """How a value parsed from JSON or text becomes a value of ``type_`` (non-null)."""
    if type_.name == "INTEGER":
        return _to_int(32)
    if type_.name == "BIGINT":
        return _to_int(64)
    if type_.name == "DECIMAL":
        return _to_decimal(type_)
    simple = {"DOUBLE": _to_double, "STRING": _to_string, "BOOLEAN": _to_boolean,
              "BYTES": _to_bytes}.get(type_.name)
    return simple if simple is not None else _unreadable(type_)


def _unreadable(type_: SqlType) -> Callable[[Any], Any]:
    def refuse(v: Any) -> Any:
        raise SerdeError(f"cannot read {v!r} as {type_}: columns of that type are written "
                         f"only, not read yet")
    return refuse


def _to_bytes(v: Any) -> bytes:
    import base64

    if isinstance(v, bytes):
        return v
    return base64.b64decode(str(v))


#: the Python type a value of these SQL types already has when it needs no converting
_AS_IS = {"STRING": str, "DOUBLE": float, "BOOLEAN": bool}


def _coerce_all(codec: _Codec, values: Sequence[Any]) -> list[Any]:
    # a value already of its column's type is kept without a call (most of them)
    return [v if type(v) is as_is else None if v is None else coerce(v)
            for as_is, coerce, v in zip(codec.as_is, codec.coercers, values, strict=True)]


class _Fields:
    """Which field of an object each column reads: by its name, else matched
    case-insensitively; worked out once per set of field names (a topic's records share a
    few), up to ``LIMIT`` of them, then per object."""

    LIMIT = 256

    def __init__(self, columns: Sequence[Column]) -> None:
        self.names = [c.name for c in columns]
        self.keys: dict[tuple[Any, ...], list[Any]] = {}

    def values(self, fields: dict[Any, Any]) -> list[Any]:
        shape = tuple(fields)
        keys = self.keys.get(shape)
        if keys is None:
            keys = self._keys(shape)
            if len(self.keys) < self.LIMIT:
                self.keys[shape] = keys
        return list(map(fields.get, keys))  # None: no such field, which get gives None

    def _keys(self, shape: tuple[Any, ...]) -> list[Any]:
        present = set(shape)
        upper = {str(k).upper(): k for k in shape}  # the last of equal names, as a dict's
        return [n if n in present else upper.get(n.upper()) for n in self.names]


# -- row codecs: a list of column values <-> bytes ---------------------------------------

class _Codec:
    """Reads and writes the values of ``columns`` (in order), or None for a tombstone."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.coercers = tuple(coercer(c.type) for c in columns)  # built once, not per value
        self.as_is = tuple(_AS_IS.get(c.type.name) for c in columns)
        self.fields = _Fields(columns)  # for the formats of named fields (JSON, AVRO)

    def encode(self, values: Sequence[Any]) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> list[Any]:
        raise NotImplementedError


class _KafkaCodec(_Codec):
    _STRUCTS = {"INTEGER": struct.Struct(">i"), "BIGINT": struct.Struct(">q"),
                "DOUBLE": struct.Struct(">d")}

    def __init__(self, columns: Sequence[Column]) -> None:
        super().__init__(columns)
        self.type = columns[0].type
        self.packer = self._STRUCTS.get(self.type.name)

    def encode(self, values: Sequence[Any]) -> bytes:
        v = values[0]
        if v is None:
            raise SerdeError("the KAFKA format cannot write a NULL column")
        packer = self.packer
        if packer is not None:
            return packer.pack(v)
        if self.type.name == "STRING":
            return str(v).encode()
        return bytes(v)

    def decode(self, data: bytes) -> list[Any]:
        packer = self.packer
        if packer is not None:
            if len(data) != packer.size:
                raise SerdeError(f"KAFKA format {self.type} needs {packer.size} bytes, "
                                 f"got {len(data)}")
            return [packer.unpack(data)[0]]
        if self.type.name == "STRING":
            try:
                return [data.decode()]
            except UnicodeDecodeError as exc:
                raise SerdeError(f"not UTF-8: {exc}") from None
        return [data]


class _JsonCodec(_Codec):
    """An object of the columns by name (field names matched case-insensitively), or the
    bare value of a single column when unwrapped."""

    def __init__(self, columns: Sequence[Column], wrapped: bool) -> None:
        super().__init__(columns)
        self.wrapped = wrapped
        self.exact = any(c.type.name == "DECIMAL" for c in columns)

    def encode(self, values: Sequence[Any]) -> bytes:
        if not self.wrapped:
            return dump_json(_jsonable(values[0]))
        return dump_json({c.name: _jsonable(v)
                          for c, v in zip(self.columns, values, strict=True)})

    def decode(self, data: bytes) -> list[Any]:
        try:
            parsed = load_json(data, self.exact)
        except ValueError as exc:
            raise SerdeError(f"invalid JSON: {exc}") from None
        if not self.wrapped:
            return _coerce_all(self, [parsed])
        if not isinstance(parsed, dict):
            raise SerdeError(f"expected a JSON object, got {type(parsed).__name__}")
        return _coerce_all(self, self.fields.values(parsed))


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, bytes):
        import base64

        return base64.b64encode(v).decode()
    return v


class _DelimitedCodec(_Codec):
    """Values in column order, comma-separated unless another delimiter is given; an empty
    field is NULL."""

    def __init__(self, columns: Sequence[Column], delimiter: str = ",") -> None:
        super().__init__(columns)
        self.delimiter = delimiter
        # a field with one of these needs the csv module's quoting; most have none, and a
        # plain split or join is what csv would do for them, at a tenth of the cost
        self.special = frozenset({delimiter, '"', "\r", "\n"})

    def _plain(self, text: str) -> bool:
        return not any(c in text for c in self.special)

    def encode(self, values: Sequence[Any]) -> bytes:
        texts = ["" if v is None else t.to_text(v) for v in values]
        if all(map(self._plain, texts)) and texts != [""]:  # csv writes a lone "" as '""'
            return self.delimiter.join(texts).encode()
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="", delimiter=self.delimiter).writerow(texts)
        return buffer.getvalue().encode()

    def decode(self, data: bytes) -> list[Any]:
        try:
            line = data.decode()
        except UnicodeDecodeError as exc:
            raise SerdeError(f"not UTF-8: {exc}") from None
        if line and self._plain(line.replace(self.delimiter, "")):
            fields = line.split(self.delimiter)
        else:
            fields = next(csv.reader([line], delimiter=self.delimiter), [])
        if len(fields) != len(self.columns):
            raise SerdeError(f"Unexpected field count, csvFields:{len(fields)} "
                             f"schemaFields:{len(self.columns)}")
        return _coerce_all(self, [None if f == "" else f for f in fields])


class _AvroCodec(_Codec):
    """A record of the columns in a schema registry's wire format (values only). Written with
    ksqlDB's schema for the columns (``avro_schema``), registered under ``<topic>-value``;
    read with the writer's schema, fields matched by name (then case-insensitively)."""

    def __init__(self, columns: Sequence[Column], registry: str, topic: str) -> None:
        super().__init__(columns)
        from fluvial.schema_registry import AvroSerde

        client = _registry_client(registry)
        self.writer = AvroSerde(client, avro_schema(columns)).for_topic(topic, is_key=False)
        self.reader = AvroSerde(client)

    def encode(self, values: Sequence[Any]) -> bytes:
        return self.writer.serialize({c.name: v for c, v in
                                      zip(self.columns, values, strict=True)}) or b""

    def decode(self, data: bytes) -> list[Any]:
        record = self.reader.deserialize(data)
        if not isinstance(record, dict):
            raise SerdeError(f"expected an Avro record, got {type(record).__name__}")
        return _coerce_all(self, self.fields.values(record))


@functools.cache
def _registry_client(url: str) -> Any:
    """One client per registry URL, so every source and sink shares its schema caches."""
    from fluvial.schema_registry import registry_client

    return registry_client(url)


_AVRO_TYPES = {"BOOLEAN": "boolean", "INTEGER": "int", "BIGINT": "long", "DOUBLE": "double",
               "STRING": "string", "BYTES": "bytes"}


def avro_schema(columns: Sequence[Column]) -> str:
    """ksqlDB's Avro schema of value columns: record ``KsqlDataSourceSchema`` in namespace
    ``io.confluent.ksql.avro_schemas``, every field nullable with a null default."""
    def avro_type(type_: SqlType) -> Any:
        if type_.name == "DECIMAL":
            return {"type": "bytes", "logicalType": "decimal", "precision": type_.precision,
                    "scale": type_.scale}
        return _AVRO_TYPES[type_.name]

    return json.dumps({"type": "record", "name": "KsqlDataSourceSchema",
                       "namespace": "io.confluent.ksql.avro_schemas",
                       "fields": [{"name": c.name, "type": ["null", avro_type(c.type)],
                                   "default": None} for c in columns]})


def codec(format_: str, columns: Sequence[Column], wrapped: bool = True,
          delimiter: str = ",", registry: str | None = None, topic: str = "") -> _Codec:
    """The codec of ``columns`` in ``format_``; a single column is unwrapped where the format
    says (always for keys, ``WRAP_SINGLE_VALUE=false`` for values). AVRO needs the schema
    registry's URL and the topic (its subject is ``<topic>-value``)."""
    if format_ == "KAFKA":
        if len(columns) != 1:
            raise ValueError(f"The 'KAFKA' format only supports a single field. "
                             f"Got: {len(columns)} fields")
        if columns[0].type.name in ("BOOLEAN", "DECIMAL"):
            raise ValueError(f"The 'KAFKA' format does not support type "
                             f"'{columns[0].type}'")
        return _KafkaCodec(columns)
    if format_ == "JSON":
        return _JsonCodec(columns, wrapped or len(columns) != 1)
    if format_ == "DELIMITED":
        return _DelimitedCodec(columns, delimiter)
    if format_ == "AVRO":
        if not wrapped:
            raise ValueError("Format 'AVRO' with 'WRAP_SINGLE_VALUE' set to 'false' is not "
                             "supported yet: AVRO values are records")
        if not registry:
            raise ValueError("Format 'AVRO' needs a schema registry: set the "
                             "'ksql.schema.registry.url' property (fluvial sql "
                             "--schema-registry URL)")
        return _AvroCodec(columns, registry, topic)
    raise ValueError(f"unknown format {format_!r}; formats: {', '.join(VALUE_FORMATS)}")


# -- serdes the topology uses -------------------------------------------------------------

class KeySerde:
    """A source's key: the tuple of its key columns' values (``()`` with no key columns)."""

    def __init__(self, format_: str, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.format = format_
        self._codec = codec(format_, columns, wrapped=False) if columns else None

    def serialize(self, value: Any) -> bytes | None:
        if value is None or self._codec is None:
            return None
        if len(value) == 1:  # the common key, without a generator per record
            if value[0] is None:
                return None
        elif all(v is None for v in value) and self.format != "JSON":
            return None
        return self._codec.encode(value)

    def deserialize(self, data: bytes | None) -> Any:
        if self._codec is None:
            return ()
        if data is None:
            return tuple(None for _ in self.columns)
        return tuple(self._codec.decode(data))


class ValueSerde:
    """A source's value: ``dict`` of its value columns, None for a tombstone."""

    def __init__(self, format_: str, columns: Sequence[Column], wrapped: bool = True,
                 delimiter: str = ",", registry: str | None = None, topic: str = "") -> None:
        self.columns = tuple(columns)
        self._names = [c.name for c in columns]
        self._codec = codec(format_, columns, wrapped, delimiter, registry, topic)
        self._json_object = isinstance(self._codec, _JsonCodec) and wrapped

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if self._json_object and list(value) == self._names:
            # a row of exactly the columns, in order (a projection's): orjson writes it as
            # the codec would, unless it holds what orjson refuses (bytes, a Decimal) or a
            # NULL, which may stand for a NaN or infinity: those take the codec's way
            try:
                data = orjson.dumps(value)
            except TypeError:
                pass
            else:
                if b"null" not in data:
                    return data
        return self._codec.encode([value.get(n) for n in self._names])

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        return dict(zip(self._names, self._codec.decode(data), strict=True))


class InternalSerde:
    """Rows, keys and aggregate states on repartition topics and in stores: JSON where a
    Decimal is tagged (``{"$d": "1.50"}``) so it reads back exact; a top-level list is read
    back as a tuple (keys are tuples)."""

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        return orjson.dumps(value, default=_tag, option=orjson.OPT_PASSTHROUGH_SUBCLASS)

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        value = _untagged(data)
        return tuple(value) if isinstance(value, list) else value


class InternalStateSerde(InternalSerde):
    """Aggregate states: lists stay lists."""

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        return _untagged(data)


def _tag(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$d": format(value, "f")}
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__}")


def _untagged(data: bytes) -> Any:
    """The value of JSON ``data`` with its tagged Decimals read back; only bytes with a tag
    are walked (``"$d"`` can only be in them as a key or that very string)."""
    value = orjson.loads(data)
    return _untag(value) if b'"$d"' in data else value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$d" in value:
            return Decimal(value["$d"])
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value
