"""``--log-format json``: every line a run writes is one JSON object, with the record's
coordinates as fields where a log call knows them, librdkafka's own lines included."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson
import pytest

from fluvial.io.kafka_logging import librdkafka_logger
from fluvial.logs import JsonFormatter, record_context

REPO = Path(__file__).resolve().parents[3]
# this checkout's fluvial and examples, whichever checkout the package was installed from
PYTHONPATH = os.pathsep.join([str(REPO / "src"), str(REPO)])

FAILING_APP = '''
import fluvial
from fluvial import serdes


def build():
    builder = fluvial.StreamsBuilder()
    (builder.stream("numbers", value_serde=serdes.String())
        .map_values(int)
        .to("parsed", value_serde=serdes.Int64()))
    return builder.build()
'''


def fluvial_in(cwd: Path, *args: str, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH, **(env or {})})


def parse_lines(out: str) -> list[dict[str, Any]]:
    """Every line as a JSON object (a line that is not one fails the test, naming it)."""
    entries = []
    for line in out.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def test_a_run_writes_only_json_lines_with_the_dead_letter_s_coordinates(
        tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILING_APP)
    data = str(tmp_path / "data")
    produced = fluvial_in(tmp_path, "produce", "--embedded", data, "numbers", "1", "x", "2")
    assert produced.returncode == 0, produced.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluvial", "run", "failing:build", "-a", "nums",
         "--embedded", data, "--state-dir", str(tmp_path / "state"),
         "--on-error", "dead_letter", "--http-port", "0"],
        cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "FLUVIAL_LOG_FORMAT": "json"})
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:  # ends when the process does
            lines.append(line)
            if "dead-lettered" in line:
                break
            assert time.monotonic() < deadline, f"no dead letter within 60 s: {lines}"
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines)
    entries = parse_lines("".join(lines) + rest)

    for entry in entries:
        assert {"time", "level", "logger", "message", "application_id", "instance"} <= set(entry)
        assert entry["application_id"] == "nums"
        assert entry["instance"].endswith(f"/{proc.pid}")
        assert entry["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert datetime.fromisoformat(entry["time"]).utcoffset() is not None
    assert any(e["logger"] == "fluvial.app" and e["message"].startswith("nums running: ")
               for e in entries)
    (dead,) = [e for e in entries if e["message"].startswith("dead-lettered: ")]
    assert dead["level"] == "WARNING"
    assert dead["logger"] == "fluvial.task"
    assert (dead["topic"], dead["partition"], dead["offset"]) == ("numbers", 0, 1)
    assert dead["task"] == "0_0"
    assert dead["stage"] == "map_values"  # the processor that failed
    assert "invalid literal for int()" in dead["message"]

    letters = fluvial_in(tmp_path, "consume", "--embedded", data, "nums-dead-letter",
                         "-n", "1", "--timeout", "10")
    assert (letters.returncode, letters.stdout) == (0, "x\n"), letters.stderr


def test_a_bad_log_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = fluvial_in(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                        "--log-format", "xml")
    assert result.returncode == 2
    assert result.stderr == (
        "fluvial: error: Invalid value for '--log-format': 'xml' is not one of 'text', "
        "'json'. (fluvial run --help)\n")
    from_env = fluvial_in(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                          env={"FLUVIAL_LOG_FORMAT": "yaml"})
    assert from_env.returncode == 2
    assert len(from_env.stderr.splitlines()) == 1, from_env.stderr
    assert "'--log-format': 'yaml' is not one of" in from_env.stderr


def test_a_failure_after_start_is_a_json_line_too(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def build():\n    raise RuntimeError('no topology')\n")
    result = fluvial_in(tmp_path, "run", "broken:build", "-a", "b", "--log-format", "json",
                        "--state-dir", str(tmp_path / "state"))
    assert result.returncode != 0
    (entry,) = parse_lines(result.stderr)
    assert entry["level"] == "ERROR"
    assert entry["message"].startswith("fluvial: error: ")
    assert "no topology" in entry["message"]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines into a buffer (as ``configure_logging`` sets)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("app", "host/1", worker=2))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_an_exception_is_a_field_and_the_line_stays_one_line(json_log: io.StringIO) -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("t").exception("failed on %s", "x",
                                         extra=record_context("1_2", "in", 2, 7))
    (entry,) = parse_lines(json_log.getvalue())
    assert entry["message"] == "failed on x"
    assert entry["error"] == "ValueError: bad value"
    assert entry["traceback"].startswith("Traceback (most recent call last):")
    assert entry["traceback"].endswith("ValueError: bad\nvalue")
    assert (entry["task"], entry["topic"], entry["partition"], entry["offset"]) == \
        ("1_2", "in", 2, 7)
    assert entry["worker"] == 2
    assert "stage" not in entry  # absent context is left out, not null


def test_librdkafka_s_own_lines_come_out_as_json(json_log: io.StringIO) -> None:
    """A real librdkafka client failing to connect logs through fluvial's logger."""
    with socket_nobody_listens_on() as port:
        producer = confluent_kafka.Producer({
            "bootstrap.servers": f"127.0.0.1:{port}", "logger": librdkafka_logger(),
            "reconnect.backoff.ms": 100})
        deadline = time.monotonic() + 20
        while "fluvial.librdkafka" not in json_log.getvalue() and time.monotonic() < deadline:
            producer.poll(0.1)
    entries = parse_lines(json_log.getvalue())
    ours = [e for e in entries if e["logger"] == "fluvial.librdkafka"]
    assert ours, entries
    assert any(f"127.0.0.1:{port}" in e["message"] for e in ours)
    assert all(e["application_id"] == "app" for e in ours)


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
