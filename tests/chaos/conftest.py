"""The chaos suite's own 3-node cluster: its brokers get killed, so no other test shares it.

Started for the module and stopped after it (tests/chaos runs before tests/integration, so
the two clusters never run at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.conftest import instances as instances  # the processes a test starts
from tests.integration.conftest import started_broker
from tests.integration.conftest import unique_topic as unique_topic  # fresh topic names
from tests.integration.kafka_helpers import KafkaTestBroker


@pytest.fixture(scope="module")
def chaos_cluster() -> Iterator[KafkaTestBroker]:
    yield from started_broker(3, "chaos")
