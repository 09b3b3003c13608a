"""Interactive queries across two instances on the embedded broker, over real HTTP.

Two apps with their own state directories in one process are two instances of one
application: each runs half the tasks and serves its own port; either answers every key.
"""

from __future__ import annotations

import collections
import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from examples.wordcount.app import INPUT, OUTPUT, build, split_words

from fluvial import Topology, serdes
from fluvial.errors import StoreMovingError
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.runtime.query import LOCAL_HEADER, key_from_text
from fluvial.server import AppServer

TOKEN = "s3cret"


def get(port: int, path: str, token: str | None = TOKEN,
        headers: dict[str, str] | None = None) -> tuple[int, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={
        **({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def answers_everything(app: App, expected: dict[str, int]) -> bool:
    try:
        return all(app.query("counts").get(w) == n for w, n in expected.items())
    except StoreMovingError:
        return False  # the directory has not seen the other instance yet


@contextlib.contextmanager
def instances(build: Callable[[], Topology], application_id: str, broker: EmbeddedBroker,
              tmp_path: Path, **settings: object) -> Iterator[tuple[App, AppServer, App,
                                                                   AppServer]]:
    """Two started instances of one application, each with its own state and HTTP port."""
    apps, servers = [], []
    try:
        for name in ("a", "b"):
            app = App(build(), application_id, broker=broker, state_dir=tmp_path / name,
                      commit_interval_ms=100, **settings)  # type: ignore[arg-type]
            servers.append(AppServer(app, port=0, token=TOKEN).start())
            apps.append(app.start())
        yield apps[0], servers[0], apps[1], servers[1]
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
        for app in apps:
            assert app.error is None


def wordcount_input() -> tuple[EmbeddedBroker, dict[str, int]]:
    """A broker holding 200 lines for WordCount, and the counts they make."""
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 2)
    broker.create_topic(OUTPUT, 2)
    lines = [f"w{i % 40} w{(i * 7) % 40}" for i in range(200)]
    for line in lines:
        broker.append(INPUT, None, line.encode(), 1)
    return broker, dict(collections.Counter(w for line in lines for w in split_words(line)))


@pytest.fixture
def two_instances(tmp_path: Path) -> Iterator[tuple[App, AppServer, App, AppServer,
                                                    dict[str, int]]]:
    broker, expected = wordcount_input()
    with instances(build, "wc", broker, tmp_path) as (a, server_a, b, server_b):
        wait_for(lambda: a.store("counts").to_dict().keys() | b.store("counts").to_dict().keys()
                 == expected.keys() and a.query("counts").local_views()
                 and b.query("counts").local_views())
        wait_for(lambda: answers_everything(a, expected) and answers_everything(b, expected))
        yield a, server_a, b, server_b, expected


def test_each_instance_answers_every_key_with_its_owners_value(two_instances) -> None:
    a, server_a, b, server_b, expected = two_instances
    owned_by_b = [w for w in expected if a.query("counts").partition_of(w)
                  in b.query("counts").local_views()]
    assert owned_by_b and len(owned_by_b) < len(expected)  # both hold some keys
    word = owned_by_b[0]
    answer = a.query("counts").get_with_metadata(word)
    assert answer.value == expected[word]
    assert answer.instance == f"127.0.0.1:{server_b.port}"
    assert sorted(a.query("counts").all()) == sorted(expected.items())
    assert dict(b.query("counts").range("w1", "w2")) == {
        w: n for w, n in expected.items() if "w1" <= w <= "w2"}

    status, body = get(server_a.port, f"/stores/counts/keys/{word}")
    assert status == 200
    assert body == {"key": word, "value": expected[word], "metadata": {
        "partition": answer.partition, "instance": f"127.0.0.1:{server_b.port}",
        "active": True, "lag": 0}}
    # a forwarded query answers from this instance only: A does not run B's partition
    status, body = get(server_a.port, f"/stores/counts/keys/{word}",
                       headers={LOCAL_HEADER: "1"})
    assert status == 503 and body["error"].startswith("moving, retry")  # type: ignore[index]

    status, body = get(server_b.port, "/stores/counts?all=true")
    assert status == 200
    assert sorted(map(tuple, body["rows"])) == sorted(expected.items())  # type: ignore[index]
    status, local = get(server_b.port, "/stores/counts")
    assert status == 200
    assert {r[0] for r in local["rows"]} == set(b.store("counts").to_dict())  # type: ignore[index]
    query = urllib.parse.urlencode({"from": "w1", "to": "w2", "all": "true"})
    status, body = get(server_a.port, f"/stores/counts?{query}")
    assert dict(map(tuple, body["rows"])) == {  # type: ignore[index]
        w: n for w, n in expected.items() if "w1" <= w <= "w2"}


def test_bad_requests_get_a_one_line_reason(two_instances) -> None:
    _, server_a, _, _, _ = two_instances
    port = server_a.port
    assert get(port, "/stores/counts/keys/w1", token=None)[0] == 401
    assert get(port, "/stores/counts/keys/w1", token="wrong")[0] == 401
    assert get(port, "/healthz", token=None)[0] == 200  # probes stay open
    assert get(port, "/stores/nope/keys/w1") == (404, {"error": "no store 'nope'"})
    status, body = get(port, "/stores/counts/keys/absent")
    assert (status, body["error"]) == (404, "no key 'absent' in store 'counts'")  # type: ignore[index]
    assert get(port, "/stores/counts/keys/w1?x=1") == (
        400, {"error": "unknown parameter(s): x; known: replica"})
    assert get(port, "/stores/counts/keys/w1?replica=stale") == (
        400, {"error": "replica must be active, any or standby, got 'stale'"})
    assert get(port, "/stores/counts?all=true&replica=any") == (
        400, {"error": "a gathered read reads running tasks only: replica must be active, "
                       "got 'any'"})
    assert get(port, "/stores/counts?from=a")[0] == 400
    assert get(port, "/stores/counts?all=maybe") == (
        400, {"error": "all must be true or false, got 'maybe'"})


def test_keys_in_urls_are_read_with_the_stores_key_serde() -> None:
    assert key_from_text(serdes.Int64(), "42") == 42
    assert key_from_text(serdes.Json(), '{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="'x' is not a valid Int64Serde key"):
        key_from_text(serdes.Int64(), "x")
