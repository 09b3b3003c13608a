"""The Nexmark event queries' harness: end-of-input events close every window and change
nothing else, and the topologies with the harness's grace agree with the references."""

from __future__ import annotations

from typing import Any

import pytest
from bench.nexmark import harness
from bench.nexmark.check import check, check_latest
from bench.nexmark.generator import AUCTION, BID, KIND_NAMES, PERSON
from bench.nexmark.sink import event_key, topic_names
from bench.nexmark.stateful import STATEFUL_QUERIES, WINDOW_MS

import fluvial
from fluvial.io.embedded.partitioner import partition_for_key

BASE = 1_000_000_000_000


def test_closers_reach_every_partition_past_every_window() -> None:
    last: dict[int, dict[str, Any]] = {}
    stream = harness.events(0, 3000, BASE, (PERSON, AUCTION, BID), last)
    assert last == {kind: next(e for k, e in reversed(stream) if k == kind)
                    for kind in (PERSON, AUCTION, BID)}
    first, second = harness.closers(last, 4, 0), harness.closers(last, 4, 1)
    end = stream[-1][1]["dateTime"]
    for closing in (first, second):
        for kind in (PERSON, AUCTION, BID):
            keys = [event_key(k, e) for k, e in closing if k == kind]
            assert sorted(partition_for_key(key, 4) for key in keys) == [0, 1, 2, 3]
        assert {e["dateTime"] for _k, e in closing} == {
            end + harness.GRACE_MS + WINDOW_MS + 1_000}
    people = [e["id"] for k, e in first + second if k == PERSON]
    assert len(set(people)) == 8 and min(people) > max(e["id"] for k, e in stream if k == PERSON)


@pytest.mark.parametrize("name", ["q3", "q4"])
def test_closers_change_no_join_result(name: str) -> None:
    query = STATEFUL_QUERIES[name]
    last: dict[int, dict[str, Any]] = {}
    stream = harness.events(0, 5000, BASE, query.reads, last)
    ending = harness.closers(last, 4, 0) + harness.closers(last, 4, 1)
    assert check(query.reference(stream + ending), query.reference(stream)).ok


@pytest.mark.parametrize("name", ["q5", "q7", "q8"])
def test_topology_with_grace_matches_the_reference_once_closed(name: str) -> None:
    """The windows close only on the closers (the input spans less than the grace), and
    every window of the input is then emitted, as the reference says."""
    query = STATEFUL_QUERIES[name]
    last: dict[int, dict[str, Any]] = {}
    stream = harness.events(0, 5000, BASE, query.reads, last)
    events = stream + harness.closers(last, 4, 0) + harness.closers(last, 4, 1)
    topics = topic_names("nexmark")
    with fluvial.TestDriver(query.topology("nexmark", "out", harness.GRACE_MS)) as driver:
        inputs = {kind: driver.input_topic(topics[KIND_NAMES[kind]]) for kind in query.reads}
        for kind, e in events:
            if kind in inputs:
                inputs[kind].pipe(e, key=event_key(kind, e).decode(), timestamp=e["dateTime"])
        outputs = driver.output_topic("out").read_key_values()
    expected = query.reference(events)
    assert expected, "5,000 events at 1,000/s close windows"
    result = (check_latest if query.table else check)(outputs, expected)
    assert result.ok, result.summary()
