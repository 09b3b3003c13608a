"""What both sides emit: per output topic, records in order, key and value as hex."""

from __future__ import annotations

from typing import NamedTuple


class Output(NamedTuple):
    key: str | None
    value: str | None
    ts: int


Outputs = dict[str, list[Output]]
