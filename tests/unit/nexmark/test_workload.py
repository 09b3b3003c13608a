"""The bench harness's Nexmark workloads: the i-th input is the i-th bid, with its reference."""

from __future__ import annotations

import random

import orjson
from bench.nexmark.generator import BID, Generator
from bench.nexmark.queries import QUERIES
from bench.workloads import get
from bench.workloads.nexmark import bids


def test_bids_by_number_are_the_streams_bids() -> None:
    stream = [e for k, e in Generator().events(0, 5000) if k == BID]
    assert bids(0, 100) == stream[:100]
    assert bids(1037, 500) == stream[1037:1537]  # starts mid-group, spans blocks


def test_inputs_carry_the_bid_and_the_reference_output() -> None:
    inputs = get("nexmark-q2").generate(random.Random(0), 2000, 2000, 4)
    assert [i.index for i in inputs] == list(range(2000, 4000))
    for record in inputs:
        bid = orjson.loads(record.value)
        assert record.partition == bid["auction"] % 4
        assert record.meta == QUERIES["q2"].output_of(bid)
    assert any(r.meta is not None for r in inputs) and any(r.meta is None for r in inputs)
