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


def q0_project(bid: Bid) -> Bid:
    return {"auction": bid["auction"], "bidder": bid["bidder"], "price": bid["price"],
            "dateTime": bid["dateTime"], "extra": bid["extra"]}


def q1_convert(bid: Bid) -> Bid:
    return {"auction": bid["auction"], "bidder": bid["bidder"],
            "price": DOLLAR_TO_EURO * bid["price"], "dateTime": bid["dateTime"],
            "extra": bid["extra"]}


def q2_keep(bid: Bid) -> bool:
    return bid["auction"] % AUCTION_SKIP == 0


def q2_project(bid: Bid) -> Bid:
    return {"auction": bid["auction"], "price": bid["price"]}


@dataclass(frozen=True)
class Query:
    """One query: ``keep`` then ``project`` over each bid (both stateless for q0-q2)."""

    name: str
    title: str
    project: Callable[[Bid], Any]
    keep: Callable[[Bid], bool] | None = None

    def topology(self, input_topic: str, output_topic: str,
                 union: bool = False) -> fluvial.Topology:
        """The query in fluvial's DSL; ``union``: the input is the union topic."""
        builder = fluvial.StreamsBuilder()
        bids = builder.stream(input_topic, value_serde=serdes.Json())
        if union:
            bids = bids.filter(lambda _k, e: e["event_type"] == BID).map_values(_bid_of)
        keep = self.keep
        if keep is not None:
            bids = bids.filter(lambda _k, bid: keep(bid))
        bids.map_values(self.project).to(output_topic, value_serde=serdes.Json())
        return builder.build()

    def reference(self, bids: Iterable[Bid]) -> list[Output]:
        """What the query must output for ``bids``, computed without fluvial."""
        keep, project = self.keep, self.project
        return [(str(b["auction"]), project(b)) for b in bids if keep is None or keep(b)]


def _bid_of(event: dict[str, Any]) -> Bid:
    bid: Bid = event["bid"]
    return bid


QUERIES: dict[str, Query] = {q.name: q for q in (
    Query("q0", "pass-through (projection of every bid)", q0_project),
    Query("q1", f"currency conversion (price * {DOLLAR_TO_EURO})", q1_convert),
    Query("q2", f"selection (auction % {AUCTION_SKIP} == 0)", q2_project, q2_keep),
)}
