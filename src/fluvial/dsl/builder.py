"""StreamsBuilder: where a topology starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import Materialized, as_materialized
from fluvial.io.serdes import Serde, for_topic, resolve
from fluvial.processing.table import Forwarding, Materialize
from fluvial.processing.timestamps import Extractor, as_extractor
from fluvial.topology.builder import TopologyBuilder
from fluvial.topology.nodes import GlobalStoreSpec, StoreSpec
from fluvial.topology.topology import Topology

if TYPE_CHECKING:
    from fluvial.dsl.stream import Stream
    from fluvial.dsl.table import GlobalTable, Table


class StreamsBuilder:
    """Builds a topology with Kafka Streams' DSL.

    Serdes left unset anywhere fall back to ``default_key_serde`` (string) and
    ``default_value_serde`` (JSON).
    """

    def __init__(self, default_key_serde: Serde | str = "string",
                 default_value_serde: Serde | str = "json") -> None:
        self.graph = TopologyBuilder()
        self.default_key_serde = resolve(default_key_serde)
        self.default_value_serde = resolve(default_value_serde)

    def key_serde(self, serde: Serde | str | None) -> Serde:
        return resolve(serde, self.default_key_serde)

    def value_serde(self, serde: Serde | str | None) -> Serde:
        return resolve(serde, self.default_value_serde)

    @staticmethod
    def _on_topic(topic: str, key_serde: Serde, value_serde: Serde) -> tuple[Serde, Serde]:
        """Serdes bound to the topic they read (a registry serde's subject follows it); the
        stream carries them on, to its stores and repartition topics."""
        return for_topic(key_serde, topic, True), for_topic(value_serde, topic, False)

    def stream(self, topics: str | Sequence[str], key_serde: Serde | str | None = None,
               value_serde: Serde | str | None = None, name: str | None = None,
               timestamp_extractor: Extractor | None = None) -> Stream:
        """``timestamp_extractor``: where event time comes from (``ValueFieldTimestamp``,
        ``WallClockTimestamp``, or ``fn(record, partition_time) -> ms``); default: the Kafka
        record's timestamp."""
        from fluvial.dsl.stream import Stream

        topic_list = [topics] if isinstance(topics, str) else list(topics)
        ks, vs = self.key_serde(key_serde), self.value_serde(value_serde)
        if len(topic_list) == 1:
            ks, vs = self._on_topic(topic_list[0], ks, vs)
        node = self.graph.add_source(name or self.graph.new_name("KSTREAM-SOURCE-"), topic_list,
                                     ks, vs, timestamp_extractor=as_extractor(timestamp_extractor))
        return Stream(self, node, ks, vs)

    def table(self, topic: str, key_serde: Serde | str | None = None,
              value_serde: Serde | str | None = None,
              materialized: Materialized | str | None = None,
              name: str | None = None, timestamp_extractor: Extractor | None = None) -> Table:
        from fluvial.dsl.table import Table

        ks, vs = self._on_topic(topic, self.key_serde(key_serde), self.value_serde(value_serde))
        # names drawn in Kafka Streams' order: store, source, table source
        store = self.add_store(as_materialized(materialized), ks, vs,
                               f"{topic}-STATE-STORE-")
        source = self.graph.add_source(name or self.graph.new_name("KSTREAM-SOURCE-"), [topic],
                                       ks, vs, timestamp_extractor=as_extractor(
                                           timestamp_extractor))
        table_source = f"{name}-table-source" if name else self.graph.new_name("KTABLE-SOURCE-")
        forwarding = Forwarding(named=as_materialized(materialized).name is not None)
        node = self.graph.add_processor(table_source, lambda: Materialize(store, forwarding),
                                        [source], [store])
        return Table(self, node, ks, vs, store, forwarding=forwarding)

    def global_table(self, topic: str, key_serde: Serde | str | None = None,
                     value_serde: Serde | str | None = None,
                     materialized: Materialized | str | None = None) -> GlobalTable:
        """A table of the whole topic on every instance, loaded before processing starts.

        Its source topic is its changelog, so it gets no changelog topic of its own.
        """
        from fluvial.dsl.table import GlobalTable

        ks, vs = self._on_topic(topic, self.key_serde(key_serde), self.value_serde(value_serde))
        m = as_materialized(materialized)
        name = m.name or self.graph.new_name(f"{topic}-STATE-STORE-")
        spec = StoreSpec(name, self.key_serde(m.key_serde or ks),
                         self.value_serde(m.value_serde or vs), persistent=m.persistent,
                         logged=False)
        source = self.graph.new_name("KSTREAM-SOURCE-")
        processor = self.graph.new_name("KTABLE-SOURCE-")
        self.graph.add_global_store(GlobalStoreSpec(spec, topic, ks, vs, source, processor))
        return GlobalTable(name, topic)

    def add_state_store(self, name: str, key_serde: Serde | str | None = None,
                        value_serde: Serde | str | None = None, persistent: bool = True,
                        logging: bool = True) -> str:
        """A store for ``Stream.process`` processors; values are kept as given (no timestamp)."""
        return self.graph.add_store(StoreSpec(name, self.key_serde(key_serde),
                                              self.value_serde(value_serde), timestamped=False,
                                              persistent=persistent, logged=logging))

    def add_store(self, m: Materialized, key_serde: Serde, value_serde: Serde,
                  prefix: str, **fields: Any) -> str:
        """``fields``: more ``StoreSpec`` fields (``kind``, ``retention_ms``, ...)."""
        name = m.name or self.graph.new_name(prefix)
        return self.graph.add_store(StoreSpec(
            name, resolve(m.key_serde, key_serde), resolve(m.value_serde, value_serde),
            persistent=m.persistent, logged=m.logging, **fields))

    def build(self) -> Topology:
        return self.graph.build()
