"""Fused chains (source → filter/map_values → sink without Records): the same outputs as the
general path, batch by batch, and the general path whenever the fast one cannot go on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from fluvial import StreamsBuilder
from fluvial.dsl.stream import Stream
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.processing.errors import ErrorPolicy, OnError
from fluvial.processing.processor import CollectorBase
from fluvial.processing.task import Task
from fluvial.record import Headers

Sent = tuple[str, bytes | None, bytes | None, int, Headers | None]


class Collected(CollectorBase):
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        self.sent.append((topic, key, value, timestamp, headers))


def _task(chain: Callable[[Stream], Stream], on_error: OnError = OnError.STOP,
          noop_between: bool = False) -> tuple[Task, Collected]:
    b = StreamsBuilder(default_key_serde="string", default_value_serde="json")
    stream = b.stream("in")
    if noop_between:  # a peek is not fusable: the same work on the general path
        stream = stream.peek(lambda k, v: None)
    chain(stream).to("out")
    collected = Collected()
    (sub,) = b.build().subtopologies
    task = Task("0_0", sub, 0, "app", {}, collected, ErrorPolicy(on_error), lambda: 0)
    return task, collected


def _messages(values: list[Any], keys: list[bytes | None] | None = None) -> list[EmbeddedMessage]:
    keys = keys or [f"k{i}".encode() for i in range(len(values))]
    return [EmbeddedMessage("in", 0, i, k, None if v is None else orjson.dumps(v), 1000 + i,
                            [("trace", b"%d" % i)] if i % 2 else None)
            for i, (k, v) in enumerate(zip(keys, values, strict=True))]


def _chain(s: Stream) -> Stream:
    return (s.filter(lambda k, v: v is None or v["n"] % 3 != 0)
            .map_values(lambda v: None if v is None else {"m": v["n"] * 10})
            .filter_not(lambda k, v: k == "k4"))


def test_a_filter_map_values_chain_is_fused_and_gives_the_general_paths_outputs() -> None:
    values: list[Any] = [{"n": i} for i in range(10)]
    values[5] = None  # a tombstone
    keys: list[bytes | None] = [f"k{i}".encode() for i in range(10)]
    keys[7] = None  # no key
    fused, fused_out = _task(_chain)
    general, general_out = _task(_chain, noop_between=True)
    assert fused.fused and not general.fused
    fused.process("in", _messages(values, keys))
    general.process("in", _messages(values, keys))
    assert fused.fused["in"].batches == 1
    assert fused_out.sent == general_out.sent
    assert [(k, v) for _, k, v, _, _ in fused_out.sent] == [
        (b"k1", b'{"m":10}'), (b"k2", b'{"m":20}'), (b"k5", None),
        (None, b'{"m":70}'), (b"k8", b'{"m":80}')]
    # timestamps and headers come from each record's own message
    assert [(ts, h) for *_, ts, h in fused_out.sent] == [
        (1001, [("trace", b"1")]), (1002, None), (1005, [("trace", b"5")]),
        (1007, [("trace", b"7")]), (1008, None)]


@pytest.mark.parametrize("on_error", [OnError.SKIP, OnError.DEAD_LETTER])
def test_a_failing_function_sends_the_batch_down_the_general_path(on_error: OnError) -> None:
    def chain(s: Stream) -> Stream:
        return s.map_values(lambda v: {"inverse": 1 / v["n"]})

    task, out = _task(chain, on_error)
    task.process("in", _messages([{"n": 1}, {"n": 0}, {"n": 4}]))
    assert task.fused["in"].batches == 0  # nothing was produced by the fused path
    assert [v for t, _, v, _, _ in out.sent if t == "out"] == [b'{"inverse":1.0}',
                                                                b'{"inverse":0.25}']
    assert task.skipped == 1
    if on_error is OnError.DEAD_LETTER:  # the original bytes, once, with the reason
        (dead,) = [s for s in out.sent if s[0] != "out"]
        assert dead[2] == b'{"n":0}'
        assert any(name == "fluvial.error" and b"ZeroDivisionError" in (value or b"")
                   for name, value in dead[4] or [])


def test_a_value_the_sink_refuses_mid_batch_goes_to_the_policy_the_rest_once_in_order() -> None:
    def chain(s: Stream) -> Stream:
        return s.map_values(lambda v: {1, 2} if v["n"] == 2 else v)

    task, out = _task(chain, OnError.SKIP)
    task.process("in", _messages([{"n": i} for i in range(5)]))
    assert task.fused["in"].batches == 1
    assert [v for _, _, v, _, _ in out.sent] == [b'{"n":0}', b'{"n":1}', b'{"n":3}', b'{"n":4}']
    assert task.skipped == 1


def test_an_undecodable_value_takes_the_general_path_and_its_policy() -> None:
    task, out = _task(lambda s: s.filter(lambda k, v: True), OnError.SKIP)
    messages = _messages([{"n": 0}, {"n": 1}])
    messages.insert(1, EmbeddedMessage("in", 0, 9, b"bad", b"{not json", 5, None))
    task.process("in", messages)
    assert task.fused["in"].batches == 0
    assert [v for _, _, v, _, _ in out.sent] == [b'{"n":0}', b'{"n":1}']
    assert task.skipped == 1


@pytest.mark.parametrize("build", [
    lambda s: s.map(lambda k, v: (k, v)),                  # a key change
    lambda s: s.flat_map_values(lambda v: [v, v]),         # fan-out
    lambda s: s.filter(lambda k, v: True).peek(print),     # a side effect
])
def test_other_operators_are_not_fused(build: Callable[[Stream], Stream]) -> None:
    task, _ = _task(build)
    assert task.fused == {}
