"""The SQL catalog in the command topic, on the embedded broker: servers of one service id apply
each other's statements, a server started later rebuilds catalog and queries from the topic,
INSERT VALUES is never replayed, and a corrupt record is skipped with one warning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluvial.io.client import TopicPartition
from fluvial.io.embedded import EmbeddedBroker
from fluvial.sql.commands import command_topic
from fluvial.sql.errors import SqlError
from fluvial.sql.service import SqlService

SERVICE = "cmd-test"
TOPIC = command_topic(SERVICE)


@pytest.fixture
def services() -> Iterator[list[SqlService]]:
    started: list[SqlService] = []
    yield started
    for service in started:
        service.close()


def start(services: list[SqlService], broker: EmbeddedBroker, state: Path) -> SqlService:
    services.append(SqlService(broker=broker, application_id=SERVICE, state_dir=str(state)))
    return services[-1]


def end_offset(service: SqlService, topic: str) -> int:
    consumer = service.clients.consumer(None, {})
    try:
        return consumer.watermarks(TopicPartition(topic, 0), 5.0)[1]
    finally:
        consumer.close()


def test_the_catalog_is_shared_and_rebuilt_from_the_topic(
        services: list[SqlService], tmp_path: Path) -> None:
    assert TOPIC == "_confluent-ksql-cmd-test_command_topic"
    broker = EmbeddedBroker()
    a, b = start(services, broker, tmp_path / "a"), start(services, broker, tmp_path / "b")
    done = a.execute("CREATE STREAM clicks (user VARCHAR KEY, n INT) WITH "
                     "(kafka_topic='clicks', value_format='JSON');"
                     "CREATE TABLE totals AS SELECT user, SUM(n) AS s FROM clicks GROUP BY user;"
                     "CREATE STREAM big AS SELECT * FROM clicks WHERE n > 5;"
                     "INSERT INTO clicks (user, n) VALUES ('ann', 7);")
    assert [d.sequence for d in done] == [0, 1, 2, -1]  # INSERT VALUES: not a command
    with pytest.raises(SqlError, match="already exists"):
        a.execute("CREATE STREAM clicks (v INT) WITH (kafka_topic='x', value_format='JSON');")
    assert end_offset(a, TOPIC) == 3  # the refused statement was not written

    # B applied A's statements: the same catalog, the same query ids
    streams, tables, queries = (e.result.rows for e in b.execute(
        "SHOW STREAMS; SHOW TABLES; SHOW QUERIES;"))  # a statement sees all written before
    assert [row[0] for row in streams + tables] == ["BIG", "CLICKS", "TOTALS"]
    assert [row[0] for row in queries] == list(a.engine.queries)
    (query_id,) = [q for q in b.engine.queries if q.startswith("CSAS_BIG")]
    b.execute(f"TERMINATE {query_id};")
    a.command_topic.catch_up(5.0)
    assert list(a.engine.queries) == list(b.engine.queries) == [
        a.engine.sources["TOTALS"].query_id]
    a.close()
    b.close()

    # a server started later rebuilds both from the topic; nothing is inserted again
    c = start(services, broker, tmp_path / "c")
    assert sorted(c.engine.sources) == ["BIG", "CLICKS", "TOTALS"]
    assert list(c.engine.queries) == [c.engine.sources["TOTALS"].query_id]
    assert c.app is not None and c.app.topology is not None  # the query runs again
    assert end_offset(c, "clicks") == 1
    totals = c.engine.sources["TOTALS"].query_id
    assert c.commands == {"stream/`CLICKS`/create": "Stream created",
                          "table/`TOTALS`/create": f"Created query with ID {totals}",
                          "stream/`BIG`/create": f"Created query with ID {query_id}",
                          f"terminate/{query_id}/execute": "Query terminated."}


def test_a_corrupt_command_is_skipped_with_one_warning(
        services: list[SqlService], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker = EmbeddedBroker()
    a = start(services, broker, tmp_path / "a")
    a.execute("CREATE STREAM s (v INT) WITH (kafka_topic='s', value_format='JSON');")
    a.close()
    producer = a.clients.producer({})
    producer.produce(TOPIC, b"junk", b"[1, 2", 0, partition=0)
    producer.produce(TOPIC, b"junk", b'{"statement": "SHOW STREAMS;"}', 0, partition=0)
    producer.flush(5.0)
    with caplog.at_level(logging.WARNING, logger="fluvial.sql.commands"):
        b = start(services, broker, tmp_path / "b")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"{TOPIC} offset 1: not a command (not JSON")
    assert warnings[1] == (f"{TOPIC} offset 2: not one CREATE, DROP, INSERT INTO ... SELECT "
                           f"or TERMINATE statement: 'SHOW STREAMS;'; skipped")
    assert list(b.engine.sources) == ["S"]  # what came before is there, and it goes on:
    b.execute("CREATE STREAM t (v INT) WITH (kafka_topic='t', value_format='JSON');")
    assert sorted(b.engine.sources) == ["S", "T"]


def test_of_two_conflicting_commands_the_later_fails_on_every_server(
        services: list[SqlService], tmp_path: Path) -> None:
    """Two servers may each accept a statement the other's makes invalid (written at once):
    every server applies the first and skips the second, whose writer answers its error."""
    broker = EmbeddedBroker()
    a, b = start(services, broker, tmp_path / "a"), start(services, broker, tmp_path / "b")
    create = "CREATE STREAM s (v INT) WITH (kafka_topic='s', value_format='JSON');"
    first = a.command_topic.submit(create, "stream/`S`/create", 5.0)
    second = b.command_topic.submit(create, "stream/`S`/create", 5.0)  # checked on no copy
    assert (first[0], first[1].message) == (0, "Stream created")
    assert second[0] == 1 and isinstance(second[1], SqlError)
    assert str(second[1]) == ("line 1:1: Cannot add stream 'S': A stream with the same name "
                              "already exists")
    a.command_topic.catch_up(5.0)
    assert a.commands == b.commands == {"stream/`S`/create": "Stream created"}
