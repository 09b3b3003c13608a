"""The first hour on a real broker: getting-started.md's Kafka walk-through as written, and
the one-line start-up failures that need a broker (missing topics, refused credentials)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.integration.kafka_helpers import KafkaTestBroker
from tests.unit.cli.test_first_hour import PAGE, run_walkthrough, write_page_files
from tests.unit.docs.doc_blocks import REPO, expected_output, shell_blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_kafka_walkthrough_prints_what_the_page_says(kafka: KafkaTestBroker,
                                                         tmp_path: Path) -> None:
    write_page_files(tmp_path)
    script = shell_blocks(PAGE)["(on Kafka)"]
    port = free_port()  # the page's may be taken on a shared machine
    script = script.replace("8080", str(port))
    result = run_walkthrough(script, tmp_path, {"B": kafka.bootstrap_servers,
                                                "FLUVIAL_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(script), result.stderr
    assert "Traceback" not in result.stderr
    assert f"orders running: instance {socket.gethostname()}/" in result.stderr
    assert f"HTTP port {port}" in result.stderr


def fluvial(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_missing_topics_are_named_in_one_line(kafka: KafkaTestBroker, tmp_path: Path) -> None:
    result = fluvial("run", "examples.wordcount.app:build", "-a", "wc-missing",
                     "-b", kafka.bootstrap_servers, "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "fluvial: error: application 'wc-missing': source topic(s) TextLinesTopic and sink "
        "topic(s) WordsWithCountsTopic missing; create them first (fluvial creates only its "
        "internal topics on a Kafka cluster)")


def test_refused_credentials_are_one_line_at_once(kafka: KafkaTestBroker,
                                                  tmp_path: Path) -> None:
    # the broker's listener speaks PLAINTEXT: it refuses a client that insists on SASL
    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "alice", "sasl.password": "wrong"}
    result = fluvial("run", "examples.wordcount.app:build", "-a", "wc-auth",
                     "-b", kafka.bootstrap_servers, "--state-dir", str(tmp_path),
                     "--connect-timeout-ms", "60000",
                     env={"FLUVIAL_CONSUMER_CONFIG": json.dumps(sasl)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"fluvial: error: the broker at {kafka.bootstrap_servers} refused "
                           f"our credentials: ")
    assert "SASL" in last
    assert last.endswith("; check the security.protocol, sasl.* and ssl.* settings "
                         "(kafka_config, or consumer_config / producer_config / admin_config)")
