"""Models trained once per session, and a way to run one multi-record batch through a task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from examples.airline.flights import read_lines
from examples.airline.train import Trained, train

from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.ml import LightGBMModel
from fluvial.processing.errors import ErrorPolicy
from fluvial.processing.processor import CollectorBase
from fluvial.processing.task import Task
from fluvial.record import Headers
from fluvial.state.store import KeyValueStore
from fluvial.topology.topology import Topology

SMALL = dict(seed=7, trees=15, num_leaves=15, threads=1, trained_at="2024-01-01T00:00:00+00:00")


@pytest.fixture()
def settings() -> dict[str, Any]:
    """Training settings for small test models (pass to ``train``)."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def lines() -> list[str]:
    return read_lines()


@pytest.fixture(scope="session")
def small(lines: list[str]) -> Trained:
    """A small model: 3,000 flights, 15 trees."""
    return train(lines[:3000], **SMALL)


@pytest.fixture(scope="session")
def small_v2(lines: list[str]) -> Trained:
    """Another small model: other flights, other seed, so other scores."""
    return train(lines[20000:23000], **{**SMALL, "seed": 8})


@pytest.fixture(scope="session")
def full() -> Trained:
    """The CLI's model: the whole file, default settings (about a second)."""
    return train(trained_at="2024-01-01T00:00:00+00:00")


@pytest.fixture()
def model(small: Trained) -> LightGBMModel:
    return small.model


class ListCollector(CollectorBase):
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Headers | None]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        self.sent.append((topic, key, value, headers))

    def values(self, topic: str) -> list[bytes | None]:
        return [v for t, _, v, _ in self.sent if t == topic]


class BatchRunner:
    """Runs whole batches (several records in one ``Task.process``), as the runtime does."""

    def __init__(self, topology: Topology, on_error: str = "stop",
                 global_stores: Mapping[str, KeyValueStore] | None = None) -> None:
        (st,) = topology.subtopologies
        self.collector = ListCollector()
        self.task = Task("0_0", st, 0, "app", {}, self.collector,
                         ErrorPolicy.parse(on_error), lambda: 0,
                         global_stores=global_stores or {})
        self.offset = 0

    def run(self, topic: str, values: list[bytes | None],
            keys: list[bytes | None] | None = None) -> None:
        messages = []
        for i, value in enumerate(values):
            key = keys[i] if keys else None
            messages.append(EmbeddedMessage(topic, 0, self.offset, key, value, 1, None))
            self.offset += 1
        self.task.process(topic, messages)


@pytest.fixture()
def batch_runner() -> Callable[..., BatchRunner]:
    return BatchRunner
