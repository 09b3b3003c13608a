"""Foreign-key table-table joins (KIP-213) in the TestDriver: results as Kafka Streams 4.x
emits them, record for record (value and timestamp)."""

from __future__ import annotations

from fluvial import StreamsBuilder, TestDriver


def fk_join(left_join: bool, materialized: str | None = None) -> StreamsBuilder:
    """orders (key: order id, value: "customer:item") joined to customers by customer."""
    builder = StreamsBuilder(default_value_serde="string")
    orders, customers = builder.table("orders"), builder.table("customers")
    join = orders.left_join if left_join else orders.join
    join(customers, lambda order, customer: f"{order}/{customer}", materialized,
         foreign_key=lambda order: order.split(":")[0] or None).to_stream().to("out")
    return builder


def run(builder: StreamsBuilder, steps: list[tuple[str, str, str | None, int]],
        ) -> list[tuple[object, object, int]]:
    with TestDriver(builder.build()) as driver:
        for topic, key, value, ts in steps:
            driver.input_topic(topic).pipe(value, key=key, timestamp=ts)
        return [(r.key, r.value, r.timestamp) for r in driver.output_topic("out").read_records()]


STEPS = [
    ("orders", "o1", "c1:pen", 10),       # no customer c1 yet
    ("customers", "c1", "Ann", 5),        # answers o1's subscription
    ("orders", "o1", "c1:ink", 20),       # same foreign key, new value
    ("orders", "o1", "c2:ink", 30),       # the foreign key moves to an absent customer
    ("customers", "c2", "Bob", 40),
    ("customers", "c1", "Ann2", 45),      # o1 no longer subscribes to c1: nothing
    ("orders", "o1", ":ink", 50),         # null foreign key
    ("orders", "o2", "c2:cap", 55),
    ("customers", "c2", None, 60),        # a right delete
    ("orders", "o2", None, 70),           # a left delete
]


def test_an_inner_foreign_key_join_follows_both_sides() -> None:
    assert run(fk_join(False), STEPS) == [
        ("o1", "c1:pen/Ann", 5),        # a right change: its own timestamp
        ("o1", "c1:ink/Ann", 20),
        ("o1", None, 30),               # moved to a key with no row: the old result goes
        ("o1", "c2:ink/Bob", 40),
        ("o1", None, 50),               # null foreign key: a tombstone for the result
        ("o2", "c2:cap/Bob", 55),
        ("o2", None, 60),
        ("o2", None, 70),               # delete: sent even though nothing joined
    ]


def test_a_left_foreign_key_join_keeps_every_left_row() -> None:
    assert run(fk_join(True), STEPS) == [
        ("o1", "c1:pen/None", 10),
        ("o1", "c1:pen/Ann", 5),
        ("o1", "c1:ink/Ann", 20),
        ("o1", "c2:ink/None", 30),
        ("o1", "c2:ink/Bob", 40),
        ("o1", ":ink/None", 50),
        ("o2", "c2:cap/Bob", 55),
        ("o2", "c2:cap/None", 60),
        ("o2", None, 70),
    ]


def test_a_materialized_result_is_queryable() -> None:
    with TestDriver(fk_join(True, "enriched").build()) as driver:
        driver.input_topic("customers").pipe("Ann", key="c1", timestamp=1)
        driver.input_topic("orders").pipe("c1:pen", key="o1", timestamp=2)
        assert driver.store("enriched").get("o1") == "c1:pen/Ann"


def test_internal_topics_are_named_as_kafka_streams_names_them() -> None:
    """Numbers as Kafka Streams 4.1's describe() of the same topology gives them, the
    nodes after the join's included."""
    described = fk_join(False).build().describe()
    for part in ("(topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)",
                 "(stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])",
                 "(topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)",
                 "Processor: KTABLE-FK-JOIN-OUTPUT-0000000018 ",
                 "Processor: KTABLE-TOSTREAM-0000000020 "):
        assert part in described


def test_an_answer_for_a_replaced_left_value_is_dropped() -> None:
    """The subscription-response hash: an answer computed for a left value that has since
    changed must not overwrite the result (Kafka Streams drops it by hash)."""
    from fluvial.io.serdes import StringSerde
    from fluvial.processing.fk_join import Response, ResponseSerde, value_hash

    builder = fk_join(True, "enriched")
    response_topic = next(t for t in builder.build().describe().splitlines()
                          if "SUBSCRIPTION-RESPONSE" in t and "Source:" in t)
    topic = "app-" + response_topic.split("[")[1].rstrip("])")
    answers = ResponseSerde(StringSerde())
    with TestDriver(builder.build(), application_id="app") as driver:
        driver.input_topic("orders").pipe("c1:pen", key="o1", timestamp=1)
        responses = driver.input_topic(topic, "string", answers)
        stale = Response(value_hash(b"c9:old"), "Zed", 0)
        responses.pipe(stale, key="o1", timestamp=2)
        assert driver.store("enriched").get("o1") == "c1:pen/None"
        responses.pipe(Response(value_hash(b"c1:pen"), "Ann", 0), key="o1", timestamp=3)
        assert driver.store("enriched").get("o1") == "c1:pen/Ann"


def test_a_named_join_names_its_parts_as_kafka_streams() -> None:
    builder = StreamsBuilder(default_value_serde="string")
    orders, customers = builder.table("orders"), builder.table("customers")
    orders.join(customers, lambda o, c: f"{o}/{c}", name="enrich",
                foreign_key=lambda o: o.split(":")[0]).to_stream().to("out")
    described = builder.build().describe()
    for part in ("(topic: enrich-subscription-registration-topic)",
                 "Processor: enrich-subscription-receive (stores: [enrich-subscription-store])",
                 "(topic: enrich-subscription-response-topic)",
                 "Processor: enrich-result ",
                 "Processor: KTABLE-TOSTREAM-0000000020 "):  # numbers drawn all the same
        assert part in described


def test_a_grouping_below_an_unmaterialized_join_subtracts_the_old_result() -> None:
    """A later aggregation needs the result's old values: the join's result then gets a
    store, as Kafka Streams materializes it, so a moved order leaves its old group."""
    builder = StreamsBuilder(default_value_serde="string")
    orders, customers = builder.table("orders"), builder.table("customers")
    (orders.join(customers, lambda order, customer: customer,
                 foreign_key=lambda order: order.split(":")[0])
        .group_by(lambda order, customer: (customer, order)).count("per-customer"))
    with TestDriver(builder.build()) as driver:
        driver.input_topic("customers").pipe("Ann", key="c1", timestamp=1)
        driver.input_topic("customers").pipe("Bob", key="c2", timestamp=2)
        driver.input_topic("orders").pipe("c1:pen", key="o1", timestamp=3)
        driver.input_topic("orders").pipe("c2:pen", key="o1", timestamp=4)
        counts = driver.store("per-customer")
        assert (counts.get("Ann"), counts.get("Bob")) == (0, 1)
