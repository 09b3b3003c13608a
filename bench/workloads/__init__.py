"""The workload registry: one module per workload, each a small file.

A workload says how to generate its input from a seed, how to recognise that every input has
been fully processed (and which input an output answers, for latency), and how each system
expresses the same work:

* ``fluvial_topology()``: a ``fluvial.Topology`` reading ``$BENCH_INPUT``, writing ``$BENCH_OUTPUT``
* ``ceiling_loop(args)``: a ``bench.systems.ceiling.CeilingLoop`` (bare confluent-kafka)
* ``quix_build(app, input, output)``: a Quix Streams dataframe
* ``faust_build(app, input, output)``: Faust agents
* ``sql_script(input, output, partitions, app_id)``: the same in ksqlDB's SQL, for fluvial's
  SQL (the ``fluvial-sql`` system)
* Java Kafka Streams: a ``case`` in ``bench/java/.../BenchApp.java``

``systems`` lists the systems that implement it; the driver skips the others and says so.

Adding one: write ``bench/workloads/<name>.py`` with a ``Workload`` subclass and add its module
name to ``_MODULES`` below (a module may register several, as ``airline`` does).
"""

from __future__ import annotations

import importlib
import random
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

# Workload modules, in report order (airline registers "airline" and "airline-per-record").
_MODULES = ("stateless", "wordcount", "airline", "windowed", "nexmark", "enrichment")

ALL_SYSTEMS = frozenset({"fluvial", "ceiling", "quix", "faust", "java"})
WITH_SQL = ALL_SYSTEMS | {"fluvial-sql"}  # the workloads also written in SQL


@dataclass(frozen=True, slots=True)
class Input:
    """One input record: its index (unique in a run), key, value, partition, and what the
    workload's tracker needs to know about its expected output (``meta``)."""

    index: int
    key: bytes
    value: bytes
    partition: int
    meta: Any = None


class Tracker(ABC):
    """Knows which outputs a run still waits for, and the latency of each output.

    ``expect`` is called by the producing thread *before* a record is produced; ``seen`` by
    the output reader. ``ts`` is the input's create time (ms) or None when it is not needed.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outputs = 0  # output records read
        self.duplicates = 0  # outputs answering an input already answered (replays)
        self.first_append_ms: int | None = None
        self.last_append_ms: int | None = None
        self.latencies: list[int] = []  # ms, for inputs expected with a ts
        self.bad: list[str] = []  # outputs that match no input (should stay empty)

    @abstractmethod
    def expect(self, record: Input, ts: int | None) -> None: ...

    @abstractmethod
    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None: ...

    @abstractmethod
    def pending(self) -> int:
        """Inputs (or keys) whose output has not been seen yet."""

    @abstractmethod
    def expected_outputs(self) -> int:
        """Outputs the run must produce at least (one per passing record, one per word...)."""

    def seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        self.outputs += 1
        if self.first_append_ms is None:
            self.first_append_ms = append_ms
        if self.last_append_ms is None or append_ms > self.last_append_ms:
            self.last_append_ms = append_ms
        self._seen(key, value, append_ms)

    def take_latencies(self) -> list[int]:
        with self.lock:
            out, self.latencies = self.latencies, []
        return out


class Workload(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    systems: ClassVar[frozenset[str]] = ALL_SYSTEMS
    # Throughput is counted in these units per input record (lines for WordCount).
    unit: ClassVar[str] = "records"
    # Inputs per throughput run at --scale 1.
    default_records: ClassVar[int] = 200_000

    @abstractmethod
    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        """``count`` inputs numbered from ``start``; deterministic given the rng state."""

    @abstractmethod
    def tracker(self) -> Tracker: ...

    @property
    def fluvial_target(self) -> str:
        """``MODULE:FUNCTION`` for ``fluvial run``."""
        return f"bench.workloads.{self.name}:fluvial_topology"

    # Per-system implementations; each imports its framework lazily.
    def fluvial_topology(self) -> Any:
        raise NotImplementedError

    def ceiling_loop(self, args: Any) -> Any:
        raise NotImplementedError

    def quix_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        raise NotImplementedError

    def faust_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        raise NotImplementedError

    def sql_script(self, input_topic: str, output_topic: str, partitions: int,
                   app_id: str) -> str:
        raise NotImplementedError


_REGISTRY: dict[str, Workload] = {}


def register(cls: type[Workload]) -> type[Workload]:
    """Class decorator: make a workload known by its ``name``."""
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    for mod in _MODULES:
        importlib.import_module(f"bench.workloads.{mod}")


def get(name: str) -> Workload:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    _load()
    return list(_REGISTRY)  # registration order = _MODULES order


def int64(value: int) -> bytes:
    """Kafka's Long serde: 8 bytes, big-endian, signed."""
    return value.to_bytes(8, "big", signed=True)
