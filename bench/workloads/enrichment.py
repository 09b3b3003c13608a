"""(5) Enrichment: a stream-table left join, orders against a table of 100,000 customers.

The harness feeds one input topic, so the table comes from it too: a quarter of the records
are customer updates (``{"customer": c, "tier": ...}``), the rest orders (``{"id": i,
"customer": c, "amount": ...}``), all keyed by the customer (``c-00042``) and partitioned by
it, so both sides of the join are co-partitioned. The topology splits the stream, builds the
table with ``to_table`` and left-joins every order with its customer's latest update: one
output per order, its value carrying the order's id for the tracker. Because the table and
the orders share one source, fluvial runs this sub-topology record by record (a batch must
not let an order see a later update): the per-record path, not the batched one.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from bench.workloads import Input, Tracker, Workload, register
from bench.workloads.stateless import StatelessTracker

CUSTOMERS = 100_000
TIERS = ["tin", "silver", "gold", "platinum"]


class EnrichmentTracker(StatelessTracker):
    """One output per order, found by the order id in the output's value."""

    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        order_id = orjson.loads(value or b"{}").get("id", -1)
        super()._seen(str(order_id).encode(), value, append_ms)


def is_order(_key: Any, value: Any) -> bool:
    return "id" in value


def is_customer(_key: Any, value: Any) -> bool:
    return "id" not in value


def enrich(order: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": order["id"], "amount": order["amount"],
            "tier": customer["tier"] if customer else None}


@register
class Enrichment(Workload):
    name = "enrichment"
    title = "(5) enrichment: stream-table left join against 100k customers"
    systems = frozenset({"fluvial"})

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        out = []
        for i in range(start, start + count):
            c = rng.randrange(CUSTOMERS)
            key = f"c-{c:05d}".encode()
            if rng.random() < 0.25:
                value = orjson.dumps({"customer": c, "tier": rng.choice(TIERS)})
                out.append(Input(i, key, value, c % partitions, False))
            else:
                value = orjson.dumps({"id": i, "customer": c,
                                      "amount": rng.randrange(1, 500)})
                out.append(Input(i, key, value, c % partitions, True))
        return out

    def tracker(self) -> Tracker:
        return EnrichmentTracker()

    def fluvial_topology(self) -> Any:
        import os

        import fluvial

        builder = fluvial.StreamsBuilder()
        records = builder.stream(os.environ["BENCH_INPUT"])
        customers = records.filter(is_customer).to_table(materialized="customers")
        records.filter(is_order).left_join(customers, enrich).to(os.environ["BENCH_OUTPUT"])
        return builder.build()


def fluvial_topology() -> Any:
    """For ``fluvial run bench.workloads.enrichment:fluvial_topology``."""
    return Enrichment().fluvial_topology()
