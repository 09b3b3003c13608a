"""Nexmark q3, q4, q5, q7, q8: the queries with joins and windows, each as a fluvial topology
beside its plain-Python reference.

They read the per-type topics (``<prefix>-person``, ``-auction``, ``-bid``; JSON, keyed by
the event's id, bids by their auction id) and follow Flink nexmark's SQL definitions, with
the differences streaming semantics make (bench/nexmark/README.md, "Stateful queries"):

- q3 local item suggestion: auctions of category 10 joined with their seller, a person in
  OR, ID or CA (a stream-table join: an auction finds its seller only if the seller came
  first);
- q4 average closing price per category: bids joined with their auction while it is open,
  the highest bid per auction, the average of those per category (a table: its latest value
  per category is the answer);
- q5 hot items: bids counted per auction in hopping windows (10 s, every 2 s), the auctions
  with the most bids per window (a table keyed by window start);
- q7 highest bid: the highest bid(s) of each tumbling 10 s window;
- q8 monitor new users: people who opened an auction in the tumbling 10 s window in which
  they registered.

Windows emit when they close (``on_window_close``), so each window's output is final; a
reference emits exactly the windows that stream time has closed at the end of its input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import fluvial
from bench.nexmark.check import CheckResult, check, check_latest
from bench.nexmark.generator import AUCTION, BID, KIND_NAMES, PERSON
from bench.nexmark.sink import event_key, topic_names
from fluvial import EmitStrategy, JoinWindows, TimeWindows, serdes

Event = tuple[int, dict[str, Any]]  # (kind, event) as the generator makes them
Output = tuple[str, Any]
Topics = dict[str, fluvial.Stream]

WINDOW_MS = 10_000   # q5's hop size, q7's and q8's tumbling windows (Flink nexmark: 10 s)
HOP_MS = 2_000       # q5's hop (Flink nexmark: 2 s)
Q3_STATES = ("OR", "ID", "CA")
Q3_CATEGORY = 10
#: q8's windows: the join's output is sparse, and a window store forgets a window once the
#: newest window start is a retention past it, even when no record closed it before then
Q8_RETENTION_MS = 3_600_000


def _kept(grace_ms: int, at_least: int | None = None) -> fluvial.Materialized | None:
    """The window store of a query with ``grace_ms``: kept twice the grace and a window, so
    that end-of-input events a grace past the last event (the harness's ``closers``) find
    every window still stored when they close it."""
    if not grace_ms:
        return None if at_least is None else fluvial.Materialized(retention=at_least)
    return fluvial.Materialized(retention=max(at_least or 0, 2 * grace_ms + WINDOW_MS))


# -- the queries in the DSL --------------------------------------------------------------------

def q3(builder: fluvial.StreamsBuilder, prefix: str, _grace_ms: int = 0) -> fluvial.Stream:
    topics = topic_names(prefix)
    people = builder.table(topics["person"]).filter(lambda _k, p: p["state"] in Q3_STATES)
    return (builder.stream(topics["auction"])
            .filter(lambda _k, a: a["category"] == Q3_CATEGORY)
            .select_key(lambda _k, a: str(a["seller"]))
            .join(people, lambda a, p: {"name": p["name"], "city": p["city"],
                                        "state": p["state"], "id": a["id"]}))


def _bid_in_auction(bid: dict[str, Any], auction: dict[str, Any]) -> dict[str, Any] | None:
    if auction["dateTime"] <= bid["dateTime"] <= auction["expires"]:
        return {"price": bid["price"], "category": auction["category"]}
    return None


def _higher(_key: Any, bid: dict[str, Any], best: dict[str, Any] | None) -> dict[str, Any]:
    return bid if best is None or bid["price"] > best["price"] else best


def _add_final(_category: Any, final: int, total: dict[str, int]) -> dict[str, int]:
    return {"sum": total["sum"] + final, "count": total["count"] + 1}


def _remove_final(_category: Any, final: int, total: dict[str, int]) -> dict[str, int]:
    return {"sum": total["sum"] - final, "count": total["count"] - 1}


def q4(builder: fluvial.StreamsBuilder, prefix: str, _grace_ms: int = 0) -> fluvial.Stream:
    topics = topic_names(prefix)
    auctions = builder.table(topics["auction"])
    finals = (builder.stream(topics["bid"])
              .join(auctions, _bid_in_auction)
              .filter(lambda _k, v: v is not None)
              .group_by_key()
              .aggregate(lambda: None, _higher))
    return (finals.group_by(lambda _auction, best: (str(best["category"]), best["price"]))
            .aggregate(lambda: {"sum": 0, "count": 0}, _add_final, _remove_final)
            .filter(lambda _k, total: total["count"] > 0)
            .map_values(lambda total: {"avg": total["sum"] / total["count"]})
            .to_stream())


def _with_most_bids(_start: Any, counted: dict[str, int],
                    hot: dict[str, Any]) -> dict[str, Any]:
    if counted["num"] > hot["num"]:
        return {"num": counted["num"], "auctions": [counted["auction"]]}
    if counted["num"] == hot["num"]:
        return {"num": hot["num"], "auctions": sorted([*hot["auctions"], counted["auction"]])}
    return hot


def q5(builder: fluvial.StreamsBuilder, prefix: str, grace_ms: int = 0) -> fluvial.Stream:
    hopping = TimeWindows.of_size_and_grace(WINDOW_MS, grace_ms).advance_by(HOP_MS)
    return (builder.stream(topic_names(prefix)["bid"])
            .group_by_key()
            .windowed_by(hopping)
            .emit_strategy(EmitStrategy.on_window_close())
            .count(_kept(grace_ms))
            .to_stream()
            .map(lambda w, num: (str(w.start), {"auction": int(w.key), "num": num}))
            .group_by_key()
            .aggregate(lambda: {"num": 0, "auctions": []}, _with_most_bids)
            .to_stream())


def _keep_highest(_key: Any, bid: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    if bid["price"] > top["price"]:
        return {"price": bid["price"], "bids": [bid]}
    if bid["price"] == top["price"]:
        return {"price": top["price"], "bids": [*top["bids"], bid]}
    return top


def _q7_row(bid: dict[str, Any]) -> dict[str, Any]:
    return {f: bid[f] for f in ("auction", "price", "bidder", "dateTime", "extra")}


def q7(builder: fluvial.StreamsBuilder, prefix: str, grace_ms: int = 0) -> fluvial.Stream:
    return (builder.stream(topic_names(prefix)["bid"])
            .group_by(lambda _k, _bid: "all")  # one global maximum per window: one key
            .windowed_by(TimeWindows.of_size_and_grace(WINDOW_MS, grace_ms))
            .emit_strategy(EmitStrategy.on_window_close())
            .aggregate(lambda: {"price": -1, "bids": []}, _keep_highest, _kept(grace_ms))
            .to_stream()
            .flat_map(lambda _w, top: [(str(b["auction"]), _q7_row(b)) for b in top["bids"]]))


def _same_window(person: dict[str, Any], auction: dict[str, Any]) -> dict[str, Any] | None:
    start = person["dateTime"] - person["dateTime"] % WINDOW_MS
    if auction["dateTime"] - auction["dateTime"] % WINDOW_MS != start:
        return None
    return {"id": person["id"], "name": person["name"], "starttime": start}


def q8(builder: fluvial.StreamsBuilder, prefix: str, grace_ms: int = 0) -> fluvial.Stream:
    topics = topic_names(prefix)
    auctions = builder.stream(topics["auction"]).select_key(lambda _k, a: str(a["seller"]))
    return (builder.stream(topics["person"])
            .join(auctions, _same_window,
                  JoinWindows.of_time_difference_and_grace(WINDOW_MS, grace_ms))
            .filter(lambda _k, v: v is not None)
            .group_by_key()
            .windowed_by(TimeWindows.of_size_and_grace(WINDOW_MS, grace_ms))
            .emit_strategy(EmitStrategy.on_window_close())
            # one row per new user and window; kept long enough (Q8_RETENTION_MS) for a
            # window to be emitted although matches are sparse and stream time jumps
            .reduce(lambda first, _again: first, _kept(grace_ms, Q8_RETENTION_MS))
            .to_stream()
            .map(lambda w, row: (w.key, row)))


# -- the references: the same definitions, written again without fluvial ---------------------

def _closed(start: int, size: int, stream_time: int) -> bool:
    """A window [start, start + size) without grace is closed once stream time reaches its end."""
    return start + size <= stream_time


def q3_reference(events: Iterable[Event]) -> list[Output]:
    local: dict[int, dict[str, Any]] = {}  # the people of Q3_STATES seen so far
    out: list[Output] = []
    for kind, e in events:
        if kind == PERSON and e["state"] in Q3_STATES:
            local[e["id"]] = e
        elif kind == AUCTION and e["category"] == Q3_CATEGORY and e["seller"] in local:
            p = local[e["seller"]]
            out.append((str(e["seller"]), {"name": p["name"], "city": p["city"],
                                           "state": p["state"], "id": e["id"]}))
    return out


def q4_reference(events: Iterable[Event]) -> list[Output]:
    auctions: dict[int, dict[str, Any]] = {}
    final: dict[int, int] = {}  # auction id -> its highest bid while open
    for kind, e in events:
        if kind == AUCTION:
            auctions[e["id"]] = e
        elif kind == BID and (a := auctions.get(e["auction"])) is not None \
                and a["dateTime"] <= e["dateTime"] <= a["expires"]:
            final[a["id"]] = max(final.get(a["id"], e["price"]), e["price"])
    prices: dict[int, list[int]] = defaultdict(list)
    for auction, price in final.items():
        prices[auctions[auction]["category"]].append(price)
    return [(str(c), {"avg": sum(p) / len(p)}) for c, p in prices.items()]


def q5_reference(events: Iterable[Event]) -> list[Output]:
    counts: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    stream_time = -1
    for kind, e in events:
        if kind != BID:
            continue
        ts = e["dateTime"]
        stream_time = max(stream_time, ts)
        first = ts - ts % HOP_MS - WINDOW_MS + HOP_MS
        for start in range(max(first, 0), ts + 1, HOP_MS):
            counts[start][e["auction"]] += 1
    out: list[Output] = []
    for start, per_auction in counts.items():
        if _closed(start, WINDOW_MS, stream_time):
            most = max(per_auction.values())
            out.append((str(start), {"num": most, "auctions": sorted(
                a for a, n in per_auction.items() if n == most)}))
    return out


def q7_reference(events: Iterable[Event]) -> list[Output]:
    windows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    stream_time = -1
    for kind, e in events:
        if kind == BID:
            stream_time = max(stream_time, e["dateTime"])
            windows[e["dateTime"] - e["dateTime"] % WINDOW_MS].append(e)
    out: list[Output] = []
    for start, bids in windows.items():
        if _closed(start, WINDOW_MS, stream_time):
            top = max(b["price"] for b in bids)
            out += [(str(b["auction"]), _q7_row(b)) for b in bids if b["price"] == top]
    return out


def q8_reference(events: Iterable[Event]) -> list[Output]:
    people: dict[int, dict[str, Any]] = {}
    auctions: list[dict[str, Any]] = []
    for kind, e in events:
        if kind == PERSON:
            people[e["id"]] = e
        elif kind == AUCTION:
            auctions.append(e)
    rows: dict[str, dict[str, Any]] = {}
    stream_time = -1  # of the join's output: each matching pair at the later of its two times
    for a in auctions:
        p = people.get(a["seller"])
        if p is not None and (row := _same_window(p, a)) is not None:
            rows[str(p["id"])] = row
            stream_time = max(stream_time, p["dateTime"], a["dateTime"])
    return [(k, row) for k, row in rows.items()
            if _closed(row["starttime"], WINDOW_MS, stream_time)]


@dataclass(frozen=True)
class EventQuery:
    """A query over the per-type topics; ``table`` if its output is a table's update stream,
    whose latest value per key is the answer (checked with ``check_latest``)."""

    name: str
    title: str
    build: Callable[[fluvial.StreamsBuilder, str, int], fluvial.Stream]
    reference: Callable[[Iterable[Event]], list[Output]]
    reads: tuple[int, ...]  # the kinds of event it reads (PERSON, AUCTION, BID)
    table: bool = False
    #: the kinds it reads as a table in a stream-table join (the harness loads them first)
    tables: tuple[int, ...] = ()

    def topology(self, prefix: str, output_topic: str, grace_ms: int = 0) -> fluvial.Topology:
        """``grace_ms``: the windows' and q8's join's grace (none in the TestDriver, whose
        input is in event order; the harness's, ``bench.nexmark.harness.GRACE_MS``)."""
        builder = fluvial.StreamsBuilder()
        self.build(builder, prefix, grace_ms).to(output_topic, value_serde=serdes.Json())
        return builder.build()


STATEFUL_QUERIES: dict[str, EventQuery] = {q.name: q for q in (
    EventQuery("q3", "local item suggestion (stream-table join)", q3, q3_reference,
               (PERSON, AUCTION), tables=(PERSON,)),
    EventQuery("q4", "average closing price per category (join, two aggregations)", q4,
               q4_reference, (AUCTION, BID), table=True, tables=(AUCTION,)),
    EventQuery("q5", "hot items (hopping windows, most bids per window)", q5, q5_reference,
               (BID,), table=True),
    EventQuery("q7", "highest bid (tumbling windows)", q7, q7_reference, (BID,)),
    EventQuery("q8", "monitor new users (windowed stream-stream join)", q8, q8_reference,
               (PERSON, AUCTION)),
)}


def run_in_driver(query: EventQuery, events: Iterable[Event]) -> list[Output]:
    """``query`` in the TestDriver over ``events``, piped in event order to their topics."""
    topics = topic_names("nexmark")
    with fluvial.TestDriver(query.topology("nexmark", "out")) as driver:
        inputs = {kind: driver.input_topic(topics[KIND_NAMES[kind]]) for kind in query.reads}
        for kind, e in events:
            if kind in inputs:
                inputs[kind].pipe(e, key=event_key(kind, e).decode(), timestamp=e["dateTime"])
        outputs: list[Output] = driver.output_topic("out").read_key_values()
    return outputs


def check_query(query: EventQuery, events: list[Event]) -> CheckResult:
    compare = check_latest if query.table else check
    return compare(run_in_driver(query, events), query.reference(events))
