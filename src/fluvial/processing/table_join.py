"""Table-table joins (inner, left, outer), as Kafka Streams' ``KTableKTable*Join``.

A join is three processors: one below each table, which looks a change of its side up in
the other side (through that table's value getter) and derives the joined change, and a
merge below both, which materializes the result where asked and forwards it. The output
timestamp is the larger of the two sides' (the changing side's alone where the other is
absent). Old values are joined, and forwarded, only where the result sends old values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.processing.getters import Getter, ValueGetterSupplier
from fluvial.processing.processor import Processor, ProcessorContext
from fluvial.processing.table import Forwarding
from fluvial.record import Change, Record

Joiner = Callable[[Any, Any], Any]

#: which side must be present for a result, seen from the side that changed
INNER, LEFT, RIGHT, OUTER = "inner", "left", "right", "outer"


def reverse(joiner: Joiner) -> Joiner:
    """The joiner as the right side calls it: its own value first."""
    return lambda this, other: joiner(other, this)


class TableJoinSide(Processor):
    """A change of this side joined with the other side's current value.

    ``kind`` as seen from this side: INNER (both must be there), LEFT (this side is the
    left table of a left join), RIGHT (this side is its right table: the left must be there)
    or OUTER. ``joiner(this_value, other_value)``.
    """

    fans_out = False

    def __init__(self, other: ValueGetterSupplier, joiner: Joiner, kind: str,
                 result: Forwarding) -> None:
        self.other = other
        self.joiner = joiner
        self.kind = kind
        self.result = result

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get: Getter = self.other.make(context)
        self.send_old = self.result.sends_old_values

    def process(self, batch: list[Record]) -> None:
        get, joiner, kind, send_old = self.get, self.joiner, self.kind, self.send_old
        out: list[Record] = []
        for r in batch:
            if r.key is None:
                self.context.record_dropped(r, "null key in a table-table join")
                continue
            change = r.value
            try:
                found = get(r.key)
                if found is None:
                    if kind in (INNER, RIGHT) or (change.new is None and change.old is None):
                        continue
                    other, timestamp = None, r.timestamp
                else:
                    other, timestamp = found[0], max(r.timestamp, found[1])
                if kind == RIGHT:  # a left join seen from its right side: left is there
                    new = joiner(change.new, other)
                    old = joiner(change.old, other) if send_old else None
                else:
                    present = kind == OUTER and other is not None
                    new = (joiner(change.new, other)
                           if change.new is not None or present else None)
                    old = (joiner(change.old, other)
                           if send_old and (change.old is not None or present) else None)
            except Exception as exc:
                self.context.on_error(r, exc, f"table-table {kind} join")
                continue
            out.append(Record(r.key, Change(new, old), timestamp, r.headers, r.topic,
                              r.partition, r.offset))
        if out:
            self.context.forward(out)


class TableJoinMerge(Processor):
    """The join's result: stored where materialized, and forwarded.

    With the record cache on, a stored result forwards no change absent before and after,
    and its old value is the one it replaces in the store, as Kafka Streams' cache does.
    """

    fans_out = False

    def __init__(self, store_name: str | None, result: Forwarding) -> None:
        self.store_name = store_name
        self.result = result

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name) if self.store_name else None
        self.send_old = self.result.sends_old_values

    def process(self, batch: list[Record]) -> None:
        store, send_old = self.store, self.send_old
        if store is None:
            if not send_old:
                batch = [r.with_value(Change(r.value.new, None)) for r in batch]
            self.context.forward(batch)
            return
        cached = self.context.caching
        out: list[Record] = []
        for r in batch:
            new, old = r.value
            try:
                if cached:
                    stored = store.get(r.key)
                    if new is None and stored is None:
                        continue
                    old = None if stored is None else stored[0]
                store.put(r.key, None if new is None else (new, r.timestamp))
            except Exception as exc:
                self.context.on_error(r, exc, "materializing a table-table join")
                continue
            out.append(r.with_value(Change(new, old if send_old else None)))
        if out:
            self.context.forward(out)


class JoinGetter(ValueGetterSupplier):
    """An unmaterialized join's value: both sides read and joined (Kafka Streams' join
    value getters); None where the kind of join gives no row."""

    def __init__(self, left: ValueGetterSupplier, right: ValueGetterSupplier, joiner: Joiner,
                 kind: str) -> None:
        self.left, self.right = left, right
        self.joiner = joiner
        self.kind = kind
        self.store_names = sorted(set(left.store_names) | set(right.store_names))

    def make(self, context: ProcessorContext) -> Getter:
        get_left, get_right = self.left.make(context), self.right.make(context)
        joiner, kind = self.joiner, self.kind

        def joined(key: Any) -> tuple[Any, int] | None:
            left = get_left(key)
            if left is None and kind != OUTER:
                return None
            right = get_right(key)
            if right is None and (kind == INNER or left is None):
                return None
            value = joiner(None if left is None else left[0], None if right is None else right[0])
            timestamp = max(-1 if left is None else left[1], -1 if right is None else right[1])
            return None if value is None else (value, timestamp)

        return joined
