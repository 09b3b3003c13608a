"""`fluvial reset` on the embedded broker, and how it reads its time flags."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from examples.wordcount.app import INPUT, OUTPUT, build, split_words
from tests.unit.cli.test_first_hour import run_walkthrough
from tests.unit.docs.doc_blocks import expected_output, shell_blocks

from fluvial.errors import ConfigError
from fluvial.io.client import TopicPartition
from fluvial.io.embedded import EmbeddedBroker, EmbeddedMessage
from fluvial.io.embedded.group_admin import EmbeddedGroupAdmin
from fluvial.io.embedded.shared import own
from fluvial.runtime.app import App
from fluvial.runtime.reset import (
    apply_reset,
    internal_topics,
    parse_datetime,
    parse_duration,
    parse_position,
    plan_reset,
)

REPO = Path(__file__).resolve().parents[3]


def fluvial(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ,  # this checkout's code, not an installed one
                               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])})


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT15M", 900), ("pt2h", 7200), ("P1DT12H", 129_600), ("PT0.5S", 0.5), ("P2D", 172_800),
    ("PT1H30M", 5400)])
def test_durations_read_as_iso_8601(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15m", "P", "PT", "", "P1H", "PT-5M", "1 hour"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="is not an ISO 8601 duration"):
        parse_duration(text)


def test_datetimes_without_a_zone_are_utc() -> None:
    assert parse_datetime("2026-12-03T10:00:00") == dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)
    assert parse_datetime("2026-12-03T11:00:00+01:00").timestamp() == \
        parse_datetime("2026-12-03T10:00:00Z").timestamp()
    with pytest.raises(ConfigError, match="--to-datetime 'tomorrow' is not an ISO 8601"):
        parse_datetime("tomorrow")


def test_the_position_is_one_of_the_flags() -> None:
    now = dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)
    assert parse_position(False, None, None).timestamp_ms is None  # earliest by default
    back = parse_position(False, None, "PT1H", now)
    assert back.timestamp_ms == int(now.timestamp() * 1000) - 3_600_000
    with pytest.raises(ConfigError, match="--to-datetime and --by-duration exclude each other"):
        parse_position(False, "2026-12-03T10:00:00", "PT1H")


def test_offsets_by_time_follow_kafkas_time_index(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic("t", 1)
    for stamp in (10, 30, 20, 40):
        broker.append("t", None, b"x", stamp)
    admin = EmbeddedGroupAdmin(broker)
    tp = TopicPartition("t", 0)
    # the first offset whose timestamp is at or after the time; the end when none is
    assert [admin.offsets_at([tp], ts)[tp] for ts in (0, 10, 11, 25, 31, 41)] == \
        [0, 0, 1, 1, 3, 4]
    assert admin.offsets_at([tp], None)[tp] == 0


def test_reset_on_the_embedded_broker_reprocesses_to_the_same_results(tmp_path: Path) -> None:
    data, state = tmp_path / "data", tmp_path / "state"
    broker = EmbeddedBroker(data_dir=data)
    broker.create_topic(INPUT, 2)
    broker.create_topic(OUTPUT, 2)
    lines = [f"alpha beta {i % 5} gamma" for i in range(100)]
    for line in lines:
        broker.append(INPUT, None, line.encode(), 1)
    expected = dict(collections.Counter(w for line in lines for w in split_words(line)))

    def run_once() -> dict[bytes | None, list[bytes | None]]:
        """Run the app until its counts are complete; the counts it wrote, per word."""
        before = [len(broker.records(OUTPUT, p)) for p in (0, 1)]

        def written() -> list[list[EmbeddedMessage]]:
            return [broker.records(OUTPUT, p)[before[p]:] for p in (0, 1)]

        with App(build(), "wc", broker=broker, state_dir=state, record_cache=False) as app:
            wait_for(lambda: app.store("counts").to_dict() == expected or app.error)
            wait_for(lambda: sum(map(len, written())) >= sum(expected.values()))
        assert app.error is None
        per_word = collections.defaultdict(list)
        for m in (m for part in written() for m in part):  # a word is on one partition
            per_word[m.key()].append(m.value())
        return dict(per_word)

    first = run_once()
    internal = sorted(t for t in broker.partition_counts() if t.startswith("wc-"))
    assert len(internal) == 2
    broker.close()

    with own(data):  # an app running on the directory owns it: the reset refuses
        refused = fluvial("reset", "wc", "--embedded", str(data))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"fluvial: error: the embedded broker in {data} is in "
                                     f"use by another process")

    done = fluvial("reset", "wc", "--embedded", str(data), "--local-state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert f"  internal topics to delete: {', '.join(internal)}" in done.stdout
    broker = EmbeddedBroker(data_dir=data)
    assert not set(internal) & set(broker.partition_counts())
    assert broker.committed("wc", [TopicPartition(INPUT, 0), TopicPartition(INPUT, 1)]) == \
        {TopicPartition(INPUT, 0): 0, TopicPartition(INPUT, 1): 0}
    assert run_once() == first


def test_the_operations_page_reset_walkthrough_prints_what_it_says(tmp_path: Path) -> None:
    script = shell_blocks(REPO / "docs" / "operations.md")["reset"]
    (tmp_path / "examples").symlink_to(REPO / "examples")  # the page runs from a checkout
    result = run_walkthrough(script, tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(script), result.stderr
    assert "Traceback" not in result.stderr


def test_the_operations_page_sql_reset_walkthrough_prints_what_it_says(tmp_path: Path) -> None:
    script = shell_blocks(REPO / "docs" / "operations.md")["reset-sql"]
    (tmp_path / "fluvial").symlink_to(REPO / "src" / "fluvial")  # this checkout's code
    result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, text=True,
                            capture_output=True, timeout=240, env={
                                **os.environ, "PYTHONPATH": str(tmp_path),
                                "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                        f"{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(script), result.stderr
    assert "Traceback" not in result.stderr


def test_internal_topics_are_found_by_name_as_kafkas_tool_does() -> None:
    topics = ["wc-counts-changelog", "wc-counts-repartition", "wc-dead-letter", "wc",
              "wc-join-subscription-registration-topic", "wc-join-subscription-response-topic",
              "wc-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000012-topic", "other-x-changelog",
              "TextLinesTopic", "wc-changelog", "wc-instances", "wc-eu-instances",
              "_confluent-ksql-wc_command_topic"]
    assert internal_topics("wc", topics) == [
        "wc-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000012-topic", "wc-counts-changelog",
        "wc-counts-repartition", "wc-instances", "wc-join-subscription-registration-topic",
        "wc-join-subscription-response-topic"]


def test_a_sql_services_command_topic_goes_only_when_asked_for() -> None:
    broker = EmbeddedBroker()
    for topic in ("_confluent-ksql-svc_command_topic", "svc-instances", "svc-q-changelog"):
        broker.create_topic(topic, 1)
    admin = EmbeddedGroupAdmin(broker)
    position = parse_position(False, None, None)
    plain = plan_reset(admin, "svc", None, position)
    assert (plain.internal_topics, plain.command_topic) == (
        ["svc-instances", "svc-q-changelog"], None)
    with pytest.raises(ConfigError, match="--sql-command-topic: no topic "
                                          "'_confluent-ksql-other_command_topic': is 'other' "
                                          "the id of a SQL service"):
        plan_reset(admin, "other", None, position, sql_command_topic=True)
    plan = plan_reset(admin, "svc", None, position, sql_command_topic=True)
    assert "  SQL command topic to delete (every statement forgotten): " \
           "_confluent-ksql-svc_command_topic" in plan.describe()
    apply_reset(admin, plan)
    assert set(broker.partition_counts()) == set()
