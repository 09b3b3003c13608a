"""The local Kafka broker/cluster is real: records, groups, transactions, fail-over.

These tests check the test infrastructure itself (tools/kafka_cluster.py and the
fixtures), so that fluvial's own integration tests can trust it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tools import kafka_cluster as kc
from tools.kafka_cluster import REPO_ROOT, KafkaCluster, describe_cluster_ids, pid_alive

# -- single broker ------------------------------------------------------------------------


def test_produce_and_consume_keeps_per_key_order(kafka: KafkaTestBroker, topic_name: str) -> None:
    kafka.create_topic(topic_name, partitions=3)
    n = 300
    delivered = kafka.produce(topic_name, [(f"k{i % 7}", f"v{i}") for i in range(n)])
    assert len(delivered) == n
    assert {d.partition for d in delivered} <= {0, 1, 2}

    records = kafka.consume_all(topic_name, n, timeout=30)

    assert len(records) == n
    assert sorted(int(r.value[1:]) for r in records if r.value) == list(range(n))
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.value is not None
        by_key[r.key].append(int(r.value[1:]))
    for key, seq in by_key.items():
        assert seq == sorted(seq), f"key {key!r} out of order"


def test_headers_and_null_values_round_trip(kafka: KafkaTestBroker, topic_name: str) -> None:
    kafka.create_topic(topic_name)
    kafka.produce(topic_name, [("a", None), ("b", b"\x00\x01", {"h": b"1"})])
    records = kafka.consume_all(topic_name, 2)
    assert [(r.key, r.value) for r in records] == [(b"a", None), (b"b", b"\x00\x01")]
    assert records[1].headers == (("h", b"1"),)


def test_broker_runs_with_test_settings(kafka: KafkaTestBroker) -> None:
    if kafka.external:
        pytest.skip("settings of an external broker are not ours")
    assert kafka.cluster is not None
    ids = describe_cluster_ids(kafka.bootstrap_servers)
    assert ids == [1]
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = kafka.admin().describe_configs([res])[res].result(timeout=10)
    assert configs["auto.create.topics.enable"].value == "false"
    assert configs["group.initial.rebalance.delay.ms"].value == "0"


def test_consumer_group_commits_offsets(kafka: KafkaTestBroker, topic_name: str) -> None:
    kafka.create_topic(topic_name, partitions=2)
    kafka.produce(topic_name, [(f"k{i}", f"v{i}") for i in range(20)])
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = kafka.consumer({"group.id": group})
    consumer.subscribe([topic_name])
    seen: list[bytes | None] = []
    try:

        def got_all() -> bool:
            for msg in consumer.consume(num_messages=100, timeout=0.2):
                assert msg.error() is None, msg.error()
                seen.append(msg.value())
            return len(seen) >= 20

        wait_until(got_all, timeout=30, interval=0, message=lambda: f"consumed {len(seen)}/20")
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    committed = kafka.committed_offsets(group, topic_name)
    assert sum(committed.values()) == 20


def test_transactions_hide_aborted_and_commit_offsets(
    kafka: KafkaTestBroker, unique_topic: Callable[[str], str]
) -> None:
    src, dst = unique_topic("src"), unique_topic("dst")
    kafka.create_topic(src)
    kafka.create_topic(dst)
    kafka.produce(src, [f"in{i}" for i in range(5)])
    group = f"g-{uuid.uuid4().hex[:8]}"

    producer = Producer(
        kafka.config(**{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}", "linger.ms": 1})
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(dst, value=f"aborted{i}".encode())
    producer.abort_transaction(30)

    consumer: Consumer = kafka.consumer({"group.id": group})
    consumer.assign([TopicPartition(src, 0, 0)])
    inputs: list[Message] = []

    def read_inputs() -> bool:
        inputs.extend(consumer.consume(10, 0.2))
        return len(inputs) >= 5

    try:
        wait_until(read_inputs, timeout=30, interval=0)
        producer.begin_transaction()
        for msg in inputs:
            producer.produce(dst, value=b"out-" + (msg.value() or b""))
        producer.send_offsets_to_transaction(
            [TopicPartition(src, 0, (inputs[-1].offset() or 0) + 1)],
            consumer.consumer_group_metadata(),
            30,
        )
        producer.commit_transaction(30)
    finally:
        consumer.close()

    records = kafka.consume_all(dst, 5)
    assert [r.value for r in records] == [f"out-in{i}".encode() for i in range(5)]
    assert kafka.committed_offsets(group, src) == {0: 5}


# -- lifecycle: no JVM may outlive its owner ------------------------------------------------


def test_start_stop_leaves_no_jvm(tmp_path: Path) -> None:
    cluster = KafkaCluster(nodes=1, run_dir=tmp_path / "run")
    cluster.start()
    try:
        pids = dict(cluster.pids)
        assert len(pids) == 1 and all(pid_alive(p) for p in pids.values())
        assert describe_cluster_ids(cluster.bootstrap_servers) == [1]
    finally:
        cluster.stop()
    assert not any(pid_alive(p) for p in pids.values())
    assert cluster.pids == {}
    assert not (tmp_path / "run" / "state.json").exists()


def test_broker_that_cannot_start_fails_fast_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        free = kc.find_free_ports(1)[0]
        monkeypatch.setattr(kc, "find_free_ports", lambda n, host="": [taken, free])
        cluster = KafkaCluster(nodes=1, run_dir=tmp_path / "run", startup_timeout=60)
        with pytest.raises(kc.KafkaToolError) as info:
            cluster.start()
    msg = str(info.value)
    assert "JVM of node 1 exited" in msg
    assert "Address already in use" in msg
    assert cluster.pids == {}


def test_jvm_dies_when_owning_python_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed pytest cannot run atexit; PR_SET_PDEATHSIG must still reap the JVM."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from tools.kafka_cluster import KafkaCluster
        c = KafkaCluster(nodes=1, run_dir=__import__("pathlib").Path({str(tmp_path / "run")!r}))
        c.start()
        print(c.pids[1], flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip().isdigit(), f"child did not start a broker: {line!r}"
        jvm = int(line)
        assert pid_alive(jvm)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    wait_until(lambda: not pid_alive(jvm), timeout=30, message=f"JVM {jvm} outlived its parent")


# -- 3-node cluster -------------------------------------------------------------------------


@pytest.mark.cluster
def test_cluster_lists_three_brokers(kafka_cluster: KafkaTestBroker) -> None:
    assert describe_cluster_ids(kafka_cluster.bootstrap_servers) == [1, 2, 3]
    res = ConfigResource(ResourceType.BROKER, "2")
    configs = kafka_cluster.admin().describe_configs([res])[res].result(timeout=10)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["default.replication.factor"].value == "3"


@pytest.mark.cluster
def test_replicated_records_survive_sigkill_of_leader(
    kafka_cluster: KafkaTestBroker, topic_name: str
) -> None:
    cluster = kafka_cluster.cluster
    assert cluster is not None
    kafka_cluster.create_topic(topic_name, partitions=3, replication=3)
    kafka_cluster.wait_for_isr(topic_name, [1, 2, 3])
    n = 500
    kafka_cluster.produce(topic_name, [(f"k{i}", f"{i}") for i in range(n)])  # acks=all

    victim = kafka_cluster.leader_of(topic_name, 0)
    cluster.kill_node(victim)
    assert not cluster.is_running(victim)

    records = kafka_cluster.consume_all(topic_name, n, timeout=60)
    assert sorted(int(r.value or b"") for r in records) == list(range(n))

    # min ISR 2 of 3: acks=all writes go on while one node is down.
    kafka_cluster.produce(topic_name, [f"{i}" for i in range(n, n + 100)], timeout=60)
    records = kafka_cluster.consume_all(topic_name, n + 100, timeout=60)
    assert sorted(int(r.value or b"") for r in records) == list(range(n + 100))
    assert victim not in {p.leader for p in kafka_cluster.topic_partitions(topic_name).values()}


@pytest.mark.cluster
def test_stopped_node_restarts_and_catches_up(
    kafka_cluster: KafkaTestBroker, topic_name: str
) -> None:
    cluster = kafka_cluster.cluster
    assert cluster is not None
    kafka_cluster.create_topic(topic_name, partitions=2, replication=3)
    kafka_cluster.wait_for_isr(topic_name, [1, 2, 3])
    kafka_cluster.produce(topic_name, [f"a{i}" for i in range(100)])
    ports = (cluster.node_spec(3).broker_port, cluster.node_spec(3).controller_port)

    assert cluster.stop_node(3) is not None  # SIGTERM: controlled shutdown
    kafka_cluster.wait_for_isr(topic_name, [1, 2])
    kafka_cluster.produce(topic_name, [f"b{i}" for i in range(100)])

    cluster.restart_node(3)
    assert (cluster.node_spec(3).broker_port, cluster.node_spec(3).controller_port) == ports
    assert describe_cluster_ids(cluster.node_bootstrap(3)) == [1, 2, 3]
    kafka_cluster.wait_for_isr(topic_name, [1, 2, 3])  # node 3 caught up on the b* records
    assert len(kafka_cluster.consume_all(topic_name, 200, timeout=60)) == 200


@pytest.mark.cluster
def test_unknown_topic_is_not_auto_created(kafka_cluster: KafkaTestBroker, topic_name: str) -> None:
    consumer = kafka_cluster.consumer()
    try:
        md = consumer.list_topics(topic_name, timeout=10)
        err = md.topics[topic_name].error
        assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        consumer.close()
    assert topic_name not in kafka_cluster.admin().list_topics(timeout=10).topics
