"""`fluvial sql-server` on the real broker: statements over POST /ksql, records produced by
another client, a pull query on a GROUP BY table, push queries, and malformed requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from tests.integration.kafka_helpers import KafkaTestBroker
from tests.unit.sql.ksql_http import HEADERS, Client, ksql, open_stream, pull_until

from fluvial.server.ksql import KsqlServer
from fluvial.sql.service import SqlService


@pytest.fixture
def client(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
           tmp_path: Path) -> Iterator[Client]:
    service = SqlService(application_id=unique_topic("sql-server"),
                         bootstrap_servers=kafka.bootstrap_servers,
                         state_dir=str(tmp_path / "state"), commit_interval_ms=100)
    server = KsqlServer(service, port=0).start()  # a free port the OS picks
    try:
        yield Client(server.port)
    finally:
        server.stop()


def test_sql_server_on_kafka(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
                             client: Client) -> None:
    views, per_page = unique_topic("views"), unique_topic("per-page")
    created = ksql(client, f"""
        CREATE STREAM views (page VARCHAR KEY, user VARCHAR, ms INT)
          WITH (kafka_topic='{views}', value_format='JSON', partitions=2);
        CREATE TABLE per_page WITH (kafka_topic='{per_page}') AS
          SELECT page, COUNT(*) AS n, SUM(ms) AS total_ms FROM views GROUP BY page;""")
    assert [c["commandStatus"]["status"] for c in created] == ["SUCCESS", "SUCCESS"]
    assert sorted(kafka.topic_partitions(views)) == [0, 1]

    # records from another client, keyed as a Java producer would (murmur2)
    kafka.produce(views, [(page.encode(), orjson.dumps({"USER": user, "MS": ms}))
                          for page, user, ms in [("home", "ann", 30), ("about", "bob", 5),
                                                 ("home", "cy", 12)]],
                  config={"partitioner": "murmur2_random"})
    answer = pull_until(client, "SELECT * FROM per_page WHERE page = 'home';", rows=1)
    assert answer[0]["header"]["schema"] == "`PAGE` STRING, `N` BIGINT, `TOTAL_MS` INTEGER"
    assert answer[1:] == [{"row": {"columns": ["home", 2, 42]}}]

    # a push query from the start of the topic, ended by LIMIT; records of both partitions
    push = {"sql": "SELECT page, ms FROM views WHERE ms > 10 EMIT CHANGES LIMIT 2;",
            "properties": {"auto.offset.reset": "earliest"}}
    status, _, text = client.call("/query-stream", json.dumps(push).encode())
    assert status == 200, text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["columnNames"] == ["PAGE", "MS"]
    assert lines[0]["queryId"].startswith("transient_VIEWS_")
    assert sorted(map(tuple, lines[1:])) == [("home", 12), ("home", 30)]

    # one from the end of the topic: a record produced after it started streams to it
    connection, response = open_stream(client, {"sql": "SELECT user FROM views EMIT CHANGES;"})
    try:
        assert json.loads(response.readline())["columnNames"] == ["USER"]
        kafka.produce(views, [(b"docs", orjson.dumps({"USER": "dee", "MS": 7}))])
        assert json.loads(response.readline()) == ["dee"]
    finally:
        connection.close()
    # and the table took it too
    answer = pull_until(client, "SELECT n FROM per_page WHERE page = 'docs';", rows=1)
    assert answer[1:] == [{"row": {"columns": [1]}}]


def test_malformed_requests_on_kafka(client: Client) -> None:
    error = ksql(client, "CREATE STREAM broken\n  (v INT WITH (kafka_topic='y');", status=400)
    assert (error["@type"], error["error_code"]) == ("statement_error", 40001)
    assert error["message"].startswith("line 2:10: syntax error at 'WITH'"), error["message"]
    assert "\n" not in error["message"]

    status, content_type, text = client.call("/ksql", b'{"ksql": "SHOW STREAMS;"', HEADERS)
    assert status == 400 and content_type.startswith(HEADERS["Accept"])
    error = json.loads(text)
    assert (error["@type"], error["error_code"]) == ("generic_error", 40000)
    assert error["message"].startswith("Malformed JSON in the request body: ")
    assert "\n" not in error["message"]

    status, _, text = client.call("/query", json.dumps({"sql": "SELECT 1;"}).encode(), HEADERS)
    assert status == 400
    assert json.loads(text)["message"] == ('The request body must be a JSON object with a '
                                           '"ksql" string')
