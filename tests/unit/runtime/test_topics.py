"""Start-up checks of topics: co-partitioning, internal topic sizes."""

from __future__ import annotations

import pytest

import fluvial
from fluvial.errors import TopologyError
from fluvial.io.embedded import EmbeddedAdmin, EmbeddedBroker
from fluvial.runtime import topics


def merged_counts() -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    left = builder.stream("left")
    right = builder.stream("right")
    left.merge(right).group_by_key().count(materialized="c")
    return builder.build()


def test_topics_read_together_must_be_co_partitioned() -> None:
    broker = EmbeddedBroker()
    broker.create_topic("left", 3)
    broker.create_topic("right", 2)
    with pytest.raises(TopologyError) as info:
        topics.plan(merged_counts(), "app", EmbeddedAdmin(broker), -1, None)
    message = str(info.value)
    assert "co-partitioning" in message
    assert "left (3)" in message and "right (2)" in message


def test_repartition_and_changelog_sizes_follow_their_inputs() -> None:
    broker = EmbeddedBroker()
    broker.create_topic("lines", 5)
    builder = fluvial.StreamsBuilder()
    builder.stream("lines").group_by(lambda k, v: v).count(materialized="counts")
    plan = topics.plan(builder.build(), "app", EmbeddedAdmin(broker), -1, "app-dlq")
    sizes = {spec.name: spec.partitions for spec in plan.internal}
    assert sizes == {"app-counts-repartition": 5, "app-counts-changelog": 5}
    changelog = next(s for s in plan.internal if s.name.endswith("changelog"))
    assert changelog.config["cleanup.policy"] == "compact"
    repartition = next(s for s in plan.internal if s.name.endswith("repartition"))
    assert repartition.config["retention.ms"] == "-1"  # deleted once committed, never by age
    assert [s.name for s in plan.extra] == ["app-dlq"]
    assert plan.task_counts == {0: 5, 1: 5}


def test_an_internal_topic_of_the_wrong_size_is_refused() -> None:
    broker = EmbeddedBroker()
    broker.create_topic("lines", 4)
    broker.create_topic("app-counts-repartition", 2)
    builder = fluvial.StreamsBuilder()
    builder.stream("lines").group_by(lambda k, v: v).count(materialized="counts")
    admin = EmbeddedAdmin(broker)
    plan = topics.plan(builder.build(), "app", admin, -1, None)
    with pytest.raises(TopologyError, match="has 2 partitions but the topology needs 4"):
        topics.ensure(admin, plan)


def two_in_two_out() -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    a = builder.stream("in-a")
    a.to("out-a")
    a.to(lambda key, value, record: f"out-{key}")  # a topic known per record: not checked
    builder.stream("in-b").to("out-b")
    return builder.build()


def test_every_missing_source_and_sink_topic_is_named_in_one_error() -> None:
    broker = EmbeddedBroker()
    broker.create_topic("in-a", 1)
    with pytest.raises(TopologyError) as info:
        topics.plan(two_in_two_out(), "app", EmbeddedAdmin(broker), -1, None)
    assert str(info.value) == (
        "application 'app': source topic(s) in-b and sink topic(s) out-a, out-b missing; "
        "create them first (fluvial creates only its internal topics on a Kafka cluster)")


def test_the_embedded_broker_gets_missing_source_and_sink_topics_created() -> None:
    broker = EmbeddedBroker(default_partitions=2)
    topics.plan(two_in_two_out(), "app", EmbeddedAdmin(broker), -1, None, create_missing=True)
    assert broker.partition_counts() == {"in-a": 2, "in-b": 2, "out-a": 2, "out-b": 2}


def enrich(rekey: bool) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    orders = builder.stream("orders")
    if rekey:
        orders = orders.select_key(lambda k, v: v["customer"])
    orders.join(builder.table("customers"), lambda o, c: {**o, **c}).to("enriched")
    return builder.build()


def test_a_join_of_topics_not_co_partitioned_names_both() -> None:
    broker = EmbeddedBroker()
    for topic, partitions in (("orders", 4), ("customers", 2), ("enriched", 1)):
        broker.create_topic(topic, partitions)
    with pytest.raises(TopologyError) as info:
        topics.plan(enrich(rekey=False), "app", EmbeddedAdmin(broker), -1, None)
    assert "co-partitioning" in str(info.value)
    assert "orders (4)" in str(info.value) and "customers (2)" in str(info.value)


def test_a_join_after_a_key_change_repartitions_to_the_tables_partitions() -> None:
    broker = EmbeddedBroker()
    for topic, partitions in (("orders", 4), ("customers", 2), ("enriched", 1)):
        broker.create_topic(topic, partitions)
    plan = topics.plan(enrich(rekey=True), "app", EmbeddedAdmin(broker), -1, None)
    repartition = [s for s in plan.internal if s.name.endswith("-repartition")]
    assert [(s.name, s.partitions) for s in repartition] == [
        ("app-KSTREAM-KEY-SELECT-0000000001-repartition", 2)]
    assert sorted(plan.task_counts.values()) == [2, 4]
