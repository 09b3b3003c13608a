"""Generated and user-given names of nodes, stores and internal topics; describe()."""

from __future__ import annotations

from fluvial import Grouped, Materialized, Repartitioned, StreamsBuilder, TestDriver

WORDCOUNT = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: counts-store-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [counts-store-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts-store])
      --> KTABLE-TOSTREAM-0000000007
      <-- KSTREAM-SOURCE-0000000006
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000008 (topic: streams-wordcount-output)
      <-- KTABLE-TOSTREAM-0000000007

"""


def _wordcount(builder: StreamsBuilder) -> None:
    (builder.stream("streams-plaintext-input")
     .flat_map_values(lambda line: line.lower().split())
     .group_by(lambda _, word: word)
     .count(Materialized.as_("counts-store"))
     .to_stream()
     .to("streams-wordcount-output", value_serde="int64"))


def test_wordcount_describe_matches_kafka_streams_exactly() -> None:
    b = StreamsBuilder()
    _wordcount(b)
    topology = b.build()
    assert topology.describe() == WORDCOUNT
    assert str(topology) == WORDCOUNT


def test_wordcount_runs() -> None:
    b = StreamsBuilder()
    _wordcount(b)
    with TestDriver(b.build(), application_id="wc") as d:
        d.input_topic("streams-plaintext-input").pipe_list(["all streams lead to kafka",
                                                            "hello kafka streams"])
        counts = d.output_topic("streams-wordcount-output").read_key_values_to_map()
        assert counts == {"all": 1, "streams": 2, "lead": 1, "to": 1, "kafka": 2, "hello": 1}
        assert d.read("wc-counts-store-repartition")  # went through the internal topic


def test_generated_store_name_names_the_repartition_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by(lambda k, v: v).count()
    topology = b.build()
    # store (2) is named before the aggregate (3), then sink (4), filter (5), source (6)
    assert list(topology.stores) == ["KSTREAM-AGGREGATE-STATE-STORE-0000000002"]
    assert [s.topic for s in topology.repartition_topics()] == [
        "KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition"]
    assert set(topology.nodes) == {
        "KSTREAM-SOURCE-0000000000", "KSTREAM-KEY-SELECT-0000000001",
        "KSTREAM-AGGREGATE-0000000003", "KSTREAM-SINK-0000000004", "KSTREAM-FILTER-0000000005",
        "KSTREAM-SOURCE-0000000006"}


def test_reduce_generated_names() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by_key().reduce(lambda a, v: v)
    topology = b.build()
    assert list(topology.stores) == ["KSTREAM-REDUCE-STATE-STORE-0000000001"]
    assert "KSTREAM-REDUCE-0000000002" in topology.nodes


def test_user_names_for_processors_stores_and_topics() -> None:
    b = StreamsBuilder()
    (b.stream("in", name="read-input")
     .filter(lambda k, v: True, name="keep-all")
     .map_values(lambda v: v, name="identity")
     .select_key(lambda k, v: v, name="rekey")
     .group_by_key(Grouped(name="by-value"))
     .count(Materialized.as_("value-counts"), name="count-values")
     .to_stream(name="changes")
     .to("out", name="write-output"))
    topology = b.build()
    assert {"read-input", "keep-all", "identity", "rekey", "count-values", "changes",
            "write-output"} <= set(topology.nodes)
    assert list(topology.stores) == ["value-counts"]
    assert [s.topic for s in topology.repartition_topics()] == ["by-value-repartition"]
    assert topology.stores["value-counts"].changelog_topic("app") == "app-value-counts-changelog"


def test_grouped_name_as_a_plain_string() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by(lambda k, v: v, "words").count("c")
    assert [s.topic for s in b.build().repartition_topics()] == ["words-repartition"]


def test_repartition_describe_matches_kafka_streams() -> None:
    b = StreamsBuilder()
    b.stream("customer-input").repartition(Repartitioned(partitions=10)).foreach(
        lambda k, v: None)
    assert b.build().describe() == """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [customer-input])
      --> KSTREAM-FILTER-0000000003
    Processor: KSTREAM-FILTER-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000002 (topic: KSTREAM-REPARTITION-0000000001-repartition)
      <-- KSTREAM-FILTER-0000000003

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000004 (topics: [KSTREAM-REPARTITION-0000000001-repartition])
      --> KSTREAM-FOREACH-0000000005
    Processor: KSTREAM-FOREACH-0000000005 (stores: [])
      --> none
      <-- KSTREAM-SOURCE-0000000004

"""


def test_repartitioned_name_names_the_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").repartition(Repartitioned(name="shuffle", partitions=4)).to("out")
    (sink,) = b.build().repartition_topics()
    assert (sink.topic, sink.partitions) == ("shuffle-repartition", 4)


def test_table_source_names() -> None:
    b = StreamsBuilder()
    b.table("users")
    topology = b.build()
    assert list(topology.stores) == ["users-STATE-STORE-0000000000"]
    assert set(topology.nodes) == {"KSTREAM-SOURCE-0000000001", "KTABLE-SOURCE-0000000002"}


def test_named_table_source() -> None:
    b = StreamsBuilder()
    b.table("users", name="users-in", materialized="users-store")
    topology = b.build()
    assert set(topology.nodes) == {"users-in", "users-in-table-source"}
    assert topology.nodes["users-in-table-source"].stores == ["users-store"]  # type: ignore[attr-defined]


def test_grouped_table_names() -> None:
    b = StreamsBuilder()
    b.table("users", materialized="u").group_by(lambda k, v: (v, k)).count()
    topology = b.build()
    # table source 0 and 1, select 2, store 3, sink 4, source 5, aggregate 6
    assert "KTABLE-SELECT-0000000002" in topology.nodes
    assert "KTABLE-AGGREGATE-STATE-STORE-0000000003" in topology.stores
    assert [s.topic for s in topology.repartition_topics()] == [
        "KTABLE-AGGREGATE-STATE-STORE-0000000003-repartition"]
    assert "KTABLE-AGGREGATE-0000000006" in topology.nodes


def test_grouped_table_reduce_names() -> None:
    b = StreamsBuilder()
    b.table("t", materialized="s").group_by(lambda k, v: (v, k)).reduce(max, min)
    assert "KTABLE-REDUCE-STATE-STORE-0000000003" in b.build().stores


def test_to_table_generated_names() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v).to_table()
    topology = b.build()
    assert list(topology.stores) == ["KSTREAM-TOTABLE-STATE-STORE-0000000003"]
    assert [s.topic for s in topology.repartition_topics()] == [
        "KSTREAM-TOTABLE-0000000002-repartition"]
    assert {"KSTREAM-TOTABLE-0000000002", "KSTREAM-SINK-0000000004",
            "KSTREAM-FILTER-0000000005", "KSTREAM-SOURCE-0000000006"} <= set(topology.nodes)


def test_to_table_repartition_is_named_after_the_processor() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v).to_table(name="latest")
    assert [s.topic for s in b.build().repartition_topics()] == ["latest-repartition"]


def test_describe_marks_leaves_and_sorts_branches() -> None:
    # larger sub-trees first, then by name (so the sink comes before z-log), as Kafka Streams
    b = StreamsBuilder()
    s = b.stream("in")
    s.foreach(lambda k, v: None, name="z-log")
    s.filter(lambda k, v: True, name="a-keep").to("out", name="sink")
    assert b.build().describe() == """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> a-keep, z-log
    Processor: a-keep (stores: [])
      --> sink
      <-- KSTREAM-SOURCE-0000000000
    Sink: sink (topic: out)
      <-- a-keep
    Processor: z-log (stores: [])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"""


def test_describe_global_store() -> None:
    b = StreamsBuilder()
    b.global_table("countries", materialized="c")
    assert b.build().describe() == """\
Topologies:
   Sub-topology: 0 for global store (will not generate tasks)
    Source: KSTREAM-SOURCE-0000000000 (topics: [countries])
      --> KTABLE-SOURCE-0000000001
    Processor: KTABLE-SOURCE-0000000001 (stores: [c])
      --> none
      <-- KSTREAM-SOURCE-0000000000
"""


def test_describe_topic_chooser_sink() -> None:
    def by_kind(key: object, value: object, record: object) -> str:
        return "x"

    b = StreamsBuilder()
    b.stream("in").to(by_kind)
    assert "Sink: KSTREAM-SINK-0000000001 (extractor class: " in b.build().describe()
    assert "by_kind" in b.build().describe()
