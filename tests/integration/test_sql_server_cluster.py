"""Two `fluvial sql-server`s sharing one service id on the real broker: statements sent to one
are applied by both from the command topic, the queries' partitions are split between them, a
pull query for a key the other server holds is forwarded to it, and a server started after
both stopped resumes every query from the command topic (skipping a corrupt record there)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.integration.kafka_helpers import KafkaTestBroker
from tests.unit.sql.ksql_http import DEADLINE_S, HEADERS, Client, ksql, open_stream

from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.server.ksql import KsqlServer
from fluvial.sql.commands import command_topic
from fluvial.sql.service import SqlService

Start = Callable[[str], KsqlServer]


@pytest.fixture
def start(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
          tmp_path: Path) -> Iterator[Start]:
    """``start(name)``: a server of this test's service, with a state directory of its own."""
    service_id = unique_topic("sql-cluster")
    started: list[KsqlServer] = []

    def make(name: str) -> KsqlServer:
        service = SqlService(application_id=service_id, bootstrap_servers=kafka.bootstrap_servers,
                             state_dir=str(tmp_path / name), commit_interval_ms=100)
        started.append(KsqlServer(service, port=0).start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """``check()``'s first true answer, polled until DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.2)  # polling a condition, with a deadline
    raise AssertionError(f"not within {DEADLINE_S}s: {what}")


def pulled(client: Client, page: str) -> list[Any] | None:
    """PER_PAGE's row for ``page`` as ``client`` answers it, or None (none yet, or moving)."""
    status, _, text = client.call("/query", json.dumps(
        {"ksql": f"SELECT page, n FROM per_page WHERE page = '{page}';"}).encode(), HEADERS)
    answer = json.loads(text)
    return answer[1]["row"]["columns"] if status == 200 and len(answer) == 2 else None


def held(server: KsqlServer, store: str) -> set[int]:
    """The partitions of ``store`` whose tasks run on ``server``."""
    app = server.service.app
    return set(app.query(store).local_views()) if app is not None else set()


def view(page: str, user: str, ms: int) -> tuple[bytes, bytes]:
    return page.encode(), orjson.dumps({"USER": user, "MS": ms})


def test_two_servers_share_the_catalog_and_a_restart_resumes(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], start: Start,
        caplog: pytest.LogCaptureFixture) -> None:
    views, slow, per_page = unique_topic("views"), unique_topic("slow"), unique_topic("per-page")
    a, b = start("a"), start("b")
    client_a, client_b = Client(a.port), Client(b.port)
    created = ksql(client_a, f"""
        CREATE STREAM views (page VARCHAR KEY, user VARCHAR, ms INT)
          WITH (kafka_topic='{views}', value_format='JSON', partitions=2);
        CREATE STREAM slow WITH (kafka_topic='{slow}') AS
          SELECT page, user, ms FROM views WHERE ms > 10;
        CREATE TABLE per_page WITH (kafka_topic='{per_page}') AS
          SELECT page, COUNT(*) AS n FROM views GROUP BY page;""")
    assert [c["commandSequenceNumber"] for c in created] == [0, 1, 2]  # offsets in the topic
    refused = ksql(client_a, "CREATE STREAM views (v INT) WITH (kafka_topic='x', "
                             "value_format='JSON');", status=400)
    assert "already exists" in refused["message"]  # refused, so never written:
    assert len(kafka.consume_all(command_topic(a.service.application_id), 3)) == 3

    # server B applied what A accepted
    shown = ksql(client_b, "SHOW STREAMS; SHOW TABLES; SHOW QUERIES;")
    assert sorted(s["name"] for s in shown[0]["streams"]) == ["SLOW", "VIEWS"]
    assert [t["name"] for t in shown[1]["tables"]] == ["PER_PAGE"]
    assert sorted(q["sinks"][0] for q in shown[2]["queries"]) == ["PER_PAGE", "SLOW"]

    # the queries' two partitions are split: one runs on each server
    store = f"{a.service.engine.sources['PER_PAGE'].query_id}-Aggregate-Aggregate-Materialize"
    wait_for("each server runs one partition", lambda: held(a, store) and held(b, store))
    assert held(a, store) | held(b, store) == {0, 1}
    on_a = next(p for p in ("home", "about", "docs", "faq", "blog")
                if partition_for_key(p.encode(), 2) in held(a, store))
    on_b = next(p for p in ("home", "about", "docs", "faq", "blog")
                if partition_for_key(p.encode(), 2) in held(b, store))
    kafka.produce(views, [view(on_a, "ann", 30), view(on_b, "bob", 5), view(on_a, "cy", 12)],
                  config={"partitioner": "murmur2_random"})
    ksql(client_a, f"INSERT INTO views (page, user, ms) VALUES ('{on_b}', 'dee', 40);")

    # B answers both keys: its own from its store, A's forwarded to A
    assert wait_for(f"{on_a} counted", lambda: pulled(client_b, on_a) == [on_a, 2])
    assert wait_for(f"{on_b} counted", lambda: pulled(client_b, on_b) == [on_b, 2])
    assert len(kafka.consume_all(slow, 3)) == 3  # the CSAS ran: ms 30, 12, 40

    # a push query on B streams a record produced after it started
    connection, response = open_stream(client_b, {"sql": "SELECT page, ms FROM slow EMIT CHANGES;"})
    try:
        assert json.loads(response.readline())["columnNames"] == ["PAGE", "MS"]
        kafka.produce(views, [view(on_b, "eve", 99)], config={"partitioner": "murmur2_random"})
        assert json.loads(response.readline()) == [on_b, 99]
    finally:
        connection.close()
    wait_for(f"{on_b} counted again", lambda: pulled(client_a, on_b) == [on_b, 3])

    # both stop; a corrupt record lands on the command topic; a new server resumes
    a.stop()
    b.stop()
    topic = command_topic(a.service.application_id)
    kafka.produce(topic, [(b"junk", b"{not json")])
    with caplog.at_level(logging.WARNING, logger="fluvial.sql.commands"):
        c = start("c")
    skipped = [r.getMessage() for r in caplog.records if "not a command" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].startswith(f"{topic} offset 3: not a command (not "
                                                       f"JSON"), skipped
    client_c = Client(c.port)
    queries = ksql(client_c, "SHOW QUERIES;")[0]["queries"]
    assert sorted(q["sinks"][0] for q in queries) == ["PER_PAGE", "SLOW"]
    kafka.produce(views, [view(on_a, "fay", 50)], config={"partitioner": "murmur2_random"})
    assert wait_for("the new record counted", lambda: pulled(client_c, on_a) == [on_a, 3])
    assert wait_for(f"{on_b} restored", lambda: pulled(client_c, on_b) == [on_b, 3])
    assert len(kafka.consume_all(slow, 5)) == 5  # 50 went through the CSAS, nothing twice
    # the INSERT VALUES was not replayed: the topic holds the 5 produced records and it
    assert len(kafka.consume_all(views, 6)) == 6
