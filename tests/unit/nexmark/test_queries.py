"""Nexmark q0-q2 in the TestDriver, checked against their plain-Python references."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.nexmark.check import check
from bench.nexmark.generator import BID, Generator, GeneratorConfig
from bench.nexmark.queries import QUERIES
from bench.nexmark.sink import event_key, read_jsonl, union_value, write_jsonl

import fluvial

EVENTS = 10_000


@pytest.fixture(scope="module")
def events() -> list[tuple[int, dict]]:
    return list(Generator(GeneratorConfig(seed=3)).events(0, EVENTS))


def run_query(name: str, events: list, union: bool) -> list:
    driver = fluvial.TestDriver(QUERIES[name].topology("in", "out", union=union))
    source = driver.input_topic("in")
    for kind, event in events:
        if union:
            source.pipe(union_value(kind, event), key=event_key(kind, event).decode(),
                        timestamp=event["dateTime"])
        elif kind == BID:
            source.pipe(event, key=str(event["auction"]), timestamp=event["dateTime"])
    return driver.output_topic("out").read_key_values()


@pytest.mark.parametrize("union", [False, True], ids=["bid-topic", "union-topic"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_output_matches_the_reference(name: str, union: bool, events: list) -> None:
    expected = QUERIES[name].reference(e for k, e in events if k == BID)
    result = check(run_query(name, events, union), expected)
    assert result.ok, result.summary()
    assert result.expected > 20  # q2 passes about 1 bid in 200: the test must see some


def test_the_queries_do_what_their_definitions_say(events: list) -> None:
    bids = [e for k, e in events if k == BID]
    q0, q1, q2 = (QUERIES[q].reference(bids) for q in ("q0", "q1", "q2"))
    assert len(q0) == len(q1) == len(bids)
    assert q0[0] == (str(bids[0]["auction"]), {f: bids[0][f] for f in
                                               ("auction", "bidder", "price", "dateTime", "extra")})
    assert q1[0][1]["price"] == pytest.approx(bids[0]["price"] * 0.908)
    assert all(v["auction"] % 123 == 0 and set(v) == {"auction", "price"} for _, v in q2)
    assert len(q2) == sum(b["auction"] % 123 == 0 for b in bids)


def test_the_check_catches_a_lost_a_changed_and_a_duplicated_output(events: list) -> None:
    expected = QUERIES["q1"].reference(e for k, e in events[:500] if k == BID)
    changed = (expected[3][0], {**expected[3][1], "price": expected[3][1]["price"] + 0.01})
    assert check(expected[1:], expected).missing_count == 1
    result = check([*expected[:3], changed, *expected[4:]], expected)
    assert (result.missing_count, result.unexpected_count) == (1, 1)
    assert "WRONG" in result.summary()
    assert check([*expected, expected[0]], expected).unexpected_count == 1
    assert check(list(reversed(expected)), expected).ok  # order across partitions is free


def test_events_round_trip_through_a_jsonl_file(events: list, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert write_jsonl(events[:300], path) == 300
    assert list(read_jsonl(path)) == events[:300]
    path.write_bytes(b'{"event_type": 2, "bid": {}}\n{"nope": 1}\n')
    with pytest.raises(ValueError, match=r"events.jsonl:2: not a Nexmark union event"):
        list(read_jsonl(path))
