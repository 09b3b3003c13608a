"""Order totals per customer, for the live dashboard: JSON orders in, a running total per
customer out; an order without a whole-number amount fails and, with ``on_error=dead_letter``,
goes to ``<application id>-dead-letter`` with its reason (shown on the dashboard).

Run it: ``fluvial run examples.dashboard.app:build -a orders -b localhost:9092
--on-error dead_letter --http-port 8080``, then open http://127.0.0.1:8080/dashboard
"""

from __future__ import annotations

from typing import Any

import fluvial
from fluvial import serdes

INPUT = "orders"
OUTPUT = "order-totals"


def amount(order: Any) -> int:
    value = order.get("amount") if isinstance(order, dict) else None
    if not isinstance(value, int):
        raise ValueError(f"order without a whole-number amount: {order!r}")
    return value


def build(source: str = INPUT, sink: str = OUTPUT) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(source, key_serde=serdes.String(), value_serde="json")
        .map_values(amount)
        .group_by_key()
        .reduce(lambda total, n: total + n, materialized="totals")
        .to_stream()
        .to(sink, value_serde="json"))
    return builder.build()
