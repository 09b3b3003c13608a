"""Interactive queries answered by standby replicas, on the embedded broker over real HTTP.

Two apps in one process with their own state directories are two hosts: with one standby
replica each keeps a copy of the other's tasks. ``replica="standby"`` reads that copy,
``replica="any"`` falls back to it when the running task's owner does not answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.wordcount.app import INPUT, build
from tests.unit.server.test_store_queries import get, instances, wait_for, wordcount_input

from fluvial.errors import ConfigError, StoreMovingError
from fluvial.io.client import TopicPartition
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.runtime.query import StoreQuery
from fluvial.runtime.standby import _Standby
from fluvial.server import AppServer


def counting_tasks(app: App) -> set[str]:
    thread = app.stream_thread
    return {t for t in list(thread.tasks) if t.startswith("1_")} if thread is not None else set()


def standbys_of(app: App) -> set[str]:
    thread = app.stream_thread
    assert thread is not None and thread.standbys is not None
    return set(list(thread.standbys.tasks))


def caught_up(app: App, broker: EmbeddedBroker, tasks: set[str]) -> bool:
    """``app`` keeps a standby of each of ``tasks``, applied to its changelog's end."""
    thread = app.stream_thread
    assert thread is not None and thread.standbys is not None
    copies = dict(thread.standbys.tasks)
    return tasks <= set(copies) and all(
        copies[t].positions[tp] == broker.watermarks(tp)[1]
        for t in tasks for tp in [TopicPartition("wc-sb-counts-changelog", int(t[2:]))])


def answered_by(query: StoreQuery, key: str) -> str | None:
    """Who answers ``key``; None while no allowed copy is known (the directory lags)."""
    try:
        return query.get_with_metadata(key).instance
    except StoreMovingError:
        return None


@contextlib.contextmanager
def standby_pair(tmp_path: Path) -> Iterator[tuple[App, AppServer, App, AppServer,
                                                   dict[str, int], EmbeddedBroker]]:
    """Two instances with one standby replica, each's copies of the other's tasks caught up."""
    broker, expected = wordcount_input()
    with instances(build, "wc-sb", broker, tmp_path, num_standby_replicas=1) as (
            a, server_a, b, server_b):
        wait_for(lambda: counting_tasks(a) and counting_tasks(b)
                 and caught_up(a, broker, counting_tasks(b))
                 and caught_up(b, broker, counting_tasks(a)), timeout=60)
        yield a, server_a, b, server_b, expected, broker


def test_a_standby_answers_when_asked_and_says_so(tmp_path: Path) -> None:
    with standby_pair(tmp_path) as (a, server_a, _, server_b, expected, _):
        at_b = f"127.0.0.1:{server_b.port}"
        on_a = [w for w in expected if a.query("counts").partition_of(w)
                in a.query("counts").local_views()]
        on_b = [w for w in expected if w not in on_a]
        assert on_a and on_b
        # a's own key from b's standby: routed to b, which says it is not the active copy
        wait_for(lambda: answered_by(a.query("counts", "standby"), on_a[0]) == at_b)
        answer = a.query("counts", "standby").get_with_metadata(on_a[0])
        assert (answer.value, answer.instance, answer.active, answer.lag) == (
            expected[on_a[0]], at_b, False, 0)
        # b's key from a's own standby copy
        answer = a.query("counts", replica="standby").get_with_metadata(on_b[0])
        assert (answer.value, answer.instance, answer.active, answer.lag) == (
            expected[on_b[0]], "local", False, 0)
        # the default and "any" read the running task
        answer = a.query("counts", replica="any").get_with_metadata(on_b[0])
        assert (answer.instance, answer.active, answer.lag) == (at_b, True, 0)

        status, body = get(server_a.port, f"/stores/counts/keys/{on_a[0]}?replica=standby")
        assert (status, body) == (200, {"key": on_a[0], "value": expected[on_a[0]], "metadata": {
            "partition": a.query("counts").partition_of(on_a[0]), "instance": at_b,
            "active": False, "lag": 0}})
        status, body = get(server_a.port, "/stores/counts/keys/nothing?replica=standby")
        assert status == 404 and body["metadata"]["active"] is False  # type: ignore[index]


def test_any_falls_back_to_a_standby_when_the_owner_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with standby_pair(tmp_path) as (a, _, b, _, expected, _):
        on_b = [w for w in expected if a.query("counts").partition_of(w)
                in b.query("counts").local_views()]
        # b's HTTP address stops answering (nothing listens on port 9 here)
        monkeypatch.setattr(StoreQuery, "owner_address", lambda self, p: "127.0.0.1:9")
        with pytest.raises(StoreMovingError, match=r"127\.0\.0\.1:9 did not answer"):
            a.query("counts").get(on_b[0])
        answer = a.query("counts", replica="any").get_with_metadata(on_b[0])
        assert (answer.value, answer.instance, answer.active) == (
            expected[on_b[0]], "local", False)


def test_a_standby_behind_its_changelog_answers_its_older_value_with_its_lag(
        tmp_path: Path) -> None:
    with standby_pair(tmp_path) as (a, _, b, _, expected, broker):
        word = next(w for w in expected if a.query("counts").partition_of(w)
                    in b.query("counts").local_views())
        thread = a.stream_thread
        assert thread is not None and thread.standbys is not None
        reader = thread.standbys._reader  # a's standbys' changelog reader
        assert reader is not None
        tp = TopicPartition("wc-sb-counts-changelog", a.query("counts").partition_of(word))
        reader.pause([tp])  # a's copy stops applying; b goes on counting
        for _ in range(3):
            broker.append(INPUT, None, word.encode(), 1)
        wait_for(lambda: b.query("counts").get(word) == expected[word] + 3)  # committed
        applied = thread.standbys.tasks[f"1_{tp.partition}"].positions[tp]
        behind = broker.watermarks(tp)[1] - applied
        assert behind >= 1

        def standby_read() -> tuple[object, bool, int | None]:
            answer = a.query("counts", "standby").get_with_metadata(word)
            return answer.value, answer.active, answer.lag

        wait_for(lambda: standby_read() == (expected[word], False, behind))  # stale, says so
        reader.resume([tp])
        wait_for(lambda: standby_read() == (expected[word] + 3, False, 0))


def test_a_bad_replica_or_a_gathered_read_of_standbys_is_refused(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    app = App(build(), "wc-sb", broker=broker, state_dir=tmp_path)
    with pytest.raises(ConfigError, match="replica must be active, any or standby, got 'x'"):
        app.query("counts", replica="x")
    with pytest.raises(ConfigError, match="all reads running tasks only, not replica 'any'"):
        app.query("counts", replica="any").all()


def test_a_standbys_lag_is_the_changelog_it_has_not_applied() -> None:
    tp = TopicPartition("c", 0)
    standby = _Standby(None, {}, {tp: 5})  # type: ignore[arg-type]
    assert standby.lag(tp) is None  # not fetched yet
    standby.ends[tp] = 12
    assert standby.lag(tp) == 7
