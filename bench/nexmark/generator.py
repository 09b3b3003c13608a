"""The Nexmark event generator, written from the Nexmark specification's rules.

Event ``n`` (0-based) is a person, an auction or a bid by its place in a group of 50: one
person, three auctions, 46 bids. Ids are derived from ``n`` alone (the n-th person is
``FIRST_PERSON_ID + n // 50``...), so a generator can start anywhere and any event's id is
known without generating the ones before it. A bid's auction is "hot" (the first of the
latest block of 100 auctions) with probability 1 - 1/hot_auction_ratio, else one of the last
``num_in_flight_auctions`` (up to 10 ahead); its bidder likewise among the latest
``num_active_people`` people. Prices are log-uniform: round(10^(6u) * 100) cents-like units.
Event time advances by 1,000,000 / ``events_per_second`` microseconds per event from
``base_time_ms``, whatever the speed at which events are made.

Randomness is one ``random.Random`` per block of ``BLOCK`` events, seeded from (seed, block):
the same seed gives the same events, and any block can be regenerated alone. It is not the
Java generator's stream (that seeds ``java.util.Random`` per event); the distributions are the
same, the values are not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PERSON, AUCTION, BID = 0, 1, 2  # event_type, as Flink's nexmark JSON numbers them
KIND_NAMES = ("person", "auction", "bid")

PERSON_PROPORTION, AUCTION_PROPORTION, BID_PROPORTION = 1, 3, 46
TOTAL_PROPORTION = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION

FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10
NUM_CATEGORIES = 5
HOT_SELLER_BLOCK = 100  # a hot seller/auction/bidder is the first (bidder: second) of 100
HOT_AUCTION_BLOCK = 100
HOT_BIDDER_BLOCK = 100
PERSON_ID_LEAD = 10  # how far past the newest person/auction a random pick may reach
AUCTION_ID_LEAD = 10
HOT_CHANNEL_RATIO = 2
NUM_CHANNELS = 10_000
HOT_CHANNELS = ("Google", "Facebook", "Baidu", "Apple")

BLOCK = 1000  # events per independently seeded random stream

FIRST_NAMES = ("Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah",
               "Deiter", "Walter")
LAST_NAMES = ("Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones",
              "Noris")
US_CITIES = ("Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend",
             "Redmond", "Seattle", "Kent", "Cheyenne")
US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")

# Random bytes -> lowercase letters with about one space in 13, as the spec's strings.
_LETTERS = bytes(range(ord("a"), ord("z") + 1))
_TEXT = bytes(b" "[0] if i % 13 == 0 else _LETTERS[i % 26] for i in range(256))


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """The generator's knobs; the defaults are Nexmark's (Flink's nexmark) defaults."""

    seed: int = 0
    events_per_second: int = 10_000
    base_time_ms: int = 1_700_000_000_000  # fixed, so that a seed fixes every event time
    num_active_people: int = 1000
    num_in_flight_auctions: int = 100
    hot_auction_ratio: int = 2
    hot_sellers_ratio: int = 4
    hot_bidders_ratio: int = 4
    avg_person_bytes: int = 200
    avg_auction_bytes: int = 500
    avg_bid_bytes: int = 100

    def __post_init__(self) -> None:
        if self.events_per_second <= 0:
            raise ValueError(f"events_per_second must be positive, got {self.events_per_second}")

    def timestamp(self, event_number: int) -> int:
        """Event time (ms) of event ``event_number``: evenly spaced at the configured rate."""
        return self.base_time_ms + event_number * 1000 // self.events_per_second


def kind_of(event_number: int) -> int:
    offset = event_number % TOTAL_PROPORTION
    if offset < PERSON_PROPORTION:
        return PERSON
    return AUCTION if offset < PERSON_PROPORTION + AUCTION_PROPORTION else BID


def last_person(event_number: int) -> int:
    """0-based id of the newest person at or before ``event_number``."""
    epoch, offset = divmod(event_number, TOTAL_PROPORTION)
    return epoch * PERSON_PROPORTION + min(offset, PERSON_PROPORTION - 1)


def last_auction(event_number: int) -> int:
    """0-based id of the newest auction at or before ``event_number`` (-1 before the first)."""
    epoch, offset = divmod(event_number, TOTAL_PROPORTION)
    if offset < PERSON_PROPORTION:
        return (epoch - 1) * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    offset = min(offset - PERSON_PROPORTION, AUCTION_PROPORTION - 1)
    return epoch * AUCTION_PROPORTION + offset


def _pick(rng: random.Random, n: int) -> int:
    """Uniform in [0, n): ``int(random() * n)`` is 3x cheaper than ``randrange``."""
    return int(rng.random() * n)


class Generator:
    """``events(start, count)`` -> (event_type, event dict) for events start..start+count-1."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        # Channel n's URL is a function of n only (the spec caches one per channel).
        url_rng = random.Random(self.config.seed ^ 0x6E65786D61726B)
        self._hot_urls = tuple(self._base_url(url_rng) for _ in HOT_CHANNELS)
        self._channel_urls: dict[int, str] = {}
        auctions_ahead = self.config.num_in_flight_auctions * TOTAL_PROPORTION
        self._auction_horizon_events = auctions_ahead // AUCTION_PROPORTION

    def events(self, start: int = 0, count: int = 1) -> Iterator[tuple[int, dict[str, Any]]]:
        end = start + count
        block = start // BLOCK
        while block * BLOCK < end:
            first = block * BLOCK
            rng = random.Random(self.config.seed * 1_000_003 + block)
            for n in range(first, min(first + BLOCK, end)):
                event = self._event(n, rng)  # drawn even below start: keeps the stream fixed
                if n >= start:
                    yield event
            block += 1

    def _event(self, n: int, rng: random.Random) -> tuple[int, dict[str, Any]]:
        kind = kind_of(n)
        ts = self.config.timestamp(n)
        if kind == BID:
            return BID, self._bid(n, rng, ts)
        if kind == AUCTION:
            return AUCTION, self._auction(n, rng, ts)
        return PERSON, self._person(n, rng, ts)

    # -- ids ----------------------------------------------------------------------------------

    def _recent_person(self, n: int, rng: random.Random) -> int:
        """A person among the latest ``num_active_people``, up to PERSON_ID_LEAD ahead."""
        people = last_person(n) + 1
        active = min(people, self.config.num_active_people)
        return people - active + _pick(rng, active + PERSON_ID_LEAD)

    def _recent_auction(self, n: int, rng: random.Random) -> int:
        newest = last_auction(n)
        oldest = max(newest - self.config.num_in_flight_auctions, 0)
        return oldest + _pick(rng, newest - oldest + 1 + AUCTION_ID_LEAD)

    # -- events -------------------------------------------------------------------------------

    def _bid(self, n: int, rng: random.Random, ts: int) -> dict[str, Any]:
        # The hot path (46 events in 50): picks inlined as int(uniform() * n).
        cfg, uniform = self.config, rng.random
        if int(uniform() * cfg.hot_auction_ratio) > 0:
            auction = last_auction(n) // HOT_AUCTION_BLOCK * HOT_AUCTION_BLOCK
        else:
            auction = self._recent_auction(n, rng)
        if int(uniform() * cfg.hot_bidders_ratio) > 0:
            bidder = last_person(n) // HOT_BIDDER_BLOCK * HOT_BIDDER_BLOCK + 1
        else:
            bidder = self._recent_person(n, rng)
        price = round(10.0 ** (uniform() * 6.0) * 100.0)
        if uniform() * HOT_CHANNEL_RATIO >= 1.0:
            i = int(uniform() * len(HOT_CHANNELS))
            channel, url = HOT_CHANNELS[i], self._hot_urls[i]
        else:
            number = int(uniform() * NUM_CHANNELS)
            channel, url = f"channel-{number}", self._channel_url(number)
        return {"auction": auction + FIRST_AUCTION_ID, "bidder": bidder + FIRST_PERSON_ID,
                "price": price, "channel": channel, "url": url, "dateTime": ts,
                "extra": _extra(rng, 32, cfg.avg_bid_bytes)}

    def _auction(self, n: int, rng: random.Random, ts: int) -> dict[str, Any]:
        cfg = self.config
        if _pick(rng, cfg.hot_sellers_ratio) > 0:
            seller = last_person(n) // HOT_SELLER_BLOCK * HOT_SELLER_BLOCK
        else:
            seller = self._recent_person(n, rng)
        initial_bid = _price(rng)
        # Lasts up to twice the time until num_in_flight_auctions more auctions have started.
        horizon = cfg.timestamp(n + self._auction_horizon_events) - ts
        expires = ts + 1 + _pick(rng, max(horizon * 2, 1))
        name, description = _text(rng, 20), _text(rng, 100)
        return {"id": last_auction(n) + FIRST_AUCTION_ID, "itemName": name,
                "description": description, "initialBid": initial_bid,
                "reserve": initial_bid + _price(rng), "dateTime": ts, "expires": expires,
                "seller": seller + FIRST_PERSON_ID,
                "category": FIRST_CATEGORY_ID + _pick(rng, NUM_CATEGORIES),
                "extra": _extra(rng, 8 + len(name) + len(description) + 40,
                                cfg.avg_auction_bytes)}

    def _person(self, n: int, rng: random.Random, ts: int) -> dict[str, Any]:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"{_text(rng, 7)}@{_text(rng, 5)}.com"
        card = " ".join(f"{_pick(rng, 10_000):04d}" for _ in range(4))
        city, state = rng.choice(US_CITIES), rng.choice(US_STATES)
        size = 8 + len(name) + len(email) + len(card) + len(city) + len(state)
        return {"id": last_person(n) + FIRST_PERSON_ID, "name": name, "emailAddress": email,
                "creditCard": card, "city": city, "state": state, "dateTime": ts,
                "extra": _extra(rng, size, self.config.avg_person_bytes)}

    def _channel_url(self, number: int) -> str:
        url = self._channel_urls.get(number)
        if url is None:
            url = self._base_url(random.Random(self.config.seed * 7919 + number))
            if number % 2:  # half the channels carry their id, bit-reversed, in the URL
                url += f"&channel_id={int(f'{number:032b}'[::-1], 2)}"
            self._channel_urls[number] = url
        return url

    @staticmethod
    def _base_url(rng: random.Random) -> str:
        parts = "/".join(_exact_text(rng, 5).replace(" ", "_") for _ in range(3))
        return f"https://www.nexmark.com/{parts}/item.htm?query=1"


def _price(rng: random.Random) -> int:
    return round(10.0 ** (rng.random() * 6.0) * 100.0)


def _exact_text(rng: random.Random, length: int) -> str:
    return rng.randbytes(length).translate(_TEXT).decode("ascii")


def _text(rng: random.Random, max_length: int) -> str:
    """3 to max_length - 1 characters, as the spec's nextString."""
    return _exact_text(rng, 3 + _pick(rng, max_length - 3))


def _extra(rng: random.Random, current_size: int, average_size: int) -> str:
    """Padding that brings the event's size to ``average_size`` give or take 20 %."""
    if current_size > average_size:
        return ""
    wanted = average_size - current_size
    delta = round(wanted * 0.2)
    return _exact_text(rng, wanted - delta + (_pick(rng, 2 * delta) if delta else 0))
