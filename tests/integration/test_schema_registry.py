"""Avro, JSON Schema and Protobuf serdes against a real schema registry (Apicurio Registry, its
Confluent-compatible API), and an app on the real broker reading and writing Avro."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from examples.schema_registry import app as late_flights
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tests.integration.conftest import started_registry
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tools.schema_registry import SchemaRegistryServer

import fluvial
from fluvial.runtime.app import App
from fluvial.schema_registry import (
    AvroSerde,
    JsonSchemaSerde,
    ProtobufSerde,
    RecordNameStrategy,
    RegistryUnavailableError,
    TopicRecordNameStrategy,
    frame,
    schema_id_of,
)
from fluvial.serdes import SerdeError
from fluvial.sql.runner import prepare


def avro_schema(namespace: str, *extra_fields: dict[str, object]) -> str:
    fields = [{"name": "carrier", "type": "string"}, {"name": "delay", "type": "int"},
              *extra_fields]
    return json.dumps({"type": "record", "name": "Flight", "namespace": namespace,
                       "fields": fields})


V1 = avro_schema("demo")
#: V1 plus a field with a default: backward compatible
V2 = avro_schema("demo", {"name": "origin", "type": "string", "default": "?"})
#: V2 with the delay as a string: a reader of it cannot read V2's int delays
V2_BAD = V2.replace('{"name": "delay", "type": "int"}', '{"name": "delay", "type": "string"}')


@pytest.fixture
def client(schema_registry: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": schema_registry})


@pytest.fixture
def topic(unique_topic: Callable[[str], str]) -> str:
    """A topic name of this test's own (its subjects too); no broker topic is created."""
    return unique_topic("t")


def flight_message_type(package: str) -> type:
    """A protobuf message class built from a descriptor, as protoc would generate it."""
    fdp = descriptor_pb2.FileDescriptorProto(name=f"{package}/flight.proto", package=package,
                                             syntax="proto3")
    message = fdp.message_type.add(name="Flight")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    message.field.add(name="carrier", number=1, label=optional,
                      type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    message.field.add(name="delay", number=2, label=optional,
                      type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Flight"))


# -- round trips -----------------------------------------------------------------------------


def test_avro_round_trip_registers_under_the_topic_subject(
        client: SchemaRegistryClient, schema_registry: str, topic: str) -> None:
    serde = AvroSerde(schema_registry, V1).for_topic(topic, is_key=False)
    data = serde.serialize({"carrier": "AA", "delay": 12})
    assert data is not None
    registered = client.get_latest_version(f"{topic}-value")
    assert schema_id_of(data) == registered.schema_id
    assert json.loads(registered.schema.schema_str)["name"] == "Flight"
    # a fresh serde (empty caches) reads it through the registry
    assert AvroSerde(schema_registry).deserialize(data) == {"carrier": "AA", "delay": 12}


def test_json_schema_round_trip_and_validation(client: SchemaRegistryClient,
                                               schema_registry: str, topic: str) -> None:
    schema = json.dumps({"title": "Flight", "type": "object",
                         "properties": {"carrier": {"type": "string"},
                                        "delay": {"type": "integer"}},
                         "required": ["carrier", "delay"]})
    serde = JsonSchemaSerde(schema_registry, schema).for_topic(topic, is_key=True)
    data = serde.serialize({"carrier": "UA", "delay": -3})
    assert data is not None
    assert schema_id_of(data) == client.get_latest_version(f"{topic}-key").schema_id
    assert json.loads(data[5:]) == {"carrier": "UA", "delay": -3}
    assert JsonSchemaSerde(schema_registry).deserialize(data) == {"carrier": "UA", "delay": -3}
    with pytest.raises(SerdeError, match=rf"JSON Schema serde cannot write .* subject "
                                         rf"'{topic}-key': .*'late' is not of type 'integer'"):
        serde.serialize({"carrier": "UA", "delay": "late"})


def test_protobuf_round_trip_with_message_indexes(client: SchemaRegistryClient,
                                                  schema_registry: str, topic: str) -> None:
    flight = flight_message_type(topic.replace("-", "_"))
    serde = ProtobufSerde(schema_registry, flight).for_topic(topic, is_key=False)
    data = serde.serialize(flight(carrier="DL", delay=7))
    assert data is not None
    assert schema_id_of(data) == client.get_latest_version(f"{topic}-value").schema_id
    assert data[5] == 0  # the message-index list of the file's first message: [0], written as 0
    assert ProtobufSerde(schema_registry, flight).deserialize(data) == flight(carrier="DL",
                                                                              delay=7)


def test_subject_name_strategies(client: SchemaRegistryClient, schema_registry: str,
                                 topic: str) -> None:
    namespace = topic.replace("-", "_")
    schema = avro_schema(namespace)
    value = {"carrier": "AA", "delay": 1}
    AvroSerde(schema_registry, schema, subject_strategy=RecordNameStrategy).serialize(value)
    AvroSerde(schema_registry, schema, subject_strategy=TopicRecordNameStrategy).for_topic(
        topic, is_key=False).serialize(value)
    subjects = set(client.get_subjects())
    assert f"{namespace}.Flight" in subjects  # RecordNameStrategy needs no topic
    assert f"{topic}-{namespace}.Flight" in subjects
    assert f"{topic}-value" not in subjects


# -- evolution, auto-register, use-latest ----------------------------------------------------


def test_compatible_change_registers_and_incompatible_one_is_refused(
        client: SchemaRegistryClient, schema_registry: str, topic: str) -> None:
    subject = f"{topic}-value"
    old = AvroSerde(schema_registry, V1).for_topic(topic, is_key=False)
    written_v1 = old.serialize({"carrier": "AA", "delay": 5})
    client.set_compatibility(subject, "BACKWARD")

    new = AvroSerde(schema_registry, V2).for_topic(topic, is_key=False)
    written_v2 = new.serialize({"carrier": "AA", "delay": 5, "origin": "JFK"})
    assert written_v1 is not None and written_v2 is not None
    assert schema_id_of(written_v2) != schema_id_of(written_v1)
    assert client.get_versions(subject) == [1, 2]
    # a V1 record read with V2 as the reader's schema gets the new field's default
    assert new.deserialize(written_v1) == {"carrier": "AA", "delay": 5, "origin": "?"}

    bad = AvroSerde(schema_registry, V2_BAD).for_topic(topic, is_key=False)
    with pytest.raises(SerdeError) as refused:
        bad.serialize({"carrier": "AA", "delay": "5", "origin": "JFK"})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"the schema registry refused the Avro schema for subject "
                              f"'{subject}': incompatible")
    assert "/fields/1/type" in message  # the registry's reason: where the delay's type changed
    assert client.get_versions(subject) == [1, 2]


def test_json_schema_evolution_is_checked_too(client: SchemaRegistryClient,
                                             schema_registry: str, topic: str) -> None:
    def schema(delay_type: str) -> str:
        return json.dumps({"type": "object", "additionalProperties": False,
                           "properties": {"delay": {"type": delay_type}}})

    JsonSchemaSerde(schema_registry, schema("integer")).for_topic(topic, False).serialize(
        {"delay": 1})
    client.set_compatibility(f"{topic}-value", "BACKWARD")
    with pytest.raises(SerdeError, match=rf"refused the JSON Schema for subject '{topic}-value': "
                                         rf"incompatible .* at /properties/delay"):
        JsonSchemaSerde(schema_registry, schema("string")).for_topic(topic, False).serialize(
            {"delay": "1"})


def test_auto_register_off_and_use_latest(client: SchemaRegistryClient, schema_registry: str,
                                          topic: str) -> None:
    subject = f"{topic}-value"
    value = {"carrier": "B6", "delay": 0}
    unregistered = AvroSerde(schema_registry, V1, auto_register=False).for_topic(topic, False)
    with pytest.raises(SerdeError, match=rf"subject '{subject}' has no such Avro schema "
                                         rf"registered and auto_register is off"):
        unregistered.serialize(value)
    schema_id = client.register_schema(subject, Schema(V1, "AVRO"))
    assert schema_id_of(unregistered.serialize(value) or b"") == schema_id

    latest = AvroSerde(schema_registry, auto_register=False, use_latest=True)
    data = latest.for_topic(topic, is_key=False).serialize(value)
    assert data is not None and schema_id_of(data) == schema_id
    with pytest.raises(SerdeError, match=r"subject '.*-nothing-value' has no registered version"):
        latest.for_topic(f"{topic}-nothing", is_key=False).serialize(value)


# -- malformed records -----------------------------------------------------------------------


def test_malformed_records_are_serde_errors_saying_why(client: SchemaRegistryClient,
                                                       schema_registry: str, topic: str) -> None:
    serde = AvroSerde(schema_registry, V1).for_topic(topic, is_key=False)
    good = serde.serialize({"carrier": "AA", "delay": 300})
    assert good is not None
    unknown = max(client.get_latest_version(s).schema_id for s in client.get_subjects()) + 1000
    with pytest.raises(SerdeError, match=rf"schema id {unknown} is not in the schema registry "
                                         rf"at {schema_registry}"):
        serde.deserialize(frame(unknown, good[5:]))
    with pytest.raises(SerdeError, match=rf"Avro record of schema id {schema_id_of(good)} "
                                         rf"cannot be read"):
        serde.deserialize(good[:-1])  # the payload cut short
    with pytest.raises(SerdeError, match="not the magic byte"):
        serde.deserialize(b'{"carrier": "AA"}')


# -- the cache -------------------------------------------------------------------------------


@pytest.fixture
def own_registry() -> Iterator[SchemaRegistryServer]:
    """A registry this test may stop."""
    yield from started_registry("own")


def test_schemas_are_cached_and_an_unreachable_registry_is_not_a_bad_record(
        own_registry: SchemaRegistryServer) -> None:
    registry = SchemaRegistryClient({"url": own_registry.url, "max.retries": 0})
    serde = AvroSerde(registry, V1).for_topic("cached", is_key=False)
    value = {"carrier": "AA", "delay": 1}
    data = serde.serialize(value)
    assert data is not None
    assert AvroSerde(registry).deserialize(data) == value  # fetches the schema by id once
    own_registry.stop()

    assert serde.serialize(value) == data  # the registered id, from the cache
    assert AvroSerde(registry).deserialize(data) == value  # the schema, from the client's cache
    with pytest.raises(RegistryUnavailableError,
                       match=rf"the schema registry at {own_registry.url} did not answer"):
        AvroSerde(registry).deserialize(frame(schema_id_of(data) + 1, data[5:]))


# -- an app on the real broker ---------------------------------------------------------------


def test_app_reads_avro_and_writes_avro(kafka: KafkaTestBroker, schema_registry: str,
                                        client: SchemaRegistryClient,
                                        unique_topic: Callable[[str], str],
                                        tmp_path: Path) -> None:
    """examples/schema_registry: late flights in Avro in, alerts in Avro out; a record that is
    not in the wire format goes to the dead letter topic with the reason."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    writer = AvroSerde(schema_registry, late_flights.FLIGHT).for_topic(source, is_key=False)
    flights = [(f"f{i}", {"carrier": c, "delay": d})
               for i, (c, d) in enumerate([("AA", 5), ("UA", 40), ("DL", 16), ("AA", 90)])]
    kafka.produce(source, [(k, writer.serialize(v)) for k, v in flights[:2]])
    kafka.produce(source, [("bad", b'{"carrier": "AA", "delay": 99}')], partition=0)
    kafka.produce(source, [(k, writer.serialize(v)) for k, v in flights[2:]])
    with App(late_flights.build(source, sink, schema_registry), app_id,
             bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path,
             on_error="dead_letter") as app:
        out = kafka.consume_all(sink, 3, timeout=60)
        assert app.error is None

    reader = AvroSerde(schema_registry)
    assert sorted((m.key, reader.deserialize(m.value)) for m in out) == [
        (b"f1", {"carrier": "UA", "minutes": 40}), (b"f2", {"carrier": "DL", "minutes": 16}),
        (b"f3", {"carrier": "AA", "minutes": 90})]
    registered = client.get_latest_version(f"{sink}-value")
    assert json.loads(registered.schema.schema_str)["name"] == "DelayAlert"
    assert {schema_id_of(m.value or b"") for m in out} == {registered.schema_id}
    dead = kafka.consume_all(f"{app_id}-dead-letter", 1, timeout=60)
    assert [m.key for m in dead] == [b"bad"]
    headers = dict(dead[0].headers)
    assert headers["fluvial.topic"] == source.encode()
    assert b"not the magic byte 0x00" in (headers["fluvial.error"] or b"")


def test_app_stops_when_the_registry_is_gone(kafka: KafkaTestBroker,
                                             own_registry: SchemaRegistryServer,
                                             unique_topic: Callable[[str], str],
                                             tmp_path: Path) -> None:
    """Even with on_error=skip: skipping would drop records that are not at fault."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=1)
    kafka.create_topic(sink, partitions=1)
    writer = AvroSerde(own_registry.url, V1).for_topic(source, is_key=False)
    record = writer.serialize({"carrier": "AA", "delay": 1})
    own_registry.stop()
    kafka.produce(source, [record])
    builder = fluvial.StreamsBuilder()
    registry = SchemaRegistryClient({"url": own_registry.url, "max.retries": 0})
    builder.stream(source, value_serde=AvroSerde(registry, V1)).to(sink)
    with App(builder.build(), app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path, on_error="skip") as app:
        wait_until(lambda: app.error is not None, timeout=60)
    assert isinstance(app.error, RegistryUnavailableError)
    assert "did not answer" in str(app.error)
    assert kafka.committed_offsets(app_id, source).get(0, -1) <= 0  # nothing past the record


def test_sql_reads_and_writes_avro(kafka: KafkaTestBroker, schema_registry: str,
                                   client: SchemaRegistryClient,
                                   unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """VALUE_FORMAT='AVRO': INSERT VALUES and a query's output are written with ksqlDB's schema
    of the columns; records of another producer's schema are read by field name."""
    orders, big = unique_topic("orders"), unique_topic("big")
    script = f"""
        CREATE STREAM ORDERS (ID STRING KEY, PRODUCT STRING, UNITS INT, PRICE DECIMAL(6, 2))
          WITH (KAFKA_TOPIC='{orders}', VALUE_FORMAT='AVRO');
        CREATE STREAM BIG WITH (KAFKA_TOPIC='{big}') AS
          SELECT ID, UCASE(PRODUCT) AS PRODUCT, UNITS, PRICE FROM ORDERS WHERE UNITS >= 10;
        INSERT INTO ORDERS (ID, PRODUCT, UNITS, PRICE) VALUES ('o0', 'apple', 10, 1.50);
    """
    app, _ = prepare(script, application_id=unique_topic("sql-app"),
                     bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path,
                     properties={"ksql.schema.registry.url": schema_registry})
    foreign = AvroSerde(schema_registry, json.dumps({
        "type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "product", "type": "string"}, {"name": "units", "type": "int"},
            {"name": "price", "type": {"type": "bytes", "logicalType": "decimal",
                                       "precision": 6, "scale": 2}}]}))
    writer = foreign.for_topic(orders, is_key=False)
    kafka.produce(orders, [(b"o1", writer.serialize({"product": "pear", "units": 3,
                                                     "price": Decimal("0.40")})),
                           (b"o2", writer.serialize({"product": "fig", "units": 12,
                                                     "price": Decimal("2.25")}))])
    with app:
        out = kafka.consume_all(big, 2, timeout=60)
        assert app.error is None
    reader = AvroSerde(schema_registry)
    assert sorted((m.key, reader.deserialize(m.value)) for m in out) == [
        (b"o0", {"PRODUCT": "APPLE", "UNITS": 10, "PRICE": Decimal("1.50")}),
        (b"o2", {"PRODUCT": "FIG", "UNITS": 12, "PRICE": Decimal("2.25")})]
    registered = json.loads(client.get_latest_version(f"{big}-value").schema.schema_str)
    assert registered["name"] == "KsqlDataSourceSchema"
    assert [f["name"] for f in registered["fields"]] == ["PRODUCT", "UNITS", "PRICE"]
