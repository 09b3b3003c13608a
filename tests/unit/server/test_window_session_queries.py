"""Window and session store queries across two instances on the embedded broker, over HTTP.

Each key has ``n`` records 10 ms apart from 1000 ms and one at 1150 ms: tumbling windows of
100 ms count ``n`` at 1000 and 1 at 1100; sessions with a 50 ms gap are (1000, 1000 + 10(n-1))
with ``n`` and (1150, 1150) with 1. Either instance answers every key with its owner's rows.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.server.test_store_queries import get, instances, wait_for

from fluvial import SessionWindows, StreamsBuilder, TimeWindows, Topology, serdes
from fluvial.errors import ConfigError, StoreMovingError
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.runtime.query import LOCAL_HEADER
from fluvial.server import AppServer

KEYS = [f"k{i}" for i in range(20)]


def records(key: str) -> int:
    return int(key[1:]) % 3 + 1


def expected_windows(key: str) -> list[tuple[int, int]]:
    return [(1000, records(key)), (1100, 1)]


def expected_sessions(key: str) -> list[tuple[tuple[int, int], int]]:
    return [((1000, 1000 + 10 * (records(key) - 1)), records(key)), ((1150, 1150), 1)]


def build() -> Topology:
    builder = StreamsBuilder()
    grouped = builder.stream("events", key_serde=serdes.String(),
                             value_serde=serdes.String()).group_by_key()
    grouped.windowed_by(TimeWindows.of_size_and_grace(100, 10_000)).count(
        materialized="per-window")
    grouped.windowed_by(SessionWindows.of_inactivity_gap_and_grace(50, 10_000)).count(
        materialized="per-session")
    grouped.count(materialized="totals")
    return builder.build()


def answers_everything(app: App) -> bool:
    try:
        return all(app.query("per-window").fetch(k, 0, 5000) == expected_windows(k)
                   and app.query("per-session").sessions(k) == expected_sessions(k)
                   for k in KEYS)
    except StoreMovingError:
        return False  # the directory has not seen the other instance yet


@pytest.fixture
def two_instances(tmp_path: Path) -> Iterator[tuple[App, AppServer, App, AppServer]]:
    broker = EmbeddedBroker()
    broker.create_topic("events", 2)
    for key in KEYS:
        for i in range(records(key)):
            broker.append("events", key.encode(), b"x", 1000 + 10 * i)
    for key in KEYS:
        broker.append("events", key.encode(), b"x", 1150)
    with instances(build, "ws", broker, tmp_path) as (a, server_a, b, server_b):
        wait_for(lambda: a.query("per-window").local_stores()
                 and b.query("per-window").local_stores())
        wait_for(lambda: answers_everything(a) and answers_everything(b))
        yield a, server_a, b, server_b


def owned_by(query_app: App, owner: App, store: str) -> list[str]:
    query = query_app.query(store)
    return [k for k in KEYS if query.partition_of(k) in owner.query(store).local_stores()]


def test_window_and_session_reads_are_routed_to_the_owner(two_instances) -> None:
    a, server_a, b, server_b = two_instances
    remote = owned_by(a, b, "per-window")
    assert remote and len(remote) < len(KEYS)  # both instances hold some keys
    key = remote[0]
    answer = a.query("per-window").fetch_with_metadata(key, 1050, 5000)
    assert answer.rows == [(1100, 1)]  # window starts in [from, to] only
    assert answer.instance == f"127.0.0.1:{server_b.port}"
    assert a.query("per-window").fetch(key, 0, 999) == []
    sessions = a.query("per-session").sessions_with_metadata(key)
    assert sessions.rows == expected_sessions(key)
    assert sessions.instance == f"127.0.0.1:{server_b.port}"
    assert a.query("per-session").fetch(key) == expected_sessions(key)

    status, body = get(server_a.port, f"/stores/per-window/keys/{key}/windows?from=0&to=5000")
    assert status == 200
    assert body == {"key": key, "windows": [[1000, records(key)], [1100, 1]], "metadata": {
        "partition": answer.partition, "instance": f"127.0.0.1:{server_b.port}",
        "active": True, "lag": 0}}
    status, body = get(server_a.port, f"/stores/per-session/keys/{key}/sessions")
    assert status == 200
    assert body["sessions"] == [[s, e, n] for (s, e), n in  # type: ignore[index]
                                expected_sessions(key)]
    # a forwarded query answers from this instance only: A does not run B's partition
    for path in (f"/stores/per-window/keys/{key}/windows?from=0&to=5000",
                 f"/stores/per-session/keys/{key}/sessions"):
        status, body = get(server_a.port, path, headers={LOCAL_HEADER: "1"})
        assert status == 503 and body["error"].startswith("moving, retry")  # type: ignore[index]


def test_every_keys_windows_in_a_time_range_are_gathered_from_both_instances(
        two_instances) -> None:
    a, server_a, b, server_b = two_instances
    everything = sorted((((k, start), n) for k in KEYS for start, n in expected_windows(k)),
                        key=lambda row: (row[0][1], row[0][0]))  # by start, then key
    assert a.query("per-window").fetch_all(0, 5000) == everything
    assert b.query("per-window").fetch_all(1100, 1100) == [((k, 1100), 1) for k in sorted(KEYS)]
    assert a.query("per-window").fetch_all(1001, 1099) == []

    assert get(server_a.port, "/stores/per-window/windows?from=0&to=5000&all=true") == (
        200, {"rows": [[k, start, n] for (k, start), n in everything]})
    # without all=true: this instance's part, as the others gather it
    status, body = get(server_b.port, "/stores/per-window/windows?from=1000&to=1000")
    assert status == 200
    assert body["partitions"] == sorted(b.query("per-window").local_stores())  # type: ignore[index]
    assert sorted(body["rows"]) == sorted(  # type: ignore[index]
        [k, 1000, records(k), a.query("per-window").partition_of(k)]
        for k in owned_by(a, b, "per-window"))


def test_a_call_the_stores_kind_does_not_answer_names_the_ones_it_does(two_instances) -> None:
    a, _, _, _ = two_instances
    with pytest.raises(ConfigError, match="store 'per-window' is a window store: it answers "
                                          r"fetch\(key, time_from, time_to\), "
                                          r"fetch_all\(time_from, time_to\), not get"):
        a.query("per-window").get("k1")
    with pytest.raises(ConfigError, match="'per-session' is a session store: it answers "
                                          r"fetch\(key\), sessions\(key\), not fetch"):
        a.query("per-session").fetch("k1", 0, 10)
    with pytest.raises(ConfigError, match="'totals' is a kv store: it answers get"):
        a.query("totals").sessions("k1")
    with pytest.raises(ConfigError, match=r"'per-window' is a window store.*not all"):
        a.query("per-window").all()
    with pytest.raises(ValueError, match="a window fetch needs both time_from and time_to"):
        a.query("per-window").fetch("k1")


def test_malformed_window_and_session_requests_get_a_one_line_reason(two_instances) -> None:
    _, server_a, _, _ = two_instances
    port = server_a.port
    windows = "/stores/per-window/keys/k1/windows"
    assert get(port, f"{windows}?from=0&to=10", token=None)[0] == 401
    assert get(port, "/stores/per-session/keys/k1/sessions", token="wrong")[0] == 401
    assert get(port, f"{windows}?from=0") == (400, {
        "error": "missing parameter(s) to: give from and to, window start times in ms"})
    assert get(port, windows)[1] == {
        "error": "missing parameter(s) from, to: give from and to, window start times in ms"}
    query = urllib.parse.urlencode({"from": "yesterday", "to": "10"})
    assert get(port, f"{windows}?{query}") == (400, {
        "error": "from and to must be integer ms, got from='yesterday', to='10'"})
    assert get(port, f"{windows}?from=0&to=1&step=2") == (400, {
        "error": "unknown parameter(s): step; known: from, to, replica"})
    assert get(port, "/stores/per-session/keys/k1/sessions?x=1") == (
        400, {"error": "unknown parameter(s): x; known: replica"})
    status, body = get(port, "/stores/per-window/keys/k1/sessions")
    assert status == 400 and "'per-window' is a window store" in body["error"]  # type: ignore[index]
    status, body = get(port, "/stores/per-session/keys/k1")
    assert status == 400 and "'per-session' is a session store" in body["error"]  # type: ignore[index]
    status, body = get(port, "/stores/totals/keys/k1/windows?from=0&to=1")
    assert status == 400 and "'totals' is a kv store" in body["error"]  # type: ignore[index]
    assert get(port, "/stores/nope/keys/k1/sessions") == (404, {"error": "no store 'nope'"})
    every = "/stores/per-window/windows"
    assert get(port, f"{every}?from=0") == (400, {
        "error": "missing parameter(s) to: give from and to, window start times in ms"})
    assert get(port, f"{every}?from=0&to=x") == (400, {
        "error": "from and to must be integer ms, got from='0', to='x'"})
    assert get(port, f"{every}?from=0&to=1&all=yes") == (400, {
        "error": "all must be true or false, got 'yes'"})
    assert get(port, f"{every}?from=0&to=1&key=k1") == (400, {
        "error": "unknown parameter(s): key; known: from, to, all, replica"})
    assert get(port, f"{every}?from=0&to=1&replica=standby") == (400, {
        "error": "a gathered read reads running tasks only: replica must be active, "
                 "got 'standby'"})
    status, body = get(port, "/stores/per-session/windows?from=0&to=1")
    assert status == 400 and body["error"].endswith("not fetch_all(time_from, time_to)")  # type: ignore[index]
