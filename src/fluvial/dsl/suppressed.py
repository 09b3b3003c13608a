"""``Table.suppress``: hold updates back, as Kafka Streams' ``Suppressed`` and ``BufferConfig``.

``Suppressed.until_window_closes(BufferConfig.unbounded())`` emits one final result per
window of a windowed aggregation, once stream time passes the window's end plus grace;
``Suppressed.until_time_limit(d, buffer)`` emits a key's latest update once stream time is
``d`` past its first buffered update. See docs/windows-and-joins.md#suppress.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fluvial.dsl.options import Materialized
from fluvial.errors import TopologyError
from fluvial.io.serdes import BytesSerde
from fluvial.processing.suppress import SuppressGetter, SuppressSpec, TableSuppress
from fluvial.windows import Duration, to_ms

if TYPE_CHECKING:
    from fluvial.dsl.table import Table

PREFIX = "KTABLE-SUPPRESS-"


@dataclass(frozen=True)
class BufferConfig:
    """How much a suppress may hold (None: no limit on that measure) and what it does when
    full: emit its oldest entries early, or stop the application (a *strict* buffer, the
    only kind final results accept, since they must never emit early)."""

    record_limit: int | None = None
    byte_limit: int | None = None
    shut_down: bool = True
    logging: bool = True

    @classmethod
    def unbounded(cls) -> BufferConfig:
        """No limit: the buffer grows as it must (strict: it never emits early)."""
        return cls()

    @classmethod
    def max_records(cls, records: int) -> BufferConfig:
        """At most ``records`` keys; emits early when full unless ``shut_down_when_full``."""
        return cls(_positive(records, "max_records"), None, shut_down=False)

    @classmethod
    def max_bytes(cls, size: int) -> BufferConfig:
        """At most ``size`` bytes (Kafka Streams' estimate: keys, values, record context)."""
        return cls(None, _positive(size, "max_bytes"), shut_down=False)

    def with_max_records(self, records: int) -> BufferConfig:
        return replace(self, record_limit=_positive(records, "max_records"))

    def with_max_bytes(self, size: int) -> BufferConfig:
        return replace(self, byte_limit=_positive(size, "max_bytes"))

    def emit_early_when_full(self) -> BufferConfig:
        return replace(self, shut_down=False)

    def shut_down_when_full(self) -> BufferConfig:
        return replace(self, shut_down=True)

    def with_logging_disabled(self) -> BufferConfig:
        """No changelog: a restarted instance starts with an empty buffer (what it held
        is lost)."""
        return replace(self, logging=False)


@dataclass(frozen=True)
class Suppressed:
    """What ``Table.suppress`` holds back and until when; build with the class methods."""

    buffer: BufferConfig
    time_limit_ms: int | None  # None: until the window closes
    name: str | None = None

    @classmethod
    def until_window_closes(cls, buffer: BufferConfig) -> Suppressed:
        """One final result per window, once it closes (end + grace behind stream time);
        tombstones are dropped. The buffer must be strict."""
        if not buffer.shut_down:
            raise TopologyError("until_window_closes needs a strict buffer that never emits "
                                "early: BufferConfig.unbounded() or .shut_down_when_full()")
        return cls(buffer, None)

    @classmethod
    def until_time_limit(cls, limit: Duration, buffer: BufferConfig) -> Suppressed:
        """A key's latest update, once stream time is ``limit`` past its first buffered
        one (rate-limiting updates); tombstones are forwarded."""
        return cls(buffer, to_ms(limit, "suppress time limit"))

    def with_name(self, name: str) -> Suppressed:
        """Names the processor; its buffer store is ``<name>-store``."""
        return replace(self, name=name)


def suppress(table: Table, suppressed: Suppressed) -> Table:
    """The suppressed table below ``table`` (``Table.suppress``)."""
    from fluvial.dsl.table import Table

    b = table._builder
    graph = b.graph
    final = suppressed.time_limit_ms is None
    limit = _window_close_delay(table) if final else suppressed.time_limit_ms
    assert limit is not None
    buffer = suppressed.buffer
    spec = SuppressSpec(limit, window_end_time=final, drop_tombstones=final,
                        max_records=buffer.record_limit, max_bytes=buffer.byte_limit,
                        shut_down_when_full=buffer.shut_down)
    node_name = suppressed.name or graph.new_name(PREFIX)
    store_name = f"{suppressed.name}-store" if suppressed.name else None
    # the buffer is a key-value store of serialized keys and Kafka Streams' buffer values
    store = b.add_store(Materialized(store_name, persistent=False, logging=buffer.logging),
                        BytesSerde(), BytesSerde(), f"{PREFIX}STATE-STORE-", timestamped=False)
    key_serde, value_serde = b.key_serde(table.key_serde), b.value_serde(table.value_serde)
    table._enable_sending_old_values(True)  # as Kafka Streams: the buffer keeps old values
    node = graph.add_processor(
        node_name, lambda: TableSuppress(spec, store, key_serde, value_serde), [table.node],
        [store])
    return Table(b, node, table.key_serde, table.value_serde, None, parent=table,
                 getter=SuppressGetter(table._getter, store, key_serde, value_serde))


def _window_close_delay(table: Table) -> int:
    """How long after a window's end it closes (the grace; a session's gap plus grace),
    from the windowed aggregation above ``table``."""
    chain = []
    t: Table | None = table
    while t is not None:
        if t.window_close_delay_ms is not None:
            return t.window_close_delay_ms
        chain.append(t.node)
        t = t._parent
    raise TopologyError(f"Window close time is only defined for windowed computations. Got "
                        f"[{'->'.join(reversed(chain))}]: until_window_closes needs a table "
                        f"from windowed_by(...) aggregation")


def _positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return value
