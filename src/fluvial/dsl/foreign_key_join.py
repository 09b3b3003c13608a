"""The DSL side of foreign-key table-table joins: the topology Kafka Streams builds for
``KTable#join(other, foreignKeyExtractor, joiner)`` (KIP-213), its internal topics named as
Kafka Streams names them. The processors are in ``fluvial.processing.fk_join``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.dsl.options import Materialized, as_materialized
from fluvial.dsl.table import Table
from fluvial.io.serdes import BytesSerde
from fluvial.processing import fk_join as fk
from fluvial.processing import table as ops
from fluvial.topology.nodes import StoreSpec


def foreign_key_join(left: Table, right: Table, foreign_key: Callable[[Any], Any],
            joiner: Callable[[Any, Any], Any], left_join: bool,
            materialized: Materialized | str | None, name: str | None) -> Table:
    """A foreign-key join (``fluvial.processing.fk_join``): subscriptions through
    ``<app>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic``, answers back through
    ``<app>-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic`` (``<app>-<name>-subscription-
    registration-topic`` and ``-response-topic`` where ``name`` is given)."""
    if not isinstance(right, Table):
        raise TypeError(f"a foreign-key join joins a Table, not {type(right).__name__}")
    b = left._builder
    graph = b.graph
    pk_serde, fk_serde = b.key_serde(left.key_serde), b.key_serde(right.key_serde)
    left_values, right_values = b.value_serde(left.value_serde), b.value_serde(right.value_serde)
    left_getter, right_getter = left.value_getter(), right.value_getter()

    def prefixed(part: str) -> str:
        return f"{name}-{part.lower()}" if name else graph.new_name(f"KTABLE-FK-JOIN-{part}-")

    extract = lambda _key, value: foreign_key(value)  # noqa: E731
    send = graph.add_processor(
        prefixed("SUBSCRIPTION-REGISTRATION"),
        lambda: fk.SubscriptionSend(extract, left_join, fk_serde, left_values), [left.node])
    registration = (f"{name}-subscription-registration-topic" if name else
                    f"{graph.new_name('KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-')}-topic")
    subscriptions = fk.SubscriptionSerde(pk_serde)
    graph.add_sink(graph.new_name("KTABLE-SINK-"), registration, [send], fk_serde,
                   subscriptions, internal=True)
    source = graph.add_source(graph.new_name("KTABLE-SOURCE-"), [registration], fk_serde,
                              subscriptions, internal=True)
    store = graph.add_store(StoreSpec(
        f"{name}-subscription-store" if name
        else graph.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-"),
        BytesSerde(), subscriptions))
    receive = graph.add_processor(
        prefixed("SUBSCRIPTION-PROCESSOR"),
        lambda: fk.SubscriptionReceive(store, right_getter, fk_serde, pk_serde), [source],
        [store, *right_getter.store_names])
    foreign = graph.add_processor(
        f"{name}-foreign-table-join" if name else prefixed("SUBSCRIPTION-PROCESSOR"),
        lambda: fk.ForeignTableChange(store, fk_serde, pk_serde), [right.node], [store])
    response = (f"{name}-subscription-response-topic" if name else
                f"{graph.new_name('KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-')}-topic")
    responses = fk.ResponseSerde(right_values)
    graph.add_sink(graph.new_name("KTABLE-SINK-"), response, [receive, foreign], pk_serde,
                   responses, internal=True)
    answers = graph.add_source(graph.new_name("KTABLE-SOURCE-"), [response], pk_serde,
                               responses, internal=True)
    resolve = graph.add_processor(
        prefixed("SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR"),
        lambda: fk.ResponseJoin(left_getter, joiner, left_join, left_values), [answers],
        list(left_getter.store_names))
    output = prefixed("OUTPUT")
    if materialized is None:
        node = graph.add_processor(output, fk.ResultChanges, [resolve])
        return Table(b, node, left.key_serde, None, None, getter=fk.Unreadable(node))
    m = as_materialized(materialized)
    out_store = b.add_store(m, b.key_serde(m.key_serde or left.key_serde),
                            b.value_serde(m.value_serde), "KTABLE-FK-JOIN-OUTPUT-STATE-STORE-")
    forwarding = ops.Forwarding(named=m.name is not None)
    node = graph.add_processor(output, lambda: ops.Materialize(out_store, forwarding),
                               [resolve], [out_store])
    return Table(b, node, left.key_serde, graph.stores[out_store].value_serde, out_store,
                 forwarding=forwarding)
