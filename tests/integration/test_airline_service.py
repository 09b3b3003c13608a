"""The airline microservice on a real broker: ``fluvial run examples.airline.service:build
--workers 3`` on a 10-partition input topic scores every flight exactly once (no faults
injected), and sends the malformed lines to the dead-letter topic.

(A model swapped mid-stream: test_ml_hot_swap.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from examples.airline.flights import flight_key, parse_line, read_lines
from examples.airline.replay import replay
from examples.airline.train import train
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until

from fluvial.ml import publish_model

REPO = Path(__file__).resolve().parents[2]
FLIGHTS = 3000
MALFORMED = ["", "hello, world", "1987,10,14"]


def test_three_workers_score_every_flight_once(kafka: KafkaTestBroker,
                                               unique_topic: Callable[[str], str],
                                               tmp_path: Path) -> None:
    lines = read_lines()
    model = train(lines[:3000], trees=10, seed=1, threads=1).model
    flights = lines[10000:10000 + FLIGHTS]
    keys = [flight_key(parse_line(x)) for x in flights]
    assert len(set(keys)) == FLIGHTS  # the file's flight keys are unique
    source, sink, models = unique_topic("in"), unique_topic("out"), unique_topic("models")
    dead, app_id = unique_topic("dead"), unique_topic("app")
    kafka.create_topic(source, partitions=10)
    kafka.create_topic(sink, partitions=10)
    kafka.create_topic(dead, partitions=1)
    publish_model(kafka.bootstrap_servers, models, model.to_bytes())

    stream = list(flights)
    for i, bad in enumerate(MALFORMED):
        stream.insert(1000 * i + 500, bad)
    replay(kafka.bootstrap_servers, source, stream, progress=False)
    assert {p for p in range(10)} == set(kafka.topic_partitions(source))

    log = tmp_path / "service.log"
    env = {**os.environ, "FLUVIAL_AIRLINE_INPUT": source, "FLUVIAL_AIRLINE_OUTPUT": sink,
           "FLUVIAL_AIRLINE_MODELS": models,
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fluvial", "run", "examples.airline.service:build",
             "-a", app_id, "-b", kafka.bootstrap_servers, "--workers", "3",
             "--on-error", "dead_letter", "--dead-letter-topic", dead,
             "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "500"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        outputs = kafka.consume_all(sink, FLIGHTS, timeout=120)
        dead_letters = kafka.consume_all(dead, len(MALFORMED), timeout=30)
        assert proc.poll() is None, log.read_text()
        members = wait_until(lambda: _members(kafka, app_id, source), timeout=60,
                             message="the group never had 3 members sharing the partitions")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # every worker writes its threads' stacks
            with contextlib.suppress(AssertionError):
                wait_until(lambda: log.read_text(errors="replace").count("most recent call")
                           >= 3, timeout=10)
            proc.kill()
            proc.wait()
            raise AssertionError("the workers did not stop within 60 s of SIGTERM:\n"
                                 + log.read_text(errors="replace")[-12000:]) from None
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text

    by_key = Counter(m.key.decode() for m in outputs if m.key is not None)
    assert len(outputs) == FLIGHTS, f"{len(outputs)} outputs for {FLIGHTS} flights"
    assert set(by_key) == set(keys) and set(by_key.values()) == {1}  # each once
    values = [json.loads(m.value or b"") for m in outputs]
    assert {v["model_version"] for v in values} == {model.version}
    assert all(v["flight"] == m.key.decode() for v, m in zip(values, outputs, strict=True)
               if m.key is not None)
    assert {m.partition for m in outputs} == set(range(10))  # keyed by flight, spread
    assert sorted(m.value or b"" for m in dead_letters) == sorted(x.encode() for x in MALFORMED)
    for m in dead_letters:
        assert b"MalformedFlight" in (dict(m.headers)["fluvial.error"] or b"")
    # the three workers shared the ten partitions
    assert sorted(p for parts in members for p in parts) == list(range(10))


def _members(kafka: KafkaTestBroker, group: str, topic: str) -> list[list[int]] | None:
    """The partitions of ``topic`` each member of ``group`` holds, once there are 3 members
    holding some each."""
    (future,) = kafka.admin().describe_consumer_groups([group]).values()
    description = future.result(timeout=10)
    members = [sorted(tp.partition for tp in m.assignment.topic_partitions
                      if tp.topic == topic) for m in description.members]
    return members if len(members) == 3 and all(members) else None
