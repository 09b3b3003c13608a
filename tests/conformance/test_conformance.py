"""fluvial against Kafka Streams, record for record: same topology, same input bytes, the
output topics compared in order (key, value and timestamp bytes)."""

from __future__ import annotations

import pytest
from tests.conformance import topology
from tests.conformance.cases import CASES, Case, spec
from tests.conformance.conftest import RECORDS, SEEDS
from tests.conformance.records import Output, Outputs


def first_difference(java: Outputs, ours: Outputs) -> str | None:
    """Where fluvial's outputs first part from Kafka Streams', in words; None if nowhere."""
    for topic, expected in java.items():
        got = ours.get(topic, [])
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            if e != g:
                return f"topic {topic!r} record {i}: Kafka Streams {e}, fluvial {g}"
        if len(expected) != len(got):
            longer, which = (expected, "Kafka Streams") if len(expected) > len(got) else (
                got, "fluvial")
            extra: Output = longer[min(len(expected), len(got))]
            return (f"topic {topic!r}: Kafka Streams {len(expected)} records, fluvial "
                    f"{len(got)}; first extra from {which}: {extra}")
    return None


@pytest.mark.parametrize("record_cache", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_same_outputs_as_kafka_streams(case: Case, seed: int, record_cache: bool,
                                       java_outputs: dict[str, Outputs | str]) -> None:
    s = spec(case, seed, RECORDS, record_cache)
    java = java_outputs[s["id"]]
    assert not isinstance(java, str), f"the oracle failed on {s['id']}: {java}"
    ours = topology.run(s)
    assert sum(map(len, java.values())) > 0, f"{s['id']}: Kafka Streams emitted nothing"
    difference = first_difference(java, ours)
    assert difference is None, f"{s['id']}: {difference}"
