"""Secured Kafka, for real: a broker with a SASL_SSL listener (a CA and certificate made here,
SCRAM-SHA-256 and PLAIN users), an app whose every client goes through it, and a wrong
password failing fast, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.tls_support import make_pki
from tests.integration.wordcount_support import REPO, make_lines, word_counts
from tools.kafka_cluster import KafkaCluster, SaslSslListener

from fluvial import Materialized, StreamsBuilder, serdes
from fluvial.io.kafka_check import AuthenticationError
from fluvial.runtime.app import App

USERS = {"streams": "streams-secret", "ops": "ops-secret"}


class SecureBroker:
    """The broker: ``plain`` (its PLAINTEXT listener) for the test's own set-up and checks,
    ``secure`` the SASL_SSL address the app gets."""

    def __init__(self, cluster: KafkaCluster, ca_pem: Path) -> None:
        self.plain = KafkaTestBroker(cluster.bootstrap_servers, cluster)
        self.secure = cluster.sasl_ssl_bootstrap_servers
        self.ca_pem = ca_pem

    def client_config(self, user: str, password: str | None = None,
                      mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
                "sasl.username": user, "sasl.password": password or USERS[user],
                "ssl.ca.location": str(self.ca_pem)}


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    cluster = KafkaCluster(nodes=1, name=f"pytest-{os.getpid()}-sasl-ssl",
                           sasl_ssl=SaslSslListener(pki.keystore, pki.keystore_password, USERS))
    cluster.start()
    try:
        yield SecureBroker(cluster, pki.ca_pem)
    finally:
        cluster.stop(graceful=False)


def fluvial(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def counting_app(source: str, sink: str, rates: str) -> Any:
    """WordCount (a repartition topic, a changelog) next to a global table."""
    b = StreamsBuilder()
    b.global_table(rates, key_serde="string", value_serde="string",
                   materialized=Materialized("rates", persistent=False))
    (b.stream(source, value_serde=serdes.String())
        .flat_map_values(str.split)
        .group_by(lambda _key, word: word)
        .count(materialized="counts")
        .to_stream()
        .to(sink, value_serde=serdes.Int64()))
    return b.build()


def test_an_app_runs_end_to_end_over_sasl_ssl(
        secure_broker: SecureBroker, unique_topic: Callable[[str], str],
        tmp_path: Path) -> None:
    plain = secure_broker.plain
    source, sink, rates = unique_topic("in"), unique_topic("out"), unique_topic("rates")
    for topic in (source, sink, rates):
        plain.create_topic(topic, partitions=2)
    lines = make_lines(0, 60)
    plain.produce(source, lines)
    plain.produce(rates, [(b"eur", b"1.1")])
    expected = word_counts(lines)
    # only the SASL_SSL address and kafka_config: every client (admin, consumer, producer,
    # restore and global-table readers) has to authenticate there to get anywhere
    settings = {"bootstrap_servers": secure_broker.secure, "state_dir": tmp_path / "a",
                "kafka_config": secure_broker.client_config("streams"),
                "connect_timeout_ms": 60_000}
    app_id = unique_topic("app")
    with App(counting_app(source, sink, rates), app_id, **settings) as app:
        assert app.store("rates").to_dict() == {"eur": "1.1"}  # loaded before start returns
        wait_until(lambda: app.store("counts").to_dict() == expected or app.error,
                   timeout=120, message=lambda: f"counts: {app.store('counts').to_dict()}")
        assert app.error is None, app.error
    assert plain.counts_reaching(sink, expected, bytes.decode) == expected

    # a new state directory: the counts come back through a restore reader over SASL_SSL
    settings["state_dir"] = tmp_path / "b"
    with App(counting_app(source, sink, rates), app_id, **settings) as app:
        wait_until(lambda: app.store("counts").to_dict() == expected or app.error,
                   timeout=120, message=lambda: f"counts: {app.store('counts').to_dict()}")
        assert app.error is None, app.error
        assert app.stream_thread is not None
        assert sum(n for t in app.stream_thread.restored.values() for n in t.values()) > 0

    # the command line, with PLAIN, through --kafka-config
    flags = [f"--kafka-config={k}={v}" for k, v in
             secure_broker.client_config("ops", mechanism="PLAIN").items()]
    read = fluvial("consume", rates, "-b", secure_broker.secure, *flags, "--print-key", "-n", "1")
    assert (read.returncode, read.stdout) == (0, "eur\t1.1\n"), read.stderr


def test_a_wrong_password_fails_fast_in_one_line(secure_broker: SecureBroker,
                                                 tmp_path: Path) -> None:
    config = secure_broker.client_config("streams", password="not-the-password")
    began = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        App(counting_app("a", "b", "c"), "wrong-pw",
            bootstrap_servers=secure_broker.secure, state_dir=tmp_path,
            kafka_config=config, connect_timeout_ms=120_000).start()
    took = time.monotonic() - began
    assert took < 60, f"took {took:.1f} s: a refused login must not wait out the timeout"
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"the broker at {secure_broker.secure} refused our credentials: ")
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in message, message

    flags = [f"--kafka-config={k}={v}" for k, v in config.items()]
    result = fluvial("run", "examples.wordcount.app:build", "-a", "wrong-pw",
                     "-b", secure_broker.secure, *flags, "--state-dir", str(tmp_path),
                     "--connect-timeout-ms", "120000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"fluvial: error: the broker at {secure_broker.secure} refused our "
                           f"credentials: ")
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in last, last
