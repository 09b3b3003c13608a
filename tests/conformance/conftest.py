"""Conformance against Kafka Streams: every case and seed, with the record cache off and
on, is run by the Java oracle in one JVM (once per session), then by fluvial, test by test.

``FLUVIAL_CONFORMANCE=full`` (``make conformance``) runs more seeds on larger inputs than
the short form that ``make test`` runs.
"""

from __future__ import annotations

import os

import pytest
from tests.conformance import oracle
from tests.conformance.cases import CASES, spec
from tests.conformance.records import Outputs

FULL = os.environ.get("FLUVIAL_CONFORMANCE") == "full"
SEEDS = range(25 if FULL else 5)
RECORDS = 300 if FULL else 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/conformance/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.conformance)
            if FULL:  # the first test waits for the oracle to run every case and seed
                item.add_marker(pytest.mark.timeout(1800))


@pytest.fixture(scope="session")
def java_outputs() -> dict[str, Outputs | str]:
    """Kafka Streams' outputs for every case and seed, by ``case/seed``."""
    try:
        oracle.check()
    except oracle.OracleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return oracle.run([spec(case, seed, RECORDS, cache) for case in CASES for seed in SEEDS
                       for cache in (False, True)])
