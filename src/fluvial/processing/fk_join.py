"""Foreign-key table-table joins (inner, left), as Kafka Streams' KIP-213.

The left table subscribes each of its rows to the row of the right table its foreign key
names: a subscription goes, keyed by the foreign key, through the subscription-registration
topic to the right table's task, which keeps it in the subscription store (keyed by foreign
key then primary key, so one prefix scan finds a right row's subscribers) and answers with
the right row's value. A change of a right row answers every subscriber again. Answers go,
keyed by the primary key, through the subscription-response topic back to the partition
the subscription came from, however the left table's topic is partitioned. Each carries a
hash of the left value it answers: an answer for a left value that has changed since is
stale and dropped, so a rapidly changing foreign key never leaves a wrong result behind.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from fluvial.processing.getters import Getter, ValueGetterSupplier
from fluvial.processing.processor import Processor, ProcessorContext
from fluvial.record import Change, Record

Joiner = Callable[[Any, Any], Any]
Extractor = Callable[[Any], Any]

# what the right side does with a subscription (Kafka Streams' SubscriptionWrapper.Instruction)
DELETE_KEY_NO_PROPAGATE = 0
DELETE_KEY_AND_PROPAGATE = 1
PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE = 2
PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE = 3


class Subscription(NamedTuple):
    """A left row's subscription to a right row (sent keyed by the foreign key)."""

    hash: bytes | None  # of the left value it was sent for; None for a deleted left row
    instruction: int
    primary_key: Any
    partition: int  # of the left row's task: where the answer goes


class Response(NamedTuple):
    """The right row's value for one subscriber (sent keyed by the primary key)."""

    hash: bytes | None
    foreign_value: Any
    partition: int  # the subscriber's, which the response topic's sink writes to


def response_partition(_key: Any, response: Response) -> int:
    """The response topic's partitioner: back to the subscribing task's partition."""
    return response.partition


def value_hash(serialized: bytes | None) -> bytes | None:
    """A 128-bit digest of a serialized left value (Kafka Streams uses Murmur3 128)."""
    return None if serialized is None else hashlib.blake2b(serialized, digest_size=16).digest()


class SubscriptionSerde:
    """Wire format of the subscription-registration topic: flags, instruction, partition,
    the hash where present, then the primary key's bytes."""

    def __init__(self, primary_key_serde: Any) -> None:
        self.primary_key_serde = primary_key_serde

    def serialize(self, value: Subscription | None) -> bytes | None:
        if value is None:
            return None
        head = struct.pack(">BBi", value.hash is not None, value.instruction, value.partition)
        return head + (value.hash or b"") + (self.primary_key_serde.serialize(
            value.primary_key) or b"")

    def deserialize(self, data: bytes | None) -> Subscription | None:
        if data is None:
            return None
        has_hash, instruction, partition = struct.unpack_from(">BBi", data)
        at = 6 + (16 if has_hash else 0)
        return Subscription(data[6:at] if has_hash else None, instruction,
                            self.primary_key_serde.deserialize(data[at:]), partition)


class ResponseSerde:
    """Wire format of the subscription-response topic: flags, partition, the hash where
    present, then the foreign value's bytes where present."""

    def __init__(self, foreign_value_serde: Any) -> None:
        self.foreign_value_serde = foreign_value_serde

    def serialize(self, value: Response | None) -> bytes | None:
        if value is None:
            return None
        foreign = (None if value.foreign_value is None
                   else self.foreign_value_serde.serialize(value.foreign_value))
        flags = (value.hash is not None) | (foreign is not None) << 1
        return (struct.pack(">Bi", flags, value.partition) + (value.hash or b"")
                + (foreign or b""))

    def deserialize(self, data: bytes | None) -> Response | None:
        if data is None:
            return None
        flags, partition = struct.unpack_from(">Bi", data)
        at = 5 + (16 if flags & 1 else 0)
        return Response(data[5:at] if flags & 1 else None,
                        self.foreign_value_serde.deserialize(data[at:]) if flags & 2 else None,
                        partition)


def _prefix(foreign_key_bytes: bytes) -> bytes:
    """A subscription-store key's leading part: the foreign key, length first."""
    return struct.pack(">i", len(foreign_key_bytes)) + foreign_key_bytes


class SubscriptionSend(Processor):
    """Below the left table: each change becomes the subscriptions it implies (Kafka
    Streams' SubscriptionSendProcessorSupplier). A moved foreign key unsubscribes the old
    one; an inner join drops a row whose foreign key is null (after unsubscribing, with a
    tombstone for its result); a left join subscribes with a null foreign key too, to get
    the answer that emits its row."""

    fans_out = False

    def __init__(self, extractor: Extractor, left_join: bool, foreign_key_serde: Any,
                 value_serde: Any) -> None:
        self.extractor = extractor
        self.left_join = left_join
        self.foreign_key_serde = foreign_key_serde
        self.value_serde = value_serde

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        fk_bytes = self.foreign_key_serde.serialize
        partition = self.context.partition
        for r in batch:
            old, new = r.value.old, r.value.new
            try:
                old_fk = None if old is None else self.extractor(old)
                new_fk = None if new is None else self.extractor(new)
                moved = old_fk is not None and fk_bytes(new_fk) != fk_bytes(old_fk)
                sends = self._instructions(old, new, old_fk, new_fk, moved)
                digest = value_hash(None if new is None else self.value_serde.serialize(new))
            except Exception as exc:
                self.context.on_error(r, exc, "extracting a foreign key")
                continue
            if not self.left_join and new is not None and new_fk is None:
                self.context.record_dropped(r, "null foreign key in a foreign-key join")
            for fk, instruction in sends:
                out.append(Record(fk, Subscription(digest, instruction, r.key, partition),
                                  r.timestamp, r.headers, r.topic, r.partition, r.offset))
        if out:
            self.context.forward(out)

    def _instructions(self, old: Any, new: Any, old_fk: Any, new_fk: Any,
                      moved: bool) -> list[tuple[Any, int]]:
        """(foreign key, instruction) pairs to send, in order."""
        if self.left_join:
            if old is None and new is None:
                return []
            unsubscribe = [(old_fk, DELETE_KEY_NO_PROPAGATE)] if moved else []
            return [*unsubscribe, (new_fk, PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)]
        if new is None or new_fk is None:
            return [] if old_fk is None else [(old_fk, DELETE_KEY_AND_PROPAGATE)]
        if old_fk is None:
            return [(new_fk, PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE)]
        if moved:
            return [(old_fk, DELETE_KEY_NO_PROPAGATE),
                    (new_fk, PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE)]
        return [(new_fk, PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE)]


class SubscriptionReceive(Processor):
    """On the right table's side: record a subscription in the subscription store (keyed
    by foreign key, then primary key), or remove it, as its instruction says (Kafka
    Streams' SubscriptionReceiveProcessorSupplier). A null foreign key is kept for a left
    join's answer only, and never stored."""

    fans_out = False

    def __init__(self, store_name: str, foreign_key_serde: Any, primary_key_serde: Any) -> None:
        self.store_name = store_name
        self.foreign_key_serde = foreign_key_serde
        self.primary_key_serde = primary_key_serde

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        for r in batch:
            sub: Subscription = r.value
            if r.key is None:
                if sub.instruction != PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:
                    self.context.record_dropped(r, "null foreign key in a foreign-key join")
                    continue
            else:
                try:
                    key = (_prefix(self.foreign_key_serde.serialize(r.key))
                           + self.primary_key_serde.serialize(sub.primary_key))
                    deletes = sub.instruction in (DELETE_KEY_NO_PROPAGATE,
                                                  DELETE_KEY_AND_PROPAGATE)
                    self.store.put(key, None if deletes else (sub, r.timestamp))
                except Exception as exc:
                    self.context.on_error(r, exc, "registering a foreign-key subscription")
                    continue
            out.append(r)
        if out:
            self.context.forward(out)


class SubscriptionJoin(Processor):
    """Answer a subscription with the right row its foreign key names, as its instruction
    says (Kafka Streams' SubscriptionJoinProcessorSupplier). Output timestamp: the larger
    of the subscription's and the right row's."""

    fans_out = False

    def __init__(self, foreign: ValueGetterSupplier) -> None:
        self.foreign = foreign

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get: Getter = self.foreign.make(context)

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        for r in batch:
            sub: Subscription = r.value
            if sub.instruction == DELETE_KEY_NO_PROPAGATE:
                continue
            try:
                found = None if r.key is None else self.get(r.key)
            except Exception as exc:
                self.context.on_error(r, exc, "reading a foreign-key join's right table")
                continue
            if sub.instruction == DELETE_KEY_AND_PROPAGATE:
                foreign = None
            elif found is not None:
                foreign = found[0]
            elif sub.instruction == PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:
                foreign = None
            else:  # PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE, and no right row
                continue
            timestamp = r.timestamp if found is None else max(r.timestamp, found[1])
            out.append(Record(sub.primary_key, Response(sub.hash, foreign, sub.partition),
                              timestamp, r.headers, r.topic, r.partition, r.offset))
        if out:
            self.context.forward(out)


class ForeignTableChange(Processor):
    """Below the right table: a change of a right row answers each of its subscribers with
    the new value (None for a delete), at the change's timestamp (Kafka Streams'
    ForeignTableJoinProcessorSupplier)."""

    fans_out = False

    def __init__(self, store_name: str, foreign_key_serde: Any) -> None:
        self.store_name = store_name
        self.foreign_key_serde = foreign_key_serde

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        for r in batch:
            if r.key is None:
                self.context.record_dropped(r, "null key in a foreign-key join's right table")
                continue
            prefix = _prefix(self.foreign_key_serde.serialize(r.key))
            new = r.value.new
            for key, (sub, _) in self.store.range(prefix, _increment(prefix)):
                if key.startswith(prefix):  # the range's end is inclusive
                    out.append(Record(sub.primary_key, Response(sub.hash, new, sub.partition),
                                      r.timestamp, r.headers, r.topic, r.partition, r.offset))
        if out:
            self.context.forward(out)


def _increment(prefix: bytes) -> bytes:
    """The smallest byte string above every string that starts with ``prefix``'s leading
    bytes (``prefix`` starts with a length, so it is never all 0xff)."""
    head = prefix.rstrip(b"\xff")
    return head[:-1] + bytes([head[-1] + 1])


class ResponseJoin(Processor):
    """Back on the left table's side: drop an answer whose hash no longer matches the left
    row's current value, join the rest (Kafka Streams' ResponseJoinProcessorSupplier). A
    missing right value gives a tombstone in an inner join, ``joiner(left, None)`` in a left
    join (a tombstone there too once the left row is gone)."""

    fans_out = False

    def __init__(self, left: ValueGetterSupplier, joiner: Joiner, left_join: bool,
                 value_serde: Any) -> None:
        self.left = left
        self.joiner = joiner
        self.left_join = left_join
        self.value_serde = value_serde

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get: Getter = self.left.make(context)

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        for r in batch:
            response: Response = r.value
            try:
                found = self.get(r.key)
                current = None if found is None else found[0]
                if value_hash(None if found is None
                              else self.value_serde.serialize(current)) != response.hash:
                    continue  # an answer for a left value since replaced
                foreign = response.foreign_value
                if foreign is None and (not self.left_join or found is None):
                    result = None
                else:
                    result = self.joiner(current, foreign)
            except Exception as exc:
                self.context.on_error(r, exc, "foreign-key join")
                continue
            out.append(Record(r.key, result, r.timestamp, r.headers, r.topic, r.partition,
                              r.offset))
        if out:
            self.context.forward(out)


class ResultChanges(Processor):
    """An unmaterialized join's result as table changes: no store, so no old values, and
    every tombstone forwarded (Kafka Streams' store-less KTableSource)."""

    fans_out = False

    def process(self, batch: list[Record]) -> None:
        self.context.forward([r.with_value(Change(r.value, None)) for r in batch])
