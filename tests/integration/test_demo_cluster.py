"""``make demo-cluster``, shortened: the airline microservice as 3 ``fluvial run`` instances
on the 3-node cluster, one SIGKILLed mid-run; every flight must still be scored exactly once
(outputs read read_committed: one per input offset, no flight twice, none missing)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from examples.airline.demo_cluster import Settings, run
from tests.integration.kafka_helpers import KafkaTestBroker


@pytest.mark.cluster
def test_demo_cluster_survives_a_sigkilled_instance(kafka_cluster: KafkaTestBroker,
                                                    tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=kafka_cluster.bootstrap_servers, records=3000,
                        instances=3, rate=500.0, kill_at=0.3, victim=1, timeout=120.0,
                        run_dir=tmp_path, suffix=f"-{uuid.uuid4().hex[:8]}", quiet=True)
    summary = run(settings)
    print(summary.text())
    assert summary.ok, summary.text()
    assert summary.inputs == summary.outputs == summary.distinct_outputs == 3000
    assert summary.missing == summary.duplicates == summary.dead_letters == 0
    assert summary.takeover_s is not None and summary.takeover_s < 60
    assert summary.moved, "the victim's tasks went to the survivors"
