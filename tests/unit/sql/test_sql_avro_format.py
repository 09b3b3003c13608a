"""VALUE_FORMAT='AVRO' without a registry: the schema of the columns and the checks made when a
statement runs. (Records through a real registry: tests/integration/test_schema_registry.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fluvial.cli.main import cli
from fluvial.cli.sql import registry_properties
from fluvial.io.embedded import EmbeddedBroker
from fluvial.sql import types as t
from fluvial.sql.catalog import Column
from fluvial.sql.engine import Engine
from fluvial.sql.errors import SqlAnalysisError
from fluvial.sql.formats import avro_schema
from fluvial.sql.service import SqlService

NOWHERE = {"ksql.schema.registry.url": "http://127.0.0.1:9"}  # never called here


def test_the_schema_is_ksqldbs_with_every_field_nullable() -> None:
    schema = json.loads(avro_schema([Column("PRODUCT", t.STRING), Column("UNITS", t.INTEGER),
                                     Column("PRICE", t.decimal(10, 2))]))
    assert schema == {
        "type": "record", "name": "KsqlDataSourceSchema",
        "namespace": "io.confluent.ksql.avro_schemas",
        "fields": [
            {"name": "PRODUCT", "type": ["null", "string"], "default": None},
            {"name": "UNITS", "type": ["null", "int"], "default": None},
            {"name": "PRICE", "type": ["null", {"type": "bytes", "logicalType": "decimal",
                                                "precision": 10, "scale": 2}],
             "default": None}]}


def test_avro_without_a_registry_says_which_property_to_set() -> None:
    with pytest.raises(SqlAnalysisError, match=r"Format 'AVRO' needs a schema registry: set the "
                                               r"'ksql.schema.registry.url' property"):
        Engine().execute("CREATE STREAM S (A INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='AVRO');")


def test_unwrapped_avro_values_are_refused() -> None:
    with pytest.raises(SqlAnalysisError, match="'WRAP_SINGLE_VALUE' set to 'false' is not "
                                               "supported yet"):
        Engine(properties=NOWHERE).execute(
            "CREATE STREAM S (A INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='AVRO', "
            "WRAP_SINGLE_VALUE=false);")


def test_a_query_writing_avro_uses_the_engines_registry() -> None:
    engine = Engine(properties=NOWHERE)
    engine.execute("""
        CREATE STREAM ORDERS (ID STRING KEY, UNITS INT)
          WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');
        CREATE STREAM BIG WITH (KAFKA_TOPIC='big', VALUE_FORMAT='AVRO') AS
          SELECT ID, UNITS FROM ORDERS WHERE UNITS > 10;
    """)
    big = engine.sources["BIG"]
    assert (big.formats.value, big.formats.schema_registry) == ("AVRO", NOWHERE[
        "ksql.schema.registry.url"])


def test_the_sql_server_takes_the_registry_too(tmp_path: Path) -> None:
    service = SqlService(broker=EmbeddedBroker(), application_id="sql-avro",
                         state_dir=str(tmp_path), properties=registry_properties(
                             NOWHERE["ksql.schema.registry.url"]))
    try:
        service.execute("CREATE STREAM S (A INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='AVRO');")
        assert service.engine.sources["S"].formats.schema_registry == \
            NOWHERE["ksql.schema.registry.url"]
    finally:
        service.close()


@pytest.mark.parametrize("command", ["sql", "sql-server"])
def test_both_sql_commands_have_the_option(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--schema-registry" in result.output
