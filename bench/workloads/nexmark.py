"""Nexmark (issue 14) as harness workloads: ``nexmark-q0`` .. ``nexmark-q2`` (one output per
bid) and ``nexmark-q3``, ``-q4``, ``-q5``, ``-q7``, ``-q8`` (joins and windows over the
per-type topics, run by ``bench.nexmark.harness``).

q0-q2:

Input: the bids of ``bench.nexmark``'s generator (seed 0), i-th input = i-th bid, JSON as on
the bid topic, partitioned by auction id like the real bid topic. The key is the input's
index rather than the auction id, so that each output answers exactly one input (for the
tracker and for latency); the queries keep the key either way. Every output value is checked
against the query's plain-Python reference (``bench.nexmark.queries``).
"""

from __future__ import annotations

import os
import random
from typing import Any

import orjson

from bench.nexmark.generator import BID, BID_PROPORTION, TOTAL_PROPORTION, Generator
from bench.nexmark.queries import QUERIES
from bench.nexmark.stateful import STATEFUL_QUERIES
from bench.workloads import _REGISTRY, Input, Tracker, Workload, register
from bench.workloads.stateless import StatelessTracker

_GENERATOR = Generator()
_FIRST_BID = TOTAL_PROPORTION - BID_PROPORTION  # a bid's place in its group of 50


def _event_of_bid(i: int) -> int:
    """The event number of bid ``i`` (bids are the last 46 events of each group of 50)."""
    return i // BID_PROPORTION * TOTAL_PROPORTION + _FIRST_BID + i % BID_PROPORTION


def bids(start: int, count: int) -> list[dict[str, Any]]:
    """Bids number ``start`` .. ``start + count - 1`` of the generator's stream."""
    first, last = _event_of_bid(start), _event_of_bid(start + count - 1)
    return [e for kind, e in _GENERATOR.events(first, last - first + 1) if kind == BID]


class NexmarkTracker(StatelessTracker):
    """The stateless tracker, plus: each output's value must equal the reference's."""

    def __init__(self) -> None:
        super().__init__()
        self._expected: dict[int, Any] = {}

    def expect(self, record: Input, ts: int | None) -> None:
        if record.meta is not None:
            with self.lock:
                self._expected[record.index] = record.meta
        super().expect(record, ts)

    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        index = int(key or b"-1")
        want = self._expected.get(index)
        if want is not None and orjson.loads(value or b"null") != want:
            with self.lock:
                self.bad.append(f"input {index}: got {value!r}, reference says {want!r}")
        super()._seen(key, value, append_ms)


class _NexmarkQuery(Workload):
    query: str
    systems = frozenset({"fluvial", "ceiling", "quix", "java"})

    @property
    def fluvial_target(self) -> str:
        return f"bench.workloads.nexmark:fluvial_{self.query}"

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        output_of = QUERIES[self.query].output_of
        return [Input(i, str(i).encode(), orjson.dumps(bid), bid["auction"] % partitions,
                      output_of(bid)) for i, bid in enumerate(bids(start, count), start)]

    def tracker(self) -> Tracker:
        return NexmarkTracker()

    def fluvial_topology(self) -> Any:
        return QUERIES[self.query].topology(os.environ["BENCH_INPUT"], os.environ["BENCH_OUTPUT"])

    def ceiling_loop(self, args: Any) -> Any:
        from bench.systems.ceiling import CeilingLoop

        output_of = QUERIES[self.query].output_of
        loads, dumps = orjson.loads, orjson.dumps

        class Loop(CeilingLoop):
            def process(self, msgs: list[Any]) -> None:
                out = self.args.output
                for m in msgs:
                    value = output_of(loads(m.value()))
                    if value is not None:
                        self.produce(out, m.key(), dumps(value))

        return Loop(args)

    def quix_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        output_of = QUERIES[self.query].output_of
        sdf = app.dataframe(app.topic(input_topic, value_deserializer="json"))
        sdf = sdf.apply(output_of).filter(lambda value: value is not None)
        sdf.to_topic(app.topic(output_topic, value_serializer="json"))
        return sdf


@register
class NexmarkQ0(_NexmarkQuery):
    name, query, title = "nexmark-q0", "q0", "Nexmark q0: pass-through"


@register
class NexmarkQ1(_NexmarkQuery):
    name, query, title = "nexmark-q1", "q1", "Nexmark q1: currency conversion"


@register
class NexmarkQ2(_NexmarkQuery):
    name, query, title = "nexmark-q2", "q2", "Nexmark q2: selection (auction % 123 == 0)"


class _NexmarkEventQuery(Workload):
    """A query over the per-type topics: its own case (``bench.nexmark.harness``) produces
    events to ``<case>-person``, ``-auction``, ``-bid``, times the group's catching up and
    checks the whole output against the reference. ``$BENCH_INPUT`` is the topic prefix."""

    query: str
    systems = frozenset({"fluvial", "java"})
    unit = "records"  # read by the query in the timed phase (events_per_s: of the stream)

    @property
    def fluvial_target(self) -> str:
        return f"bench.workloads.nexmark:fluvial_{self.query}"

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        raise NotImplementedError("the Nexmark event queries generate in bench.nexmark.harness")

    def tracker(self) -> Tracker:
        raise NotImplementedError("the Nexmark event queries check their output at the end")

    def run_case(self, runner: Any, settings: Any, bootstrap: str, work_dir: Any,
                 run_id: str, label: str = "") -> dict[str, Any]:
        from bench.nexmark.harness import run_event_case

        return run_event_case(runner, self, STATEFUL_QUERIES[self.query], settings, bootstrap,
                              work_dir, run_id, label)

    def fluvial_topology(self) -> Any:
        from bench.nexmark.harness import GRACE_MS

        return STATEFUL_QUERIES[self.query].topology(os.environ["BENCH_INPUT"],
                                                     os.environ["BENCH_OUTPUT"], GRACE_MS)


@register
class NexmarkQ3(_NexmarkEventQuery):
    name, query, title = "nexmark-q3", "q3", "Nexmark q3: local item suggestion (join)"
    default_records = 2_000_000  # events: it reads their 3 auctions in 50 (120,000)


@register
class NexmarkQ4(_NexmarkEventQuery):
    name, query, title = ("nexmark-q4", "q4",
                          "Nexmark q4: average closing price per category (join, aggregates)")


@register
class NexmarkQ5(_NexmarkEventQuery):
    name, query, title = "nexmark-q5", "q5", "Nexmark q5: hot items (hopping windows)"


@register
class NexmarkQ7(_NexmarkEventQuery):
    name, query, title = "nexmark-q7", "q7", "Nexmark q7: highest bid (tumbling windows)"


@register
class NexmarkQ8(_NexmarkEventQuery):
    name, query, title = ("nexmark-q8", "q8",
                          "Nexmark q8: monitor new users (windowed stream-stream join)")
    default_records = 2_000_000  # events: it reads their people and auctions (160,000)


def __getattr__(name: str) -> Any:
    """``fluvial_q0`` .. ``fluvial_q8``: each query's topology function for ``fluvial run
    bench.workloads.nexmark:fluvial_qN`` (``fluvial_target``)."""
    if name.startswith("fluvial_q") and f"nexmark-{name[8:]}" in _REGISTRY:
        return _REGISTRY[f"nexmark-{name[8:]}"].fluvial_topology
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
