"""Stream-table and stream-global-table joins in the TestDriver (Kafka Streams' semantics;
tests/conformance checks them record for record against Kafka Streams itself)."""

from __future__ import annotations

import pytest

from fluvial import Joined, JoinWindows, StreamsBuilder, TestDriver, TopologyError


def enrich(left: bool, table_ops: str = "") -> StreamsBuilder:
    builder = StreamsBuilder(default_value_serde="json")
    customers = builder.table("customers")
    if "filter" in table_ops:
        customers = customers.filter(lambda k, v: v["tier"] == "gold")
    if "map" in table_ops:
        customers = customers.map_values(lambda v: {"tier": v["tier"].upper()})
    orders = builder.stream("orders")
    join = orders.left_join if left else orders.join
    join(customers, lambda o, c: {"item": o["item"], "tier": c and c["tier"]}).to("out")
    return builder


def run(builder: StreamsBuilder, steps: list[tuple[str, str | None, object, int]],
        ) -> tuple[list[tuple[object, object, int]], int]:
    with TestDriver(builder.build()) as driver:
        inputs = {t: driver.input_topic(t) for t in ("orders", "customers")}
        for topic, key, value, ts in steps:
            inputs[topic].pipe(value, key=key, timestamp=ts)
        out = [(r.key, r.value, r.timestamp) for r in driver.output_topic("out").read_records()]
        return out, driver.dropped_records


STEPS: list[tuple[str, str | None, object, int]] = [
    ("orders", "c1", {"item": "tea"}, 10),         # no customer yet
    ("customers", "c1", {"tier": "gold"}, 20),     # a table update emits nothing
    ("orders", "c1", {"item": "jam"}, 15),         # joins, keeps its own timestamp
    ("customers", "c1", {"tier": "tin"}, 30),
    ("orders", "c1", {"item": "oil"}, 40),
    ("orders", None, {"item": "pen"}, 41),         # null key
    ("orders", "c1", None, 42),                    # null value: always dropped
    ("customers", "c1", None, 50),                 # the customer leaves
    ("orders", "c1", {"item": "cup"}, 60),
]


def test_inner_join_emits_only_stream_records_whose_key_the_table_holds() -> None:
    out, dropped = run(enrich(left=False), STEPS)
    assert out == [("c1", {"item": "jam", "tier": "gold"}, 15),
                   ("c1", {"item": "oil", "tier": "tin"}, 40)]
    assert dropped == 2  # the null key and the null value


def test_left_join_emits_every_stream_record_with_a_value() -> None:
    out, dropped = run(enrich(left=True), STEPS)
    assert out == [("c1", {"item": "tea", "tier": None}, 10),
                   ("c1", {"item": "jam", "tier": "gold"}, 15),
                   ("c1", {"item": "oil", "tier": "tin"}, 40),
                   (None, {"item": "pen", "tier": None}, 41),  # KIP-962: joins nothing
                   ("c1", {"item": "cup", "tier": None}, 60)]
    assert dropped == 1


def test_a_filtered_and_mapped_table_is_read_through_value_getters_without_a_store() -> None:
    builder = enrich(left=True, table_ops="filter,map")
    topology = builder.build()
    assert list(topology.stores) == ["customers-STATE-STORE-0000000000"]  # the source's only
    out, _ = run(builder, STEPS)
    assert [v["tier"] for _, v, _ in out] == [None, "GOLD", None, None, None]


def test_a_join_after_a_key_change_reads_a_repartition_topic() -> None:
    builder = StreamsBuilder()
    customers = builder.table("customers")
    orders = builder.stream("orders").select_key(lambda k, v: v["customer"])
    orders.join(customers, lambda o, c: [o["item"], c["tier"]],
                Joined(name="by-customer")).to("out")
    topology = builder.build()
    assert [s.topic for s in topology.repartition_topics()] == ["by-customer-repartition"]
    with TestDriver(topology) as driver:
        driver.input_topic("customers").pipe({"tier": "gold"}, key="c7", timestamp=1)
        driver.input_topic("orders").pipe({"customer": "c7", "item": "tea"}, key="o1",
                                          timestamp=2)
        assert driver.output_topic("out").read_key_values() == [("c7", ["tea", "gold"])]


def test_a_global_table_is_looked_up_by_the_key_mapper() -> None:
    builder = StreamsBuilder()
    products = builder.global_table("products")
    orders = builder.stream("orders")
    orders.join(products, lambda o, p: p["name"],
                key_mapper=lambda k, v: v["product"]).to("inner")
    orders.left_join(products, lambda o, p: p and p["name"],
                     key_mapper=lambda k, v: v["product"]).to("left")
    with TestDriver(builder.build()) as driver:
        driver.input_topic("products").pipe({"name": "tea"}, key="p1", timestamp=1)
        orders_in = driver.input_topic("orders")
        orders_in.pipe({"product": "p1"}, key="o1", timestamp=2)
        orders_in.pipe({"product": "p2"}, key="o2", timestamp=3)
        orders_in.pipe({"product": None}, key="o3", timestamp=4)
        assert driver.output_topic("inner").read_key_values() == [("o1", "tea")]
        assert driver.output_topic("left").read_key_values() == [
            ("o1", "tea"), ("o2", None), ("o3", None)]
        assert driver.dropped_records == 1  # o3 in the inner join: a null lookup key


def test_a_global_table_join_needs_a_key_mapper_and_a_table_join_refuses_one() -> None:
    builder = StreamsBuilder()
    orders = builder.stream("orders")
    with pytest.raises(TopologyError, match="key_mapper"):
        orders.join(builder.global_table("products"), lambda o, p: p)
    with pytest.raises(TopologyError, match="key_mapper"):
        orders.join(builder.table("customers"), lambda o, c: c, key_mapper=lambda k, v: k)


def test_describe_shows_the_join_reading_the_tables_store() -> None:
    text = enrich(left=False).build().describe()
    assert ("Processor: KSTREAM-JOIN-0000000004 (stores: [customers-STATE-STORE-0000000000])"
            in text)
    assert text.count("Sub-topology:") == 1  # the join's inputs are co-partitioned


def test_a_stream_joined_with_a_table_of_itself_sees_the_table_at_each_record() -> None:
    """A poll batch of several records: a join below the same source as its table reads the
    table as each record found it (per-record semantics), not as the whole batch left it."""
    from fluvial.io.embedded.message import EmbeddedMessage
    from fluvial.processing.errors import ErrorPolicy
    from fluvial.processing.processor import CollectorBase
    from fluvial.processing.task import Task
    from fluvial.state.stack import open_store

    b = StreamsBuilder(default_value_serde="string")
    events = b.stream("events")
    latest = events.filter(lambda k, v: v.startswith("set:")).to_table(materialized="latest")
    events.filter(lambda k, v: v.startswith("get:")).left_join(
        latest, lambda g, s: f"{g}={s}").to("out")
    topology = b.build()
    sent: list[bytes] = []

    class Collector(CollectorBase):
        def send(self, topic, key, value, timestamp, headers, partition):  # type: ignore[no-untyped-def]
            sent.append(value)

    st = topology.subtopologies[0]
    stores = {spec.name: open_store(spec, None, None) for spec in st.stores}
    task = Task("0_0", st, 0, "app", stores, Collector(), ErrorPolicy(), lambda: 0)
    values = [b"get:1", b"set:a", b"get:2", b"set:b", b"get:3"]
    task.process("events", [EmbeddedMessage("events", 0, i, b"k", v, i, None)
                            for i, v in enumerate(values)])
    assert sent == [b"get:1=None", b"get:2=set:a", b"get:3=set:b"]


def table_join(kind: str, materialized: str | None = None) -> StreamsBuilder:
    builder = StreamsBuilder(default_value_serde="string")
    left, right = builder.table("left"), builder.table("right")
    join = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    join(right, lambda lv, rv: f"{lv}+{rv}", materialized).to_stream().to("out")
    return builder


TABLE_STEPS = [("left", "k", "L1", 10), ("right", "k", "R1", 5), ("left", "k", "L2", 20),
               ("right", "k", None, 30), ("left", "k", None, 40)]


def run_tables(builder: StreamsBuilder) -> list[tuple[object, int]]:
    with TestDriver(builder.build()) as driver:
        for topic, key, value, ts in TABLE_STEPS:
            driver.input_topic(topic).pipe(value, key=key, timestamp=ts)
        return [(r.value, r.timestamp) for r in driver.output_topic("out").read_records()]


@pytest.mark.parametrize(("kind", "expected"), [
    # either side updates the result; its timestamp is the larger side's
    ("inner", [("L1+R1", 10), ("L2+R1", 20), (None, 30)]),
    ("left", [("L1+None", 10), ("L1+R1", 10), ("L2+R1", 20), ("L2+None", 30), (None, 40)]),
    ("outer", [("L1+None", 10), ("L1+R1", 10), ("L2+R1", 20), ("L2+None", 30), (None, 40)]),
])
def test_table_table_joins_update_from_both_sides(kind: str,
                                                  expected: list[tuple[object, int]]) -> None:
    assert run_tables(table_join(kind)) == expected
    assert run_tables(table_join(kind, materialized="joined")) == expected


def test_an_outer_join_keeps_a_right_side_alone() -> None:
    builder = table_join("outer")
    with TestDriver(builder.build()) as driver:
        driver.input_topic("right").pipe("R1", key="k", timestamp=1)
        driver.input_topic("right").pipe(None, key="k", timestamp=2)
        assert driver.output_topic("out").read_values() == ["None+R1", None]


def test_a_materialized_table_join_is_queryable_and_an_unmaterialized_one_has_no_store() -> None:
    assert "joined" in table_join("inner", materialized="joined").build().stores
    stores = table_join("inner").build().stores
    assert not any(name.startswith("KTABLE-MERGE") for name in stores)
    with TestDriver(table_join("left", materialized="joined").build()) as driver:
        driver.input_topic("left").pipe("L1", key="k", timestamp=1)
        driver.input_topic("right").pipe("R1", key="k", timestamp=2)
        assert driver.store("joined").get("k") == "L1+R1"


def stream_join(kind: str, windows: JoinWindows) -> StreamsBuilder:
    builder = StreamsBuilder(default_value_serde="string")
    left, right = builder.stream("left"), builder.stream("right")
    join = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    join(right, lambda lv, rv: f"{lv}+{rv}", windows).to("out")
    return builder


def run_streams(builder: StreamsBuilder, steps: list[tuple[str, str | None, str, int]],
                ) -> list[tuple[object, object, int]]:
    with TestDriver(builder.build()) as driver:
        for topic, key, value, ts in steps:
            driver.input_topic(topic).pipe(value, key=key, timestamp=ts)
        return [(r.key, r.value, r.timestamp) for r in driver.output_topic("out").read_records()]


WINDOW = JoinWindows.of_time_difference_and_grace(10, 5)
STREAM_STEPS: list[tuple[str, str | None, str, int]] = [
    ("left", "k", "A", 100),
    ("right", "k", "X", 105),   # joins A, at the later timestamp
    ("right", "k", "Y", 95),    # joins A too (within 10 ms before)
    ("left", "k", "B", 200),    # nothing to join: waits for its window to close
    ("right", "j", "Z", 214),   # 200 + 10 + 5 = 215: B's window is still open
    ("right", "j", "W", 216),   # now it is closed: B is emitted unjoined, at its own time
]


def test_stream_inner_join_pairs_records_within_the_window() -> None:
    assert run_streams(stream_join("inner", WINDOW), STREAM_STEPS) == [
        ("k", "A+X", 105), ("k", "A+Y", 100)]


def test_stream_left_join_emits_an_unmatched_record_once_its_window_closes() -> None:
    assert run_streams(stream_join("left", WINDOW), STREAM_STEPS) == [
        ("k", "A+X", 105), ("k", "A+Y", 100), ("k", "B+None", 200)]


def test_stream_outer_join_emits_unmatched_records_of_both_sides() -> None:
    out = run_streams(stream_join("outer", WINDOW), [*STREAM_STEPS, ("left", "i", "C", 300)])
    assert out == [("k", "A+X", 105), ("k", "A+Y", 100), ("k", "B+None", 200),
                   ("j", "None+Z", 214), ("j", "None+W", 216)]


def test_legacy_join_windows_emit_an_unmatched_record_at_once() -> None:
    # JoinWindows.of, as Kafka Streams' deprecated one (ksqlDB's WITHIN without GRACE):
    # A goes out unjoined on arrival, then again with each later match
    out = run_streams(stream_join("outer", JoinWindows.of(10)), STREAM_STEPS)
    assert out == [("k", "A+None", 100), ("k", "A+X", 105), ("k", "A+Y", 100),
                   ("k", "B+None", 200), ("j", "None+Z", 214), ("j", "None+W", 216)]


def test_before_and_after_make_the_window_asymmetric() -> None:
    only_later = WINDOW.before(0)  # the right record may only come after the left one
    assert run_streams(stream_join("inner", only_later), STREAM_STEPS) == [("k", "A+X", 105)]


def test_a_stream_joins_windows_need_join_windows() -> None:
    builder = StreamsBuilder()
    with pytest.raises(TopologyError, match="JoinWindows"):
        builder.stream("a").join(builder.stream("b"), lambda x, y: x)


def test_each_side_keeps_duplicates_in_a_window_store_with_a_delete_only_changelog() -> None:
    topology = stream_join("left", WINDOW).build()
    window_stores = [s for s in topology.stores.values() if s.kind == "window"]
    assert len(window_stores) == 2
    for spec in window_stores:
        assert spec.retain_duplicates and spec.retention_ms == 25 and spec.window_size_ms == 20
        assert spec.changelog_topic_config()["cleanup.policy"] == "delete"
    # the same record twice joins twice
    steps = [("left", "k", "A", 1), ("left", "k", "A", 1), ("right", "k", "X", 2)]
    assert run_streams(stream_join("inner", WINDOW), steps) == [("k", "A+X", 2)] * 2


# Kafka Streams 4.1.2's describe() of the same topologies (printed by its own DSL)
KS_STREAM_TABLE_REKEYED = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000007 (topics: [KSTREAM-KEY-SELECT-0000000004-repartition])
      --> KSTREAM-LEFTJOIN-0000000008
    Processor: KSTREAM-LEFTJOIN-0000000008 (stores: [customers-STATE-STORE-0000000000])
      --> KSTREAM-SINK-0000000009
      <-- KSTREAM-SOURCE-0000000007
    Source: KSTREAM-SOURCE-0000000001 (topics: [customers])
      --> KTABLE-SOURCE-0000000002
    Sink: KSTREAM-SINK-0000000009 (topic: out)
      <-- KSTREAM-LEFTJOIN-0000000008
    Processor: KTABLE-SOURCE-0000000002 (stores: [customers-STATE-STORE-0000000000])
      --> none
      <-- KSTREAM-SOURCE-0000000001

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000003 (topics: [orders])
      --> KSTREAM-KEY-SELECT-0000000004
    Processor: KSTREAM-KEY-SELECT-0000000004 (stores: [])
      --> KSTREAM-FILTER-0000000006
      <-- KSTREAM-SOURCE-0000000003
    Processor: KSTREAM-FILTER-0000000006 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-KEY-SELECT-0000000004
    Sink: KSTREAM-SINK-0000000005 (topic: KSTREAM-KEY-SELECT-0000000004-repartition)
      <-- KSTREAM-FILTER-0000000006

"""
KS_STREAM_STREAM_LEFT = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [left])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [right])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [KSTREAM-OUTEROTHER-0000000005-store, {shared}])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [KSTREAM-JOINTHIS-0000000004-store, {shared}])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> KSTREAM-SINK-0000000007
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005
    Sink: KSTREAM-SINK-0000000007 (topic: out)
      <-- KSTREAM-MERGE-0000000006

"""


def test_describe_is_kafka_streams_text_for_stream_table_and_stream_stream_joins() -> None:
    def first(x: object, _y: object) -> object:
        return x

    builder = StreamsBuilder()
    table = builder.table("customers")
    builder.stream("orders").select_key(lambda k, v: v).left_join(table, first).to("out")
    assert builder.build().describe() == KS_STREAM_TABLE_REKEYED
    builder = StreamsBuilder()
    left, right = builder.stream("left"), builder.stream("right")
    left.left_join(right, first, JoinWindows.of_time_difference_and_grace(10, 5)).to("out")
    shared = "KSTREAM-OUTERSHARED-0000000004-store"  # the store of unmatched records
    assert builder.build().describe() == KS_STREAM_STREAM_LEFT.format(shared=shared)
