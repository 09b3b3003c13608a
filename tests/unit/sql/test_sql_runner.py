"""A SQL script's persistent queries running as an App on the embedded broker, and the
``fluvial sql test`` front door."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from fluvial.cli.main import cli
from fluvial.cli.sql import resolved_settings, script_settings
from fluvial.io.embedded import EmbeddedBroker
from fluvial.sql.runner import prepare

SCRIPT = """
CREATE STREAM ORDERS (ID STRING KEY, PRODUCT STRING, UNITS INT)
  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=2);
CREATE STREAM BIG_ORDERS AS SELECT ID, PRODUCT, UNITS FROM ORDERS WHERE UNITS >= 10;
CREATE TABLE UNITS_BY_PRODUCT AS
  SELECT PRODUCT, SUM(UNITS) AS TOTAL, COUNT(*) AS N FROM ORDERS GROUP BY PRODUCT;
INSERT INTO ORDERS (ID, PRODUCT, UNITS) VALUES ('o0', 'apple', 10);
"""


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _latest(broker: EmbeddedBroker, topic: str) -> dict[str, dict]:
    latest = {}
    if topic in broker.partition_counts([topic]):
        for m in broker.records(topic):
            latest[m.key().decode()] = orjson.loads(m.value())
    return latest


def test_a_script_runs_its_csas_and_ctas(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    app, results = prepare(SCRIPT, broker=broker, application_id="sql-orders",
                           state_dir=tmp_path)
    assert [r.message for r in results][-1] == "Inserted 1 row"
    assert broker.partition_counts(["orders", "BIG_ORDERS"]) == {"orders": 2, "BIG_ORDERS": 2}
    for i, (product, units) in enumerate([("pear", 3), ("apple", 12), ("pear", 20)], 1):
        broker.append("orders", f"o{i}".encode(),
                      orjson.dumps({"PRODUCT": product, "UNITS": units}), i)
    with app:
        wait_for(lambda: _latest(broker, "UNITS_BY_PRODUCT") == {
            "apple": {"TOTAL": 22, "N": 2}, "pear": {"TOTAL": 23, "N": 2}})
        wait_for(lambda: len(_latest(broker, "BIG_ORDERS")) == 3)
        assert app.error is None
    assert _latest(broker, "BIG_ORDERS") == {
        "o0": {"PRODUCT": "apple", "UNITS": 10}, "o2": {"PRODUCT": "apple", "UNITS": 12},
        "o3": {"PRODUCT": "pear", "UNITS": 20}}


def _case_file(tmp_path: Path, expected_value: dict) -> Path:
    case = {"name": "double it", "statements": [
        "CREATE STREAM I (K STRING KEY, A INT) WITH (KAFKA_TOPIC='i', VALUE_FORMAT='JSON');",
        "CREATE STREAM O AS SELECT K, A * 2 AS B FROM I;"],
        "inputs": [{"topic": "i", "key": "k", "value": {"A": 2}, "timestamp": 0}],
        "outputs": [{"topic": "O", "key": "k", "value": expected_value, "timestamp": 0}]}
    path = tmp_path / "case.json"
    path.write_text(json.dumps({"tests": [case]}))
    return path


def test_sql_test_prints_a_table_and_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "test", str(_case_file(tmp_path, {"B": 4}))])
    assert result.exit_code == 0, result.output
    assert "pass    double it" in result.output
    assert "1 of 1 case(s) passed" in result.output


def test_sql_test_shows_the_first_difference_and_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "test", str(_case_file(tmp_path, {"B": 5}))])
    assert result.exit_code == 1
    assert ('FAIL    double it  topic O record #0: value differs: expected {"B":5}, '
            'got {"B":4}') in result.output
    assert "0 of 1 case(s) passed" in result.output


def test_a_scripts_application_id_is_its_name_unless_configured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUVIAL_APPLICATION_ID", raising=False)
    script = str(tmp_path / "orders.sql")
    assert script_settings(script, {})["application_id"] == "fluvial-sql-orders"
    config = tmp_path / "fluvial.toml"
    config.write_text('application_id = "from-the-file"\n')
    assert script_settings(script, {"config_file": str(config)})["application_id"] == \
        "from-the-file"
    monkeypatch.setenv("FLUVIAL_APPLICATION_ID", "from-the-environment")
    assert script_settings(script, {"config_file": str(config)})["application_id"] == \
        "from-the-environment"
    assert script_settings(script, {"application_id": "from-a-flag"})["application_id"] == \
        "from-a-flag"


def test_the_servers_application_id_comes_from_its_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUVIAL_APPLICATION_ID", raising=False)
    assert resolved_settings({}, "fluvial-sql-server")["application_id"] == "fluvial-sql-server"
    config = tmp_path / "fluvial.toml"
    config.write_text('application_id = "orders-service"\n')
    assert resolved_settings({"config_file": str(config)},
                             "fluvial-sql-server")["application_id"] == "orders-service"
