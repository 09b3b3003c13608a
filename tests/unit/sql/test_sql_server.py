"""`fluvial sql-server`: ksqlDB's REST API over real HTTP (urllib against a started server),
queries running on the embedded broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.sql.ksql_http import (
    DEADLINE_S,
    HEADERS,
    Client,
    ksql,
    open_stream,
    pull,
    pull_until,
    running_pushes,
)

from fluvial.errors import FluvialError
from fluvial.io.embedded import EmbeddedBroker
from fluvial.server.ksql import DELIMITED, KSQL_JSON, KsqlServer
from fluvial.sql.service import PushQuery, SqlService


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    service = SqlService(broker=EmbeddedBroker(), application_id="sql-server-test",
                         state_dir=str(tmp_path / "state"), commit_interval_ms=100)
    server = KsqlServer(service, port=0).start()
    try:
        yield Client(server.port)
    finally:
        server.stop()


def test_statements_ctas_and_pull_query(client: Client) -> None:
    created = ksql(client, "CREATE STREAM clicks (user VARCHAR KEY, n INT) WITH "
                                 "(kafka_topic='clicks', value_format='JSON', partitions=1);")
    assert created[0]["@type"] == "currentStatus"
    assert created[0]["statementText"].startswith("CREATE STREAM clicks")
    assert created[0]["commandStatus"] == {"status": "SUCCESS", "message": "Stream created"}
    ctas = ksql(client, "CREATE TABLE totals AS SELECT user, COUNT(*) AS c, SUM(n) AS s "
                              "FROM clicks GROUP BY user;")
    assert ctas[0]["commandStatus"]["message"].startswith("Created query with ID CTAS_TOTALS")
    ksql(client, "INSERT INTO clicks (user, n) VALUES ('ann', 2);"
                       "INSERT INTO clicks (user, n) VALUES ('ann', 5);"
                       "INSERT INTO clicks (user, n) VALUES ('bob', 1);")

    shown = ksql(client, "SHOW STREAMS; SHOW TABLES;\nSHOW QUERIES;")
    assert [s["statementText"] for s in shown] == ["SHOW STREAMS;", "SHOW TABLES;",
                                                   "SHOW QUERIES;"]
    assert [s["name"] for s in shown[0]["streams"]] == ["CLICKS"]
    assert shown[1]["tables"][0]["name"] == "TOTALS"
    assert shown[2]["queries"][0]["sinks"] == ["TOTALS"]
    described = ksql(client, "DESCRIBE totals;")
    fields = described[0]["sourceDescription"]["fields"]
    assert [(f["name"], f["schema"]["type"]) for f in fields] == [
        ("USER", "STRING"), ("C", "BIGINT"), ("S", "INTEGER")]

    answer = pull_until(client, "SELECT * FROM totals WHERE user = 'bob';", rows=1)
    assert answer[1:] == [{"row": {"columns": ["bob", 1, 1]}}]
    answer = pull(client, "SELECT * FROM totals WHERE user = 'ann';")  # inserted before bob
    assert answer[0]["header"]["schema"] == "`USER` STRING, `C` BIGINT, `S` INTEGER"
    assert answer[1:] == [{"row": {"columns": ["ann", 2, 7]}}]
    nobody = pull(client, "SELECT c FROM totals WHERE user = 'nobody';")
    assert len(nobody) == 1 and nobody[0]["header"]["schema"] == "`C` BIGINT"


def test_pull_queries_find_keys_on_every_partition(client: Client) -> None:
    """Grouped by the stream's key, a key stays on the partition its producer chose; grouped
    by another column, on the one the repartition chose: a pull looks in the right one."""
    ksql(client, "CREATE STREAM visits (page VARCHAR KEY, user VARCHAR) WITH "
                 "(kafka_topic='visits', value_format='JSON', partitions=4);"
                 "CREATE TABLE by_page AS SELECT page, COUNT(*) AS n FROM visits GROUP BY page;"
                 "CREATE TABLE by_user AS SELECT user, COUNT(*) AS n FROM visits GROUP BY user;")
    names = ["home", "about", "docs", "blog", "shop", "faq"]
    ksql(client, "".join(f"INSERT INTO visits (page, user) VALUES ('{name}', '{name}');"
                         for name in names))
    for name in names:
        assert pull_until(client, f"SELECT * FROM by_page WHERE page = '{name}';",
                          rows=1)[1:] == [{"row": {"columns": [name, 1]}}]
        assert pull_until(client, f"SELECT * FROM by_user WHERE user = '{name}';",
                          rows=1)[1:] == [{"row": {"columns": [name, 1]}}]


def test_query_stream_delimited(client: Client) -> None:
    ksql(client, "CREATE STREAM s (k VARCHAR KEY, v INT) WITH (kafka_topic='s', "
                       "value_format='JSON');"
                       "CREATE TABLE t AS SELECT k, MAX(v) AS m FROM s GROUP BY k;"
                       "INSERT INTO s (k, v) VALUES ('x', 3);")
    pull_until(client, "SELECT * FROM t WHERE k = 'x';", rows=1)  # the app has it now
    body = json.dumps({"sql": "SELECT * FROM t WHERE k = 'x';"}).encode()
    status, content_type, text = client.call("/query-stream", body)
    assert status == 200, text
    assert content_type.startswith("application/vnd.ksqlapi.delimited.v1")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["columnNames"] == ["K", "M"]
    assert lines[0]["columnTypes"] == ["STRING", "INTEGER"]
    assert lines[1] == ["x", 3]


EVENTS = ("CREATE STREAM events (id INT KEY, kind VARCHAR, n INT) WITH "
          "(kafka_topic='events', value_format='JSON');")


def test_push_query_until_limit(client: Client) -> None:
    ksql(client, EVENTS + "INSERT INTO events (id, kind, n) VALUES (1, 'a', 10);"
                          "INSERT INTO events (id, kind, n) VALUES (2, 'b', 20);"
                          "INSERT INTO events (id, kind, n) VALUES (3, 'a', 30);"
                          "INSERT INTO events (id, kind, n) VALUES (4, 'a', 40);")
    # columns in SELECT order, the key among them or not
    push = {"ksql": "SELECT n * 2 AS twice, id FROM events WHERE kind = 'a' EMIT CHANGES "
                    "LIMIT 2;", "streamsProperties": {"auto.offset.reset": "earliest"}}
    status, content_type, text = client.call("/query", json.dumps(push).encode(), HEADERS)
    assert status == 200, text
    assert content_type.startswith(KSQL_JSON)
    answer = json.loads(text)  # the whole array: the response ended at LIMIT
    assert answer[0]["header"]["schema"] == "`TWICE` INTEGER, `ID` INTEGER"
    assert answer[1:] == [{"row": {"columns": [20, 1]}}, {"row": {"columns": [60, 3]}},
                          {"finalMessage": "Limit Reached"}]

    stream = {"sql": "SELECT * FROM events EMIT CHANGES LIMIT 3;",
              "properties": {"auto.offset.reset": "earliest"}}
    status, content_type, text = client.call("/query-stream", json.dumps(stream).encode())
    assert status == 200, text
    assert content_type.startswith(DELIMITED)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["columnNames"] == ["ID", "KIND", "N"]
    assert lines[1:] == [[1, "a", 10], [2, "b", 20], [3, "a", 30]]

    status, content_type, text = client.call("/query-stream", json.dumps(stream).encode(),
                                             {"Accept": "application/json"})
    assert status == 200 and content_type.startswith("application/json"), text
    assert json.loads(text)[1:] == [[1, "a", 10], [2, "b", 20], [3, "a", 30]]
    # a query that ended is no longer running
    assert not [q for q in ksql(client, "SHOW QUERIES;")[0]["queries"]
                if q["queryType"] == "PUSH"]


def test_push_query_streams_rows_as_they_arrive_until_the_client_leaves(
        client: Client) -> None:
    ksql(client, EVENTS + "INSERT INTO events (id, kind, n) VALUES (1, 'a', 10);")
    text = "SELECT id, n FROM events WHERE n > 15 EMIT CHANGES;"
    connection, response = open_stream(client, {"sql": text})
    assert json.loads(response.readline())["columnNames"] == ["ID", "N"]
    assert running_pushes(client) == [text]
    # from the end of the topic (no auto.offset.reset): only what is inserted from now on
    ksql(client, "INSERT INTO events (id, kind, n) VALUES (2, 'b', 20);"
                 "INSERT INTO events (id, kind, n) VALUES (3, 'b', 5);"
                 "INSERT INTO events (id, kind, n) VALUES (4, 'b', 40);")
    assert json.loads(response.readline()) == [2, 20]
    assert json.loads(response.readline()) == [4, 40]
    connection.close()
    deadline = time.monotonic() + DEADLINE_S
    while running_pushes(client) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the server to notice, with a deadline
    assert running_pushes(client) == []


def test_push_query_errors(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    ksql(client, EVENTS)
    missing = {"ksql": "SELECT * FROM\n  nowhere EMIT CHANGES;"}
    status, _, text = client.call("/query", json.dumps(missing).encode(), HEADERS)
    assert status == 400
    error = json.loads(text)
    assert (error["@type"], error["error_code"]) == ("statement_error", 40001)
    assert error["message"] == "line 2:3: Source `NOWHERE` does not exist."
    grouped = {"sql": "SELECT kind, COUNT(*) FROM events GROUP BY kind EMIT CHANGES;"}
    status, _, text = client.call("/query-stream", json.dumps(grouped).encode())
    assert status == 400 and "GROUP BY" in json.loads(text)["message"]
    bad_properties = {"sql": "SELECT * FROM events EMIT CHANGES;", "properties": [1]}
    status, _, text = client.call("/query-stream", json.dumps(bad_properties).encode())
    assert status == 400
    assert json.loads(text) == {"@type": "generic_error", "error_code": 40000,
                                "message": "\"properties\" must be a JSON object of property "
                                           "names to values"}

    def broken(self: PushQuery, timeout: float) -> list[list[Any]]:
        raise FluvialError("the broker went away")

    monkeypatch.setattr(PushQuery, "poll", broken)
    status, _, text = client.call("/query", json.dumps(
        {"ksql": "SELECT * FROM events EMIT CHANGES;"}).encode(), HEADERS)
    assert status == 200  # the header went out before the failure
    answer = json.loads(text)
    assert answer[1]["errorMessage"]["error_code"] == 50000
    assert answer[1]["errorMessage"]["message"].endswith("failed: the broker went away")
    assert running_pushes(client) == []


def test_stopping_the_server_ends_its_push_queries(tmp_path: Path) -> None:
    service = SqlService(broker=EmbeddedBroker(), application_id="sql-server-stop",
                         state_dir=str(tmp_path / "state"))
    server = KsqlServer(service, port=0).start()
    client = Client(server.port)
    ksql(client, EVENTS)
    _, response = open_stream(client, {"sql": "SELECT * FROM events EMIT CHANGES;"})
    response.readline()  # the header: the query runs
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    assert service.push_queries == {}


def test_errors_have_ksqldb_shape(client: Client) -> None:
    status, _, text = client.call("/ksql", b"{not json", HEADERS)
    assert status == 400
    assert json.loads(text)["@type"] == "generic_error"
    error = ksql(client, "CREATE STREAM oops (;", status=400)
    assert error["@type"] == "statement_error"
    assert error["error_code"] == 40001
    assert error["statementText"] == "CREATE STREAM oops (;"
    assert "line 1:" in error["message"]
    missing = ksql(client, "DESCRIBE nothing;", status=400)
    assert "NOTHING does not exist" in missing["message"]


def test_info_healthcheck_status(client: Client) -> None:
    info = client.get("/info")
    assert info["KsqlServerInfo"]["ksqlServiceId"] == "sql-server-test"
    health = client.get("/healthcheck")
    assert health["isHealthy"] is True
    ksql(client, "CREATE STREAM a (v INT) WITH (kafka_topic='a', value_format='JSON');")
    status = client.get("/status")
    assert status["commandStatuses"] == {"stream/`A`/create": "SUCCESS"}


def test_terminate_stops_a_query_and_leaves_its_sink(client: Client) -> None:
    ksql(client, EVENTS + "CREATE STREAM big AS SELECT * FROM events WHERE n > 5;")
    (query,) = ksql(client, "SHOW QUERIES;")[0]["queries"]
    done = ksql(client, f"TERMINATE {query['id']};")
    assert done[0]["commandId"] == f"terminate/{query['id']}/execute"
    assert done[0]["commandStatus"] == {"status": "SUCCESS", "message": "Query terminated."}
    assert ksql(client, "SHOW QUERIES;")[0]["queries"] == []
    unknown = ksql(client, f"TERMINATE {query['id']};", status=400)
    assert unknown["message"] == f"line 1:1: Unknown queryId: {query['id']}"
    assert [s["name"] for s in ksql(client, "SHOW STREAMS;")[0]["streams"]] == ["BIG", "EVENTS"]
    ksql(client, "DROP STREAM big;")  # no query reads or writes it now
