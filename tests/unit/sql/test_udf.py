"""Python UDFs, UDAFs and UDTFs in SQL: typing from annotations, every clause, errors."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from tests.unit.sql import udf_sample

import fluvial
from fluvial.errors import ProcessingError
from fluvial.sql import (
    Engine,
    FunctionRegistry,
    SqlAnalysisError,
    UdfError,
    run_case,
    udaf,
    udf,
    udtf,
)
from fluvial.sql import types as t
from fluvial.sql.udfs import sql_type

SAMPLE = "tests.unit.sql.udf_sample"
ORDERS = ("CREATE STREAM ORDERS (ID STRING KEY, NAME STRING, UNITS INT, PRICE DOUBLE, "
          "TEXT STRING) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');")


def registry() -> FunctionRegistry:
    return FunctionRegistry().load_module(SAMPLE)


def case(statements: list[str], inputs: list[dict[str, Any]],
         outputs: list[dict[str, Any]]) -> None:
    result = run_case({"name": "udf", "statements": [ORDERS, *statements], "inputs": inputs,
                       "outputs": outputs}, registry())
    assert result.passed, result.detail


def order(key: str, **value: Any) -> dict[str, Any]:
    return {"topic": "orders", "key": key, "value": value}


# -- types from annotations -----------------------------------------------------------------

@pytest.mark.parametrize(("annotation", "expected", "nullable"), [
    (int, t.BIGINT, False), (float, t.DOUBLE, False), (str, t.STRING, False),
    (bool, t.BOOLEAN, False), (bytes, t.BYTES, False), (list[int], t.array(t.BIGINT), False),
    (dict[str, float], t.map_of(t.DOUBLE), False), (str | None, t.STRING, True),
    (list[str] | None, t.array(t.STRING), True),
])
def test_annotations_map_to_sql_types(annotation: Any, expected: t.SqlType,
                                      nullable: bool) -> None:
    assert sql_type(annotation, "here") == (expected, nullable)


def test_decimal_and_datetime_map_to_decimal_and_timestamp() -> None:
    assert sql_type(Decimal, "here")[0].name == "DECIMAL"
    assert sql_type(datetime.datetime, "here")[0] == t.TIMESTAMP


@pytest.mark.parametrize(("annotation", "message"), [
    (int | str, "is a union"), (dict[int, int], "str keys"), (list, "element type"),
    (set[int], "has no SQL type"),
])
def test_annotations_without_a_sql_type_are_refused(annotation: Any, message: str) -> None:
    with pytest.raises(UdfError, match=message):
        sql_type(annotation, "scalar function F")


def test_malformed_functions_are_refused_when_decorated() -> None:
    with pytest.raises(UdfError, match="parameter x has no type annotation"):
        @udf()
        def no_hint(x) -> int:  # type: ignore[no-untyped-def]
            return 1
    with pytest.raises(UdfError, match="the return type has no annotation"):
        @udf()
        def no_return(x: int):  # type: ignore[no-untyped-def]
            return 1
    with pytest.raises(UdfError, match="needs its precision and scale"):
        @udf()
        def money(x: int) -> Decimal:
            return Decimal(x)
    with pytest.raises(UdfError, match="returns list"):
        @udtf()
        def not_a_list(x: int) -> int:
            return x
    with pytest.raises(UdfError, match="lacks merge, map"):
        @udaf()
        class Half:
            def initialize(self) -> int:
                return 0

            def aggregate(self, value: int, aggregate: int) -> int:
                return value
    with pytest.raises(UdfError, match="keyword-only"):
        @udf()
        def keyword(*, x: int) -> int:
            return x


def test_a_registry_refuses_builtin_names_duplicates_and_unmarked_functions() -> None:
    @udf(name="ucase")
    def shout(s: str) -> str:
        return s.upper()
    with pytest.raises(UdfError, match="UCASE is built in"):
        FunctionRegistry([shout])
    with pytest.raises(UdfError, match=r"already has the signature \(BIGINT, DOUBLE\)"):
        FunctionRegistry([udf_sample.scale, udf_sample.scale])
    with pytest.raises(UdfError, match="is not marked"):
        FunctionRegistry([len])
    with pytest.raises(UdfError, match="cannot import it"):
        FunctionRegistry().load_module("tests.unit.sql.no_such_module")
    with pytest.raises(UdfError, match="defines no function marked"):
        FunctionRegistry().load_module("tests.unit.sql.ksql_http")


def test_decorated_functions_stay_plain_python() -> None:
    assert udf_sample.scale(2, 1.5) == 3.0
    assert udf_sample.words("a b") == ["a", "b"]


# -- scalar UDFs in every clause ------------------------------------------------------------

def test_a_udf_in_select_and_where_with_overloads_and_widening() -> None:
    case(["CREATE STREAM OUT AS SELECT ID, SCALE(UNITS, 0.5) AS HALF, SCALE(NAME, 2) AS TWICE, "
          "INITIALS(NAME) AS INI, JOIN_ALL(NAME, ID, 'x') AS J FROM ORDERS "
          "WHERE SCALE(UNITS, 2) > 4;"],
         [order("a", NAME="Ada Lovelace", UNITS=3), order("b", NAME="Bo", UNITS=1),
          order("c", NAME=None, UNITS=4)],
         [{"topic": "OUT", "key": "a", "value": {"HALF": 1.5, "TWICE": "Ada LovelaceAda Lovelace",
                                                 "INI": "AL", "J": "Ada Lovelace-a-x"}},
          # NAME NULL: SCALE(STRING, ...) and JOIN_ALL give NULL, INITIALS (Optional) runs
          {"topic": "OUT", "key": "c", "value": {"HALF": 2.0, "TWICE": None, "INI": "?",
                                                 "J": None}}])


def test_a_decimal_udf_gets_and_returns_exact_decimals() -> None:
    case(["CREATE STREAM M (ID STRING KEY, AMOUNT DECIMAL(6, 2)) "
          "WITH (KAFKA_TOPIC='m', VALUE_FORMAT='JSON');",
          "CREATE STREAM TAXED AS SELECT ID, WITH_TAX(AMOUNT) AS GROSS FROM M;"],
         [{"topic": "m", "key": "a", "value": {"AMOUNT": 10.05}}],
         [{"topic": "TAXED", "key": "a", "value": {"GROSS": 12.06}}])


def test_a_udf_in_group_by_and_having() -> None:
    case(["CREATE TABLE BY_INITIALS AS SELECT INITIALS(NAME) AS INI, COUNT(*) AS N FROM ORDERS "
          "GROUP BY INITIALS(NAME) HAVING SCALE(COUNT(*), 1.0) > 1;"],
         [order("a", NAME="Ada Lovelace"), order("b", NAME="Alan Lee"),
          order("c", NAME="Bo")],
         [{"topic": "BY_INITIALS", "key": "AL", "value": {"N": 2}}])


def test_a_udf_in_a_join_condition() -> None:
    case(["CREATE TABLE PEOPLE (INI STRING PRIMARY KEY, CITY STRING) "
          "WITH (KAFKA_TOPIC='people', VALUE_FORMAT='JSON');",
          "CREATE STREAM WHERE_FROM AS SELECT P.INI AS INI, O.ID AS ID, P.CITY AS CITY FROM "
          "ORDERS O "
          "JOIN PEOPLE P ON INITIALS(O.NAME) = P.INI;"],
         [{"topic": "people", "key": "AL", "value": {"CITY": "London"}},
          order("a", NAME="Ada Lovelace")],
         [{"topic": "WHERE_FROM", "key": "AL", "value": {"ID": "a", "CITY": "London"}}])


# -- type errors at planning --------------------------------------------------------------

def plan_error(sql: str) -> str:
    engine = Engine(functions=registry())
    engine.execute(ORDERS)
    with pytest.raises(SqlAnalysisError) as caught:
        engine.execute(sql)
    return str(caught.value)


def test_wrong_argument_types_name_the_function_the_types_and_the_signatures() -> None:
    message = plan_error("CREATE STREAM X AS SELECT ID,\n  SCALE(NAME, 'x') FROM ORDERS;")
    assert message == ("line 2:3: Function 'SCALE' does not accept parameters (STRING, "
                       "STRING). Valid alternatives are: SCALE(BIGINT, DOUBLE) -> DOUBLE; "
                       "SCALE(STRING, BIGINT) -> STRING")


def test_a_wrong_argument_count_in_where_says_so_with_the_clause() -> None:
    message = plan_error("CREATE STREAM X AS SELECT ID FROM ORDERS WHERE CHECKED_RATIO(UNITS) "
                         "> 1;")
    assert message.startswith("line 1:48: Error in WHERE expression: Function "
                              "'CHECKED_RATIO' does not accept parameters (INTEGER).")
    assert "CHECKED_RATIO(BIGINT, BIGINT) -> DOUBLE" in message


def test_a_function_of_another_engine_is_unknown() -> None:
    engine = Engine()  # no registry: the sample's functions are not this engine's
    engine.execute(ORDERS)
    with pytest.raises(SqlAnalysisError, match="Can't find any functions with the name "
                                               "'SCALE'"):
        engine.execute("CREATE STREAM X AS SELECT ID, SCALE(UNITS, 2.0) FROM ORDERS;")


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE STREAM X AS SELECT ID FROM ORDERS WHERE WORDS(TEXT) = 'a';",
     "Table function WORDS can only be used in the SELECT clause"),
    ("CREATE TABLE X AS SELECT NAME, COUNT(*), WORDS(NAME) FROM ORDERS GROUP BY NAME;",
     "Table function WORDS cannot be used in an aggregation"),
    ("CREATE STREAM X AS SELECT ID, WORDS(WORDS(TEXT)) FROM ORDERS;",
     "Table function WORDS cannot take WORDS(...) as an argument"),
    ("CREATE STREAM X AS SELECT ID, SPREAD(PRICE) FROM ORDERS;",
     "Use of aggregate function SPREAD requires a GROUP BY clause."),
    ("CREATE TABLE X AS SELECT NAME, SPREAD(SPREAD(PRICE)) FROM ORDERS GROUP BY NAME;",
     "Aggregate functions can not be nested"),
    ("CREATE TABLE X AS SELECT NAME, SPREAD(NAME) FROM ORDERS GROUP BY NAME;",
     "Function 'SPREAD' does not accept parameters (STRING). Valid alternatives are: "
     "SPREAD(DOUBLE) -> DOUBLE"),
])
def test_malformed_use_is_refused_at_planning(sql: str, message: str) -> None:
    assert message in plan_error(sql)


# -- UDTFs and UDAFs ----------------------------------------------------------------------

def test_a_udtf_gives_a_row_per_element_zipping_several() -> None:
    case(["CREATE STREAM W AS SELECT ID, WORDS(TEXT) AS WORD, POSITIONS(TEXT) AS AT "
          "FROM ORDERS WHERE UNITS > 0;"],
         [order("a", TEXT="to be", UNITS=1), order("b", TEXT="no", UNITS=0),
          order("c", TEXT="", UNITS=1)],
         [{"topic": "W", "key": "a", "value": {"WORD": "to", "AT": 0}},
          {"topic": "W", "key": "a", "value": {"WORD": "be", "AT": 1}}])


def test_a_udaf_aggregates_a_stream_per_window() -> None:
    case(["CREATE TABLE S AS SELECT NAME, SPREAD(PRICE) AS SPREAD FROM ORDERS "
          "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY NAME;"],
         [order("a", NAME="x", PRICE=2.0), order("b", NAME="x", PRICE=5.5),
          order("c", NAME="x", PRICE=None)],
         [{"topic": "S", "key": "x", "value": {"SPREAD": 0.0},
           "window": {"start": 0, "end": 60000, "type": "time"}},
          {"topic": "S", "key": "x", "value": {"SPREAD": 3.5},
           "window": {"start": 0, "end": 60000, "type": "time"}},
          {"topic": "S", "key": "x", "value": {"SPREAD": 3.5},
           "window": {"start": 0, "end": 60000, "type": "time"}}])


def test_a_udaf_with_undo_aggregates_a_table() -> None:
    case(["CREATE TABLE STOCK (ID STRING PRIMARY KEY, SHOP STRING, UNITS INT) "
          "WITH (KAFKA_TOPIC='stock', VALUE_FORMAT='JSON');",
          "CREATE TABLE PER_SHOP AS SELECT SHOP, TOTAL(UNITS) AS UNITS FROM STOCK "
          "GROUP BY SHOP;"],
         [{"topic": "stock", "key": "a", "value": {"SHOP": "s", "UNITS": 3}},
          {"topic": "stock", "key": "b", "value": {"SHOP": "s", "UNITS": 4}},
          {"topic": "stock", "key": "a", "value": {"SHOP": "s", "UNITS": 1}}],
         [{"topic": "PER_SHOP", "key": "s", "value": {"UNITS": 3}},
          {"topic": "PER_SHOP", "key": "s", "value": {"UNITS": 7}},
          {"topic": "PER_SHOP", "key": "s", "value": {"UNITS": 5}}])  # 7 - 3 + 1


def test_a_udaf_without_undo_is_refused_over_a_table() -> None:
    engine = Engine(functions=registry())
    engine.execute("CREATE TABLE STOCK (ID STRING PRIMARY KEY, SHOP STRING, PRICE DOUBLE) "
                   "WITH (KAFKA_TOPIC='stock', VALUE_FORMAT='JSON');")
    with pytest.raises(SqlAnalysisError, match="The aggregation functions SPREAD cannot be "
                                               "applied to a table source"):
        engine.execute("CREATE TABLE X AS SELECT SHOP, SPREAD(PRICE) FROM STOCK GROUP BY "
                       "SHOP;")


# -- SHOW FUNCTIONS, DESCRIBE FUNCTION ----------------------------------------------------

def test_show_functions_lists_builtins_and_python_ones() -> None:
    (result,) = Engine(functions=registry()).execute("SHOW FUNCTIONS;")
    assert result.header == ("Function Name", "Type", "Category")
    assert ("SCALE", "SCALAR", "PYTHON") in result.rows
    assert ("SPREAD", "AGGREGATE", "PYTHON") in result.rows
    assert ("WORDS", "TABLE", "PYTHON") in result.rows
    assert ("UCASE", "SCALAR", "BUILT_IN") in result.rows
    assert ("SUM", "AGGREGATE", "BUILT_IN") in result.rows


def test_describe_function_gives_each_signature() -> None:
    engine = Engine(functions=registry())
    (result,) = engine.execute("DESCRIBE FUNCTION scale;")
    assert result.message == "Name: SCALE (SCALAR, Python): The value times the factor."
    assert result.rows == [
        ("BIGINT, DOUBLE", "DOUBLE", f"{SAMPLE}.scale"),
        ("STRING, BIGINT", "STRING", f"{SAMPLE}.scale_text")]
    (variadic,) = engine.execute("DESCRIBE FUNCTION JOIN_ALL;")
    assert variadic.rows[0][0] == "STRING..."
    with pytest.raises(fluvial.sql.SqlExecutionError, match="line 1:1: Can't find any "
                                                            "functions with the name 'NOPE'"):
        engine.execute("DESCRIBE FUNCTION nope;")


# -- a UDF that raises: the record goes to the error policy -----------------------------

def test_a_raising_udf_sends_the_record_to_the_error_policy_with_where() -> None:
    engine = Engine(functions=registry())
    engine.execute(ORDERS + "\nCREATE STREAM R AS SELECT ID,\n  CHECKED_RATIO(UNITS, 0) AS Q "
                            "FROM ORDERS;")
    with fluvial.TestDriver(engine.topology(), on_error="dead_letter") as driver:
        orders = driver.input_topic("orders", "string", "json")
        orders.pipe({"UNITS": 1}, key="a")
        (dead,) = driver.read("test-app-dead-letter")
        error = dict(dead.headers() or [])["fluvial.error"].decode()
        assert "line 3:3: Function CHECKED_RATIO failed: ValueError: b must not be zero" \
            in error
        assert driver.read("R") == []
    with fluvial.TestDriver(engine.topology(), on_error="stop") as driver, \
            pytest.raises(ProcessingError, match="CHECKED_RATIO failed"):
        driver.input_topic("orders", "string", "json").pipe({"UNITS": 1}, key="a")


def test_a_udf_returning_the_wrong_type_is_the_records_error() -> None:
    @udf(name="LIAR")
    def liar(x: int) -> int:
        return "not a number"  # type: ignore[return-value]
    engine = Engine(functions=FunctionRegistry([liar]))
    engine.execute(ORDERS + "CREATE STREAM L AS SELECT ID, LIAR(UNITS) FROM ORDERS;")
    with fluvial.TestDriver(engine.topology(), on_error="dead_letter") as driver:
        driver.input_topic("orders", "string", "json").pipe({"UNITS": 1}, key="a")
        (dead,) = driver.read("test-app-dead-letter")
        assert "returned 'not a number', which is not a BIGINT" in \
            dict(dead.headers() or [])["fluvial.error"].decode()


# -- --udf-module ---------------------------------------------------------------------------

def test_sql_test_loads_the_udf_module(tmp_path: Any) -> None:
    import json

    from fluvial.cli.main import cli

    cases = tmp_path / "udf.json"
    cases.write_text(json.dumps({"tests": [{
        "name": "scale", "statements": [ORDERS, "CREATE STREAM O AS SELECT ID, "
                                                "SCALE(UNITS, 2.0) AS S FROM ORDERS;"],
        "inputs": [{"topic": "orders", "key": "a", "value": {"UNITS": 2}}],
        "outputs": [{"topic": "O", "key": "a", "value": {"S": 4.0}}]}]}))
    runner = CliRunner()
    passed = runner.invoke(cli, ["sql", "test", str(cases), "--udf-module", SAMPLE])
    assert passed.exit_code == 0, passed.output
    without = runner.invoke(cli, ["sql", "test", str(cases)])
    assert without.exit_code == 1 and "Can't find any functions with the name 'SCALE'" in \
        without.output
    bad = runner.invoke(cli, ["sql", "test", str(cases), "--udf-module", "no.such.module"])
    assert bad.exit_code == 2 and "--udf-module no.such.module: cannot import it" in \
        bad.output


def test_sql_server_and_sql_refuse_a_module_that_does_not_import(tmp_path: Any) -> None:
    from fluvial.cli.main import cli

    script = tmp_path / "q.sql"
    script.write_text(ORDERS)
    for args in (["sql-server", "--udf-module", "no.such.module"],
                 ["sql", "-f", str(script), "--udf-module", "no.such.module"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "--udf-module no.such.module: cannot import it" in result.output


def test_the_rest_api_shows_and_describes_python_functions(tmp_path: Any) -> None:
    from tests.unit.sql.ksql_http import Client, ksql

    from fluvial.io.embedded import EmbeddedBroker
    from fluvial.server.ksql import KsqlServer
    from fluvial.sql.service import SqlService

    service = SqlService(broker=EmbeddedBroker(), application_id="sql-udf-test",
                         state_dir=str(tmp_path / "state"), functions=registry())
    server = KsqlServer(service, port=0).start()
    try:
        shown, described = ksql(Client(server.port), "SHOW FUNCTIONS; DESCRIBE FUNCTION "
                                                     "SCALE;")
    finally:
        server.stop()
    assert shown["@type"] == "function_names"
    assert {"name": "WORDS", "type": "TABLE", "category": "PYTHON"} in shown["functions"]
    assert described["@type"] == "describe_function"
    assert (described["name"], described["type"]) == ("SCALE", "SCALAR")
    assert [(f["argumentTypes"], f["returnType"]) for f in described["functions"]] == [
        (["BIGINT", "DOUBLE"], "DOUBLE"), (["STRING", "BIGINT"], "STRING")]


def test_the_udf_error_cases_pass() -> None:
    from pathlib import Path

    from fluvial.sql import run_file

    cases = Path(__file__).resolve().parents[2] / "sql" / "udf_cases" / "udf_errors.json"
    results = run_file(cases, registry())
    assert len(results) == 6
    assert [r.detail for r in results if not r.passed] == []


def test_arrays_maps_and_timestamps_pass_between_functions_and_into_json() -> None:
    @udf()
    def tags(s: str) -> list[str]:
        return s.split(",")

    @udf()
    def lengths(items: list[str]) -> dict[str, int]:
        return {i: len(i) for i in items}

    @udf()
    def stamp(ms: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)

    engine = Engine(functions=FunctionRegistry([tags, lengths, stamp]))
    engine.execute(ORDERS + "CREATE STREAM O AS SELECT ID, TAGS(TEXT) AS T, "
                            "LENGTHS(TAGS(TEXT)) AS L, STAMP(UNITS) AS W FROM ORDERS;")
    (described,) = engine.execute("DESCRIBE O;")
    assert described.rows[1:] == [("T", "ARRAY<STRING>"), ("L", "MAP<STRING, BIGINT>"),
                                  ("W", "TIMESTAMP")]
    with fluvial.TestDriver(engine.topology()) as driver:
        driver.input_topic("orders", "string", "json").pipe({"TEXT": "a,bb", "UNITS": 1500},
                                                            key="k")
        assert driver.output_topic("O", "string", "json").read_values() == [
            {"T": ["a", "bb"], "L": {"a": 1, "bb": 2}, "W": "1970-01-01T00:00:01.500000+00:00"}]


def test_a_udtf_in_a_push_query_is_refused_clearly() -> None:
    from fluvial.sql.parser import parse
    from fluvial.sql.planner import plan_transient
    from fluvial.sql.udfs import using

    engine = Engine(functions=registry())
    engine.execute(ORDERS)
    (query,) = parse("SELECT ID, WORDS(TEXT) FROM ORDERS EMIT CHANGES;")
    assert isinstance(query, fluvial.sql.ast.Query)
    with using(engine.functions), pytest.raises(SqlAnalysisError, match="line 1:12: Table "
                                                "function WORDS in a push query is not "
                                                "supported yet"):
        plan_transient(query, engine.sources["ORDERS"])


def test_bare_decorators_mark_under_the_functions_own_name() -> None:
    @udf
    def twice(x: int) -> int:
        return 2 * x

    @udtf
    def letters(s: str) -> list[str]:
        return list(s)
    registry = FunctionRegistry([twice, letters])
    assert registry.get("TWICE", "SCALAR") is not None
    assert registry.get("LETTERS", "TABLE") is not None
    with pytest.raises(UdfError, match="aggregate function MONEY: a Decimal result needs"):
        @udaf
        class Money:
            def initialize(self) -> int:
                return 0

            def aggregate(self, value: int, aggregate: int) -> int:
                return value

            def merge(self, a: int, b: int) -> int:
                return a

            def map(self, aggregate: int) -> Decimal:
                return Decimal(aggregate)


def test_prepare_runs_a_script_with_python_functions_on_the_embedded_broker(
        tmp_path: Any) -> None:
    import time

    import orjson

    from fluvial.io.embedded import EmbeddedBroker
    from fluvial.sql import prepare

    broker = EmbeddedBroker()
    app, _ = prepare(ORDERS + "CREATE STREAM R AS SELECT ID, CHECKED_RATIO(UNITS, 4) AS Q, "
                              "CHECKED_RATIO(1, UNITS) AS INV FROM ORDERS;",
                     broker=broker, functions=registry(), application_id="sql-udf",
                     state_dir=str(tmp_path))
    for key, units in (("a", 2), ("b", 0), ("c", 1)):  # b: the UDF raises, skipped
        broker.append("orders", key.encode(), orjson.dumps({"UNITS": units}), 0)
    with app:
        deadline = time.monotonic() + 30
        while len(broker.records("R")) < 2:  # the sink topic exists: prepare made it
            assert time.monotonic() < deadline, "R did not get its two records in time"
            time.sleep(0.02)
        assert app.error is None
    assert [(m.key(), orjson.loads(m.value())) for m in broker.records("R")] == [
        (b"a", {"Q": 0.5, "INV": 0.5}), (b"c", {"Q": 0.25, "INV": 1.0})]
