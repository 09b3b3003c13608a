"""The DSL side of foreign-key table-table joins: the topology Kafka Streams builds for
``KTable#join(other, foreignKeyExtractor, joiner)`` (KIP-213), its nodes, stores and
internal topics named and numbered as Kafka Streams names them. The processors are in
``fluvial.processing.fk_join``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import Materialized, as_materialized
from fluvial.dsl.table import Table
from fluvial.io.serdes import BytesSerde
from fluvial.processing import fk_join as fk
from fluvial.processing import table as ops
from fluvial.processing.getters import StoreGetter, ValueGetterSupplier
from fluvial.processing.processor import Processor
from fluvial.topology.nodes import StoreSpec

if TYPE_CHECKING:
    from fluvial.dsl.builder import StreamsBuilder


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

    def named(suffix: str, prefix: str) -> str:
        """Kafka Streams' name for a part: ``<name><suffix>``, else ``<prefix><n>``; a number
        is drawn either way, in Kafka Streams' order, so later names match too."""
        drawn = graph.new_name(prefix)
        return f"{name}{suffix}" if name else drawn

    # as Kafka Streams: a moved foreign key unsubscribes through the left's old value, and
    # both tables, materialized for it, forward no delete of a key they never held
    left._enable_sending_old_values(True)
    right._enable_sending_old_values(True)
    pk_serde, fk_serde = b.key_serde(left.key_serde), b.key_serde(right.key_serde)
    left_values, right_values = b.value_serde(left.value_serde), b.value_serde(right.value_serde)
    left_getter, right_getter = left.value_getter(), right.value_getter()
    subscriptions = fk.SubscriptionSerde(pk_serde)
    responses = fk.ResponseSerde(right_values)
    processor = "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-"

    registration = named("-subscription-registration",
                         "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-") + "-topic"
    send = graph.add_processor(
        named("-subscription-registration-processor", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-"),
        lambda: fk.SubscriptionSend(foreign_key, left_join, fk_serde, left_values), [left.node])
    graph.add_sink(named("-subscription-registration-sink", "KTABLE-SINK-"), registration,
                   [send], fk_serde, subscriptions, internal=True)
    subscribed = graph.add_source(named("-subscription-registration-source", "KTABLE-SOURCE-"),
                                  [registration], fk_serde, subscriptions, internal=True)
    store = graph.add_store(StoreSpec(
        named("-subscription-store", "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-"),
        BytesSerde(), subscriptions))
    receive = graph.add_processor(named("-subscription-receive", processor),
                                  lambda: fk.SubscriptionReceive(store, fk_serde, pk_serde),
                                  [subscribed], [store])
    answer = graph.add_processor(named("-subscription-join-foreign", processor),
                                 lambda: fk.SubscriptionJoin(right_getter), [receive],
                                 list(right_getter.store_names))
    foreign = graph.add_processor(named("-foreign-join-subscription", processor),
                                  lambda: fk.ForeignTableChange(store, fk_serde), [right.node],
                                  [store])

    response = named("-subscription-response", "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-") + "-topic"
    graph.add_sink(named("-subscription-response-sink", "KTABLE-SINK-"), response,
                   [answer, foreign], pk_serde, responses, internal=True,
                   partitioner=fk.response_partition)
    answered = graph.add_source(named("-subscription-response-source", "KTABLE-SOURCE-"),
                                [response], pk_serde, responses, internal=True)
    resolve = graph.add_processor(
        named("-subscription-response-resolver",
              "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-"),
        lambda: fk.ResponseJoin(left_getter, joiner, left_join, left_values), [answered],
        list(left_getter.store_names))

    output = named("-result", "KTABLE-FK-JOIN-OUTPUT-")
    m = as_materialized(materialized)
    own = replace(m, name=m.name or graph.new_name("KTABLE-FK-JOIN-OUTPUT-STATE-STORE-"))
    result: list[ForeignKeyJoinedTable] = []
    node = graph.add_processor(output, lambda: result[0].output_processor(), [resolve])
    result.append(ForeignKeyJoinedTable(b, node, left.key_serde, own, m.name is not None))
    return result[0]


class ForeignKeyJoinedTable(Table):
    """A foreign-key join's result. Its store (``store``: the user's name or the one drawn
    for it, and the user's serdes) is made at once where the user named it; otherwise the
    result is forwarded as it comes, with no old value, until a later operator needs old
    values or reads it: then it gets its store, as Kafka Streams materializes a store-less
    table then."""

    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Any,
                 store: Materialized, named: bool) -> None:
        assert store.name is not None
        super().__init__(builder, node, key_serde, None, None, getter=StoreGetter(store.name),
                         forwarding=ops.Forwarding(named=named))
        self._getter_reads = [self]
        self._store = store
        if named:
            self.materialize()

    def materialize(self) -> None:
        """Give the result its store (once)."""
        if self.store_name is not None:
            return
        b, m = self._builder, self._store
        self.store_name = b.add_store(m, b.key_serde(m.key_serde or self.key_serde),
                                      b.value_serde(m.value_serde), "")
        self.value_serde = b.graph.stores[self.store_name].value_serde
        b.graph.connect_store(self.node, self.store_name)

    def output_processor(self) -> Processor:
        if self.store_name is None:
            return fk.ResultChanges()
        return ops.Materialize(self.store_name, self._forwarding)

    def value_getter(self) -> ValueGetterSupplier:
        self.materialize()
        return super().value_getter()

    def _enable_sending_old_values(self, force: bool) -> bool:
        if force:
            self.materialize()
        return super()._enable_sending_old_values(force)
