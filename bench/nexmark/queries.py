"""Nexmark q0-q2 as fluvial topologies, each beside its reference in plain Python.

The queries read bids, keyed by their auction id (decimal string), as JSON objects, either
from the bid topic or from the union topic (``{"event_type": 2, "bid": {...}}``, Flink
nexmark's layout), and keep the key. Their definitions are Flink nexmark's SQL:

- q0 pass-through: ``SELECT auction, bidder, price, dateTime, extra FROM bid``
- q1 currency conversion: ``SELECT auction, bidder, 0.908 * price AS price, dateTime, extra``
  (Flink's DECIMAL arithmetic; here a float, the same float in topology and reference)
- q2 selection: ``SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0``
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import fluvial
from bench.nexmark.generator import BID
from fluvial import serdes

DOLLAR_TO_EURO = 0.908
AUCTION_SKIP = 123

Bid = dict[str, Any]
Output = tuple[str, Any]  # (key, value) as the query writes it
Bids = Iterable[Bid]


# -- the queries in the DSL (what fluvial runs) ------------------------------------------------

def q0_project(bid: Bid) -> Bid:
    return {"auction": bid["auction"], "bidder": bid["bidder"], "price": bid["price"],
            "dateTime": bid["dateTime"], "extra": bid["extra"]}


def q1_convert(bid: Bid) -> Bid:
    return {"auction": bid["auction"], "bidder": bid["bidder"],
            "price": DOLLAR_TO_EURO * bid["price"], "dateTime": bid["dateTime"],
            "extra": bid["extra"]}


def q0(bids: fluvial.Stream) -> fluvial.Stream:
    return bids.map_values(q0_project)


def q1(bids: fluvial.Stream) -> fluvial.Stream:
    return bids.map_values(q1_convert)


def q2(bids: fluvial.Stream) -> fluvial.Stream:
    return (bids.filter(lambda _k, bid: bid["auction"] % AUCTION_SKIP == 0)
            .map_values(lambda bid: {"auction": bid["auction"], "price": bid["price"]}))


# -- the references: the same definitions, written again without fluvial ---------------------

_Q0_FIELDS = ("auction", "bidder", "price", "dateTime", "extra")


def q0_of(b: Bid) -> Bid | None:
    return {f: b[f] for f in _Q0_FIELDS}


def q1_of(b: Bid) -> Bid | None:
    return {**{f: b[f] for f in _Q0_FIELDS}, "price": 0.908 * b["price"]}


def q2_of(b: Bid) -> Bid | None:
    return {"auction": b["auction"], "price": b["price"]} if b["auction"] % 123 == 0 else None


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    apply: Callable[[fluvial.Stream], fluvial.Stream]  # the query over the stream of bids
    output_of: Callable[[Bid], Bid | None]  # the reference's answer to one bid (None: dropped)

    def reference(self, bids: Bids) -> list[Output]:
        """What the query must output for ``bids``, computed without fluvial."""
        output_of = self.output_of
        return [(str(b["auction"]), out) for b in bids if (out := output_of(b)) is not None]

    def topology(self, input_topic: str, output_topic: str,
                 union: bool = False) -> fluvial.Topology:
        """The query reading ``input_topic`` (the union topic if ``union``), writing JSON."""
        builder = fluvial.StreamsBuilder()
        bids = builder.stream(input_topic, value_serde=serdes.Json())
        if union:
            bids = bids.filter(lambda _k, e: e["event_type"] == BID).map_values(_bid_of)
        self.apply(bids).to(output_topic, value_serde=serdes.Json())
        return builder.build()


def _bid_of(event: dict[str, Any]) -> Bid:
    bid: Bid = event["bid"]
    return bid


QUERIES: dict[str, Query] = {q.name: q for q in (
    Query("q0", "pass-through (projection of every bid)", q0, q0_of),
    Query("q1", f"currency conversion (price * {DOLLAR_TO_EURO})", q1, q1_of),
    Query("q2", f"selection (auction % {AUCTION_SKIP} == 0)", q2, q2_of),
)}
