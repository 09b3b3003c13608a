"""The Nexmark generator: deterministic, and the spec's proportions, ids and distributions."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from bench.nexmark.generator import (
    AUCTION,
    BID,
    BLOCK,
    FIRST_AUCTION_ID,
    FIRST_PERSON_ID,
    PERSON,
    Generator,
    GeneratorConfig,
    last_auction,
    last_person,
)

EVENTS = 20_000


@pytest.fixture(scope="module")
def events() -> list[tuple[int, dict]]:
    return list(Generator(GeneratorConfig(seed=7)).events(0, EVENTS))


def test_same_seed_same_events_other_seed_other_events(events: list) -> None:
    assert list(Generator(GeneratorConfig(seed=7)).events(0, 3000)) == events[:3000]
    other = list(Generator(GeneratorConfig(seed=8)).events(0, 3000))
    assert [k for k, _ in other] == [k for k, _ in events[:3000]]  # kinds are by position
    assert other != events[:3000]


def test_a_range_is_the_same_events_as_in_the_whole_stream(events: list) -> None:
    start = BLOCK + 437  # mid-block, across the next block boundary
    assert list(Generator(GeneratorConfig(seed=7)).events(start, 1500)) == \
        events[start:start + 1500]


def test_one_person_three_auctions_46_bids_in_every_50(events: list) -> None:
    for group in range(0, EVENTS, 50):
        kinds = [k for k, _ in events[group:group + 50]]
        assert kinds == [PERSON] + [AUCTION] * 3 + [BID] * 46


def test_ids_follow_the_event_number(events: list) -> None:
    people = [e["id"] for k, e in events if k == PERSON]
    auctions = [e["id"] for k, e in events if k == AUCTION]
    assert people == list(range(FIRST_PERSON_ID, FIRST_PERSON_ID + EVENTS // 50))
    assert auctions == list(range(FIRST_AUCTION_ID, FIRST_AUCTION_ID + 3 * EVENTS // 50))
    for n, (kind, e) in enumerate(events):
        if kind == BID:  # never a bid for an auction or by a person far in the future
            assert FIRST_AUCTION_ID <= e["auction"] <= FIRST_AUCTION_ID + last_auction(n) + 10
            assert FIRST_PERSON_ID <= e["bidder"] <= FIRST_PERSON_ID + last_person(n) + 10
            assert e["auction"] >= FIRST_AUCTION_ID + last_auction(n) - 100
        elif kind == AUCTION:
            assert FIRST_PERSON_ID <= e["seller"] <= FIRST_PERSON_ID + last_person(n) + 10


def test_hot_auctions_and_bidders_take_their_share(events: list) -> None:
    bids = [(n, e) for n, (k, e) in enumerate(events) if k == BID]
    hot_auction = sum(e["auction"] - FIRST_AUCTION_ID == last_auction(n) // 100 * 100
                      for n, e in bids) / len(bids)
    hot_bidder = sum(e["bidder"] - FIRST_PERSON_ID == last_person(n) // 100 * 100 + 1
                     for n, e in bids) / len(bids)
    # 1 - 1/2 and 1 - 1/4 by the hot ratios, plus the few random picks that land there.
    assert 0.48 <= hot_auction <= 0.53
    assert 0.74 <= hot_bidder <= 0.78
    # 12 blocks of 100 auctions share the hot half: ~4 % of the bids each, against < 0.5 %
    # for an auction that is only ever picked at random among the ~110 in flight.
    hottest, count = Counter(e["auction"] for _, e in bids).most_common(1)[0]
    assert (hottest - FIRST_AUCTION_ID) % 100 == 0 and count > len(bids) / 40


def test_prices_are_log_uniform_over_six_decades(events: list) -> None:
    prices = [e["price"] for k, e in events if k == BID]
    assert all(100 <= p <= 100_000_000 for p in prices)
    decades = Counter(min(int(math.log10(p / 100)), 5) for p in prices)
    for decade in range(6):  # each decade about 1/6 of the bids
        assert abs(decades[decade] / len(prices) - 1 / 6) < 0.02, decades


def test_event_time_is_spaced_by_the_rate() -> None:
    config = GeneratorConfig(seed=1, events_per_second=2_000, base_time_ms=5_000)
    times = [e["dateTime"] for _, e in Generator(config).events(0, 4001)]
    assert times[0] == 5_000 and times[2000] == 6_000 and times[4000] == 7_000
    assert times == sorted(times)


def test_auction_fields(events: list) -> None:
    for kind, a in events:
        if kind == AUCTION:
            assert a["dateTime"] < a["expires"]
            assert a["reserve"] > a["initialBid"]
            assert 10 <= a["category"] <= 14


def test_bid_padding_brings_bids_near_their_average_size(events: list) -> None:
    extras = [len(e["extra"]) for k, e in events if k == BID]
    assert min(extras) >= 68 - 14 and max(extras) < 68 + 14  # 100 bytes - 32 fixed, ± 20 %
    assert abs(sum(extras) / len(extras) - 68) < 1


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="events_per_second"):
        GeneratorConfig(events_per_second=0)
