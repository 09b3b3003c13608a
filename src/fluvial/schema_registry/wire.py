"""The schema registry wire format: magic byte 0, the schema id (4 bytes, big-endian), payload.

Confluent's serializers (and Apicurio's in its Confluent mode) frame every record this way, so a
reader needs only the registry to find the writer's schema. Checked here, before any library
sees the bytes, so a record that is not framed at all gets an error that says so.
"""

from __future__ import annotations

import struct

from fluvial.io.serdes import SerdeError

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size  # 5


def frame(schema_id: int, payload: bytes) -> bytes:
    """``payload`` framed for ``schema_id`` (what a registry serializer writes)."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + payload


def schema_id_of(data: bytes) -> int:
    """The schema id of framed ``data``; a :class:`SerdeError` saying why when it is not framed."""
    if len(data) < HEADER_SIZE:
        raise SerdeError(f"not in the schema registry wire format: {len(data)} byte(s), fewer "
                         f"than the {HEADER_SIZE} of its header (magic byte 0, 4-byte schema id)")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise SerdeError(f"not in the schema registry wire format: the first byte is "
                         f"{data[0]:#04x}, not the magic byte 0x00 (was it written by a serde "
                         f"without a schema registry?)")
    return int(schema_id)
