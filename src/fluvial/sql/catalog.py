"""What the engine knows: sources (streams and tables), their schemas, topics and formats."""

from __future__ import annotations

from dataclasses import dataclass

from fluvial.sql import types as t
from fluvial.sql.types import SqlType

ROWTIME = "ROWTIME"
WINDOWSTART = "WINDOWSTART"
WINDOWEND = "WINDOWEND"
PSEUDO_COLUMNS = frozenset({ROWTIME, WINDOWSTART, WINDOWEND})


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType

    def __str__(self) -> str:
        return f"`{self.name}` {self.type}"


@dataclass(frozen=True)
class Schema:
    key: tuple[Column, ...]
    value: tuple[Column, ...]

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key + self.value

    def find(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def __str__(self) -> str:
        keys = [f"{c} KEY" for c in self.key]
        return ", ".join(keys + [str(c) for c in self.value])


@dataclass(frozen=True)
class WindowInfo:
    kind: str  # TUMBLING | HOPPING | SESSION
    size_ms: int | None  # None for sessions


@dataclass(frozen=True)
class Formats:
    key: str  # KAFKA | JSON | DELIMITED | NONE
    value: str
    wrap_single_value: bool = True
    value_delimiter: str = ","  # of DELIMITED values
    schema_registry: str | None = None  # its URL, for AVRO (ksql.schema.registry.url)


@dataclass(frozen=True)
class DataSource:
    name: str
    kind: str  # STREAM | TABLE
    schema: Schema
    topic: str
    formats: Formats
    partitions: int = 1
    timestamp_column: str | None = None
    window: WindowInfo | None = None
    query_id: str | None = None  # the persistent query writing it, if any
    statement: str = ""
    read_only: bool = False  # CREATE SOURCE: no INSERT, no DELETE TOPIC

    def scope_columns(self) -> dict[str, SqlType]:
        """Columns a query over this source may name: its own, then ROWTIME (and the window
        bounds of a windowed source)."""
        columns = {c.name: c.type for c in self.schema.columns}
        columns[ROWTIME] = t.BIGINT
        if self.window is not None:
            columns[WINDOWSTART] = t.BIGINT
            columns[WINDOWEND] = t.BIGINT
        return columns
