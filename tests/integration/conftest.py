"""Fixtures for integration tests against a real Apache Kafka broker.

* ``kafka``: a session-wide single-node broker started from the jars that
  ``python tools/kafka_cluster.py fetch`` downloads, or the external broker named by
  ``FLUVIAL_BOOTSTRAP`` (then nothing is started).
* ``kafka_cluster``: a session-wide 3-node cluster (replication 3, min ISR 2), only
  for tests marked ``@pytest.mark.cluster``; it is started on first use and any node
  a previous test stopped or killed is restarted before the next test gets it.
* ``topic_name`` / ``unique_topic``: topic names no other test (or concurrent test
  run against the same broker) uses, so tests never see each other's records.

Both fixtures yield a :class:`KafkaTestBroker` (bootstrap_servers, create_topic,
produce, consume_all, ...); ``.cluster`` is the :class:`KafkaCluster` to kill and
restart nodes with.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator

import pytest
from tests.integration.kafka_helpers import KafkaTestBroker, make_topic_name
from tests.integration.wordcount_support import Instance
from tools.kafka_cluster import KafkaCluster, KafkaToolError, kafka_home, pid_alive

BOOTSTRAP_ENV = "FLUVIAL_BOOTSTRAP"


# Tests use event times near 1970 (windows at 0, 1000, ...; the conformance cases' own), and a
# window store's changelog keeps records for its retention plus a day: the broker's time-based
# retention, checked 30 s after start and every 5 minutes, deletes them whenever a check falls
# mid-test (a windowed test read 0 of its changelog's records). No test here is about retention.
_WEEK_MS = str(7 * 24 * 3600 * 1000)
TEST_BROKER_CONFIG = {"log.initial.task.delay.ms": _WEEK_MS,
                      "log.retention.check.interval.ms": _WEEK_MS}


def _prune_old_runs() -> None:
    """Drop run dirs (logs) of earlier pytest processes that are gone."""
    home = kafka_home()
    for d in home.glob("run-pytest-*"):
        try:
            pid = int(d.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _start(nodes: int, label: str) -> KafkaCluster:
    _prune_old_runs()
    cluster = KafkaCluster(nodes=nodes, name=f"pytest-{os.getpid()}-{label}",
                           config_overrides=TEST_BROKER_CONFIG)
    try:
        cluster.start()
    except KafkaToolError as exc:
        pytest.fail(f"could not start a local Kafka ({nodes} node(s)):\n{exc}", pytrace=False)
    print(f"\n[kafka] {label}: {nodes} node(s) ready in {cluster.start_seconds:.1f}s")
    return cluster


def _stop_and_check(cluster: KafkaCluster) -> None:
    """Stop the cluster and fail the teardown if any of its JVMs survived.

    SIGKILL, not SIGTERM: the data is thrown away, and a graceful stop of the last
    KRaft voter waits ~5 s for a quorum that is already gone.
    """
    # clients whose callbacks refer back to them (fluvial's adapters, rebalance closures) are
    # freed only by the cyclic GC: collect them while the broker is up, or their librdkafka
    # threads log "connection refused" until the interpreter exits
    gc.collect()
    pids = dict(cluster.pids)
    cluster.stop(graceful=False)
    leaked = {i: pid for i, pid in pids.items() if pid_alive(pid)}
    if leaked:
        raise AssertionError(f"Kafka JVMs still running after teardown: {leaked}")


def started_broker(nodes: int, label: str) -> Iterator[KafkaTestBroker]:
    """A cluster of ``nodes`` for a fixture's scope: started, yielded, stopped and checked."""
    cluster = _start(nodes, label)
    broker = KafkaTestBroker(cluster.bootstrap_servers, cluster)
    yield broker
    broker.close()
    _stop_and_check(cluster)


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaTestBroker]:
    """A single Kafka broker for the whole session (or ``$FLUVIAL_BOOTSTRAP``)."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        broker = KafkaTestBroker(external)
        yield broker
        broker.close()
        return
    yield from started_broker(1, "single")


@pytest.fixture(scope="session")
def _kafka_cluster_session() -> Iterator[KafkaTestBroker]:
    yield from started_broker(3, "cluster")


@pytest.fixture
def kafka_cluster(
    request: pytest.FixtureRequest, _kafka_cluster_session: KafkaTestBroker
) -> KafkaTestBroker:
    """The shared 3-node cluster, with all nodes running; needs ``@pytest.mark.cluster``."""
    if request.node.get_closest_marker("cluster") is None:
        pytest.fail("tests that use kafka_cluster must be marked @pytest.mark.cluster")
    cluster = _kafka_cluster_session.cluster
    assert cluster is not None
    for node_id in cluster.node_ids:
        if not cluster.is_running(node_id):
            cluster.restart_node(node_id)
    return _kafka_cluster_session


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory: ``unique_topic("in")`` -> a fresh topic name mentioning this test."""
    base = request.node.name

    def make(suffix: str = "") -> str:
        return make_topic_name(f"{base}-{suffix}" if suffix else base)

    return make


@pytest.fixture
def topic_name(unique_topic: Callable[[str], str]) -> str:
    """One fresh topic name for this test (not created; call ``create_topic``)."""
    return unique_topic("")


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    """The `fluvial run` processes a test starts; any still running at the end are killed."""
    started: list[Instance] = []
    yield started
    for i in started:
        if i.proc.poll() is None:
            i.proc.kill()
        i.proc.wait(30)
