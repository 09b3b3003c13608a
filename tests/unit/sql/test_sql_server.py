"""`fluvial sql-server`: ksqlDB's REST API over real HTTP (urllib against a started server),
queries running on the embedded broker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluvial.io.embedded import EmbeddedBroker
from fluvial.server.ksql import KSQL_JSON, KsqlServer
from fluvial.sql.service import SqlService

HEADERS = {"Content-Type": KSQL_JSON, "Accept": KSQL_JSON}
DEADLINE_S = 60.0


class Client:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {},
                                         method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    def get(self, path: str) -> Any:
        status, _, text = self.call(path)
        assert status == 200, text
        return json.loads(text)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    service = SqlService(broker=EmbeddedBroker(), application_id="sql-server-test",
                         state_dir=str(tmp_path / "state"), commit_interval_ms=100)
    server = KsqlServer(service, port=0).start()
    try:
        yield Client(server.port)
    finally:
        server.stop()


def ksql(client: Client, text: str, status: int = 200) -> Any:
    body = json.dumps({"ksql": text, "streamsProperties": {}}).encode()
    got, content_type, answer = client.call("/ksql", body, HEADERS)
    assert got == status, answer
    assert content_type.startswith(KSQL_JSON)
    return json.loads(answer)


def pull(client: Client, text: str) -> Any:
    status, _, answer = client.call("/query", json.dumps({"ksql": text}).encode(), HEADERS)
    assert status == 200, answer
    return json.loads(answer)


def pull_until(client: Client, text: str, rows: int) -> Any:
    """Pull until ``rows`` rows come back: the app starts and processes in the background (a
    pull before it holds its partition is refused with a statement_error, then retried)."""
    deadline = time.monotonic() + DEADLINE_S
    answer: Any = None
    while time.monotonic() < deadline:
        status, _, text_ = client.call("/query", json.dumps({"ksql": text}).encode(), HEADERS)
        answer = json.loads(text_)
        if status == 200 and len(answer) == rows + 1:
            return answer
        time.sleep(0.2)  # polling for a condition, with a deadline
    raise AssertionError(f"no {rows} row(s) in {DEADLINE_S}s; last answer: {answer}")


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
