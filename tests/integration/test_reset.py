"""`fluvial reset` on a real broker: an app processes, is reset, and reprocesses its input to
the very same results; while it runs, the reset refuses."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import build
from tests.integration.kafka_helpers import Consumed, KafkaTestBroker, wait_until
from tests.integration.wordcount_support import REPO, make_lines, word_counts
from tests.unit.sql.ksql_http import Client, ksql, pull_until

from fluvial.runtime.app import App
from fluvial.server.ksql import KsqlServer
from fluvial.sql.service import SqlService


def fluvial(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=180,
                          env={**os.environ,  # this checkout's code, not an installed one
                               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])})


def members_of(kafka: KafkaTestBroker, group: str) -> list[object]:
    description = kafka.admin().describe_consumer_groups([group])[group].result(timeout=30)
    return list(description.members)


def counts_by_word(records: list[Consumed]) -> dict[str, list[int]]:
    """Every count each word got, in the order they were written (a word has one partition)."""
    out: dict[str, list[int]] = collections.defaultdict(list)
    for m in sorted(records, key=lambda m: (m.partition, m.offset)):
        assert m.key is not None and m.value is not None
        out[m.key.decode()].append(int.from_bytes(m.value, "big", signed=True))
    return dict(out)


def test_reset_then_reprocess_gives_identical_results(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    lines = make_lines(0, 120)
    kafka.produce(source, lines)
    expected = word_counts(lines)
    outputs = sum(expected.values())  # no record cache: one output per word counted
    state = tmp_path / "state"
    settings = {"bootstrap_servers": kafka.bootstrap_servers, "state_dir": state,
                "record_cache": False, "commit_interval_ms": 200}
    reset = ["reset", app_id, "-b", kafka.bootstrap_servers, "--input-topics", source]

    with App(build(source, sink), app_id, **settings) as app:
        wait_until(lambda: app.store("counts").to_dict() == expected or app.error,
                   timeout=120, message=lambda: f"counts: {app.store('counts').to_dict()}")
        refused = fluvial(*reset)
        assert app.error is None, app.error
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(
        f"fluvial: error: application {app_id!r} still has 1 active member(s) in its consumer "
        f"group (")
    wait_until(lambda: not members_of(kafka, app_id), timeout=60,
               message="the closed app to leave its group")
    first = kafka.consume_all(sink, outputs, timeout=60)
    assert counts_by_word(first) == {w: list(range(1, n + 1)) for w, n in expected.items()}

    internal = {f"{app_id}-counts-changelog"} | {
        t for t in kafka.admin().list_topics(timeout=10).topics
        if t.startswith(f"{app_id}-") and t.endswith("-repartition")}
    assert len(internal) == 2, internal
    committed = kafka.committed_offsets(app_id, source)  # -1001: none (a partition unused)
    assert sum(max(offset, 0) for offset in committed.values()) == len(lines)

    dry = fluvial(*reset, "--dry-run", "--local-state-dir", str(state))
    assert dry.returncode == 0, dry.stderr
    for p, offset in committed.items():
        was = offset if offset >= 0 else "none"
        assert f"    {source}[{p}]: {was} -> 0" in dry.stdout.splitlines(), dry.stdout
    assert f"  internal topics to delete: {', '.join(sorted(internal))}" in dry.stdout
    assert dry.stdout.endswith("dry run: nothing changed\n")
    assert kafka.committed_offsets(app_id, source) == committed
    assert internal <= set(kafka.admin().list_topics(timeout=10).topics)

    done = fluvial(*reset, "--local-state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert kafka.committed_offsets(app_id, source) == {0: 0, 1: 0}
    assert not internal & set(kafka.admin().list_topics(timeout=10).topics)
    assert [p.name for p in (state / app_id).iterdir()] == [".lock"]

    # the second run reads the input again from the start, with empty state: the same
    # counts, in the same order, after the first run's outputs
    with App(build(source, sink), app_id, **settings) as app:
        both = kafka.consume_all(sink, 2 * outputs, timeout=120)
        assert app.error is None, app.error
    assert len(both) == 2 * outputs
    first_offsets = {(m.partition, m.offset) for m in first}
    second = [m for m in both if (m.partition, m.offset) not in first_offsets]
    assert counts_by_word(second) == counts_by_word(first)


def test_malformed_reset_flags_are_one_line(kafka: KafkaTestBroker) -> None:
    b = ["-b", kafka.bootstrap_servers]
    cases = {
        ("--to-datetime", "yesterday"): "fluvial: error: --to-datetime 'yesterday' is not an "
                                        "ISO 8601 date-time (e.g. 2026-12-03T10:00:00Z or "
                                        "2026-12-03T11:00:00+01:00)",
        ("--by-duration", "15m"): "fluvial: error: --by-duration '15m' is not an ISO 8601 "
                                  "duration (e.g. PT15M, PT2H, P1DT12H)",
        ("--to-earliest", "--by-duration", "PT1H"): "fluvial: error: --to-earliest and "
                                                    "--by-duration exclude each other: give one",
        ("--input-topics", "no-such-topic-x"): "fluvial: error: --input-topics: topic(s) "
                                               "no-such-topic-x do not exist",
    }
    for flags, error in cases.items():
        result = fluvial("reset", "some-app", *b, *flags)
        assert (result.returncode, result.stderr) == (2, error + "\n"), flags



def test_a_sql_services_reset_deletes_its_instance_directory_and_when_asked_its_catalog(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """A SQL service (its id is its application id) runs a GROUP BY query and serves pull
    queries, so it has a command topic and an instance directory. A plain reset deletes the
    directory and keeps the catalog (a server started again replays it and reprocesses);
    with --sql-command-topic the catalog goes too: the next server starts with no
    statements."""
    service_id, views, per_page = unique_topic("sql"), unique_topic("views"), unique_topic("pp")
    settings = {"application_id": service_id, "bootstrap_servers": kafka.bootstrap_servers,
                "state_dir": str(tmp_path / "state"), "commit_interval_ms": 100}
    server = KsqlServer(SqlService(**settings), port=0).start()
    try:
        client = Client(server.port)
        ksql(client, f"""
            CREATE STREAM views (page VARCHAR KEY, ms INT)
              WITH (kafka_topic='{views}', value_format='JSON', partitions=2);
            CREATE TABLE per_page WITH (kafka_topic='{per_page}') AS
              SELECT page, COUNT(*) AS n FROM views GROUP BY page;""")
        kafka.produce(views, [(b"home", b'{"MS": 3}'), (b"about", b'{"MS": 4}')],
                      config={"partitioner": "murmur2_random"})
        pull_until(client, "SELECT * FROM per_page WHERE page = 'home';", rows=1)
    finally:
        server.stop()
    wait_until(lambda: not members_of(kafka, service_id), timeout=60,
               message="the stopped server to leave its group")

    def topics() -> set[str]:
        return set(kafka.admin().list_topics(timeout=10).topics)

    command, directory = f"_confluent-ksql-{service_id}_command_topic", f"{service_id}-instances"
    assert {command, directory} <= topics()
    internal = {t for t in topics() if t.startswith(f"{service_id}-")}
    assert len(internal) >= 2, internal  # the directory and the count's changelog at least

    reset = ["reset", service_id, "-b", kafka.bootstrap_servers, "--input-topics", views]
    kept = fluvial(*reset)
    assert kept.returncode == 0, kept.stderr
    assert f"  internal topics to delete: {', '.join(sorted(internal))}" in kept.stdout, (
        kept.stdout)
    assert "SQL command topic" not in kept.stdout
    assert not internal & topics()
    assert command in topics()

    missing = fluvial("reset", "no-such-service", "-b", kafka.bootstrap_servers,
                      "--sql-command-topic")
    assert (missing.returncode, missing.stderr) == (2, (
        "fluvial: error: --sql-command-topic: no topic "
        "'_confluent-ksql-no-such-service_command_topic': is 'no-such-service' the id of a "
        "SQL service (fluvial sql-server --application-id)?\n"))
    dropped = fluvial(*reset, "--sql-command-topic")
    assert dropped.returncode == 0, dropped.stderr
    assert (f"  SQL command topic to delete (every statement forgotten): {command}"
            in dropped.stdout.splitlines())
    wait_until(lambda: command not in topics(), timeout=30, message="the command topic to go")

    again = SqlService(**settings)
    try:
        assert again.engine.sources == {}  # nothing to replay: the catalog is gone
    finally:
        again.close()
