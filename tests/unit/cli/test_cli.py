"""The fluvial command line: running on the embedded broker, and malformed input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from examples.wordcount.app import build

REPO = Path(__file__).resolve().parents[3]


def fluvial(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_describe_prints_the_topology() -> None:
    result = fluvial("describe", "examples.wordcount.app:build")
    assert result.returncode == 0, result.stderr
    assert "Sub-topology: 1" in result.stdout
    assert "Source: KSTREAM-SOURCE-0000000000 (topics: [TextLinesTopic])" in result.stdout
    assert "(stores: [counts])" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["run", "examples.wordcount.app", "-a", "x"], "is not MODULE:OBJECT"),
    (["run", "no_such_module:build", "-a", "x"], "cannot import module 'no_such_module'"),
    (["run", "examples.wordcount.app:nothing", "-a", "x"], "has no attribute 'nothing'"),
    (["run", "examples.wordcount.app:INPUT", "-a", "x"], "not a Topology"),
    (["run", "examples.wordcount.app:build"], "application_id is required"),
    (["run", "examples.wordcount.app:build", "-a", "bad id!"], "may only use letters"),
    (["run", "examples.wordcount.app:build", "-a", "x", "--commit-interval-ms", "0"],
     "Invalid value for '--commit-interval-ms'"),
    (["run", "examples.wordcount.app:build", "-a", "x", "--on-error", "ignore"],
     "Invalid value for '--on-error'"),
    (["run", "examples.wordcount.app:build", "-a", "x", "--workers", "2"],
     "--workers > 1 needs --bootstrap-servers"),
    (["run", "examples.wordcount.app:build", "-a", "x", "--kafka-config", "acks"],
     "Invalid value for '--kafka-config': 'acks' is not KEY=VALUE"),
    (["run", "examples.wordcount.app:build", "-a", "x", "--config", "nope.toml"],
     "config file nope.toml: No such file or directory"),
    (["reset", "x"], "name the broker: --embedded DIR or --bootstrap-servers HOST:PORT"),
])
def test_malformed_command_lines_fail_clearly(args: list[str], message: str) -> None:
    result = fluvial(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_run_on_the_embedded_broker_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluvial", "run", "examples.wordcount.app:build", "-a", "wc",
         "--state-dir", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        # the app has joined its group once its tasks exist on disk
        while not list(tmp_path.glob("wc/1_0")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        assert list(tmp_path.glob("wc/1_0")), "the app never opened its tasks"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_raises_the_gc_threshold_of_its_own_process(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    import gc

    from fluvial.cli import main
    from fluvial.runtime import app as app_module

    seen: list[tuple[int, int, int]] = []

    class Recorder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            seen.append(gc.get_threshold())

        def run(self) -> None:
            pass

    monkeypatch.setattr(app_module, "App", Recorder)
    before = gc.get_threshold()
    try:
        main._run_app(build(), {"application_id": "wc", "state_dir": str(tmp_path)},
                      main._Http("127.0.0.1", None, None), None)
    finally:
        gc.set_threshold(*before)
    assert seen == [main.GC_THRESHOLDS]


def test_sql_script_gets_the_gc_threshold_of_run(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """`fluvial sql -f` is an app process too: the same GC thresholds once its app is built."""
    import gc

    from fluvial.cli import main
    from fluvial.cli.sql import run_script
    from fluvial.sql import runner

    seen: list[tuple[int, int, int]] = []

    class Recorder:
        def run(self) -> None:
            seen.append(gc.get_threshold())

    monkeypatch.setattr(runner, "prepare", lambda *_a, **_k: (Recorder(), []))
    script = tmp_path / "q.sql"
    script.write_text("SHOW STREAMS;")
    before = gc.get_threshold()
    try:
        run_script(str(script), {}, None, before_run=main._own_process)
    finally:
        gc.set_threshold(*before)
    assert seen == [main.GC_THRESHOLDS]


# -- the first hour: each failure is one line, exit code 2, no traceback ------------------

def fluvial_in(cwd: Path, *args: str, timeout: float = 60,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fluvial", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fluvial", *args], cwd=cwd, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> list[str]:
    """The process's output lines up to and including the first containing ``needle``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:  # ends when the process does
        seen.append(line)
        if needle in line:
            return seen
        assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s: {seen}"
    raise AssertionError(f"exited ({proc.wait()}) without {needle!r}: {''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out or ""


def test_version() -> None:
    import fluvial as package

    result = fluvial("--version")
    assert (result.returncode, result.stdout) == (0, f"fluvial {package.__version__}\n")


def test_bare_fluvial_prints_help_to_stdout_and_exits_0() -> None:
    result = fluvial()
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: fluvial [OPTIONS] [COMMAND] [ARGS]...\n")
    for verb in ("run", "describe", "produce", "consume", "create-topics"):
        assert f"  {verb} " in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("module", "source", "error"), [
    ("bad_syntax", "import fluvial\ndef build(:\n    pass\n",
     "{dir}/bad_syntax.py:2:11: syntax error in module 'bad_syntax': invalid syntax"),
    ("boom", "x = 1\nraise RuntimeError('no config file')\n",
     "{dir}/boom.py:2: importing module 'boom' failed: RuntimeError: no config file"),
    ("builds_badly", "def build():\n    raise ValueError('no topic name')\n",
     "{dir}/builds_badly.py:2: builds_badly:build() failed: ValueError: no topic name"),
])
def test_a_broken_user_module_is_one_line_with_file_and_line(
        tmp_path: Path, module: str, source: str, error: str) -> None:
    (tmp_path / f"{module}.py").write_text(source)
    result = fluvial_in(tmp_path, "run", f"{module}:build", "-a", "x")
    assert result.returncode == 2
    assert result.stderr == f"fluvial: error: {error.format(dir=tmp_path)}\n"


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise RuntimeError('no config file')\n")
    result = fluvial_in(tmp_path, "--debug", "run", "boom:build", "-a", "x")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.endswith("importing module 'boom' failed: RuntimeError: "
                                  "no config file\n")


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket closes


def test_an_unreachable_broker_is_one_line_after_a_bounded_wait(tmp_path: Path) -> None:
    port = closed_port()
    began = time.monotonic()
    result = fluvial_in(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                        "-b", f"127.0.0.1:{port}", "--connect-timeout-ms", "1500",
                        "--state-dir", str(tmp_path))
    took = time.monotonic() - began
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    *logged, last = result.stderr.splitlines()
    assert last.startswith(f"fluvial: error: no Kafka broker reachable at 127.0.0.1:{port} "
                           f"after 1.5 s (")
    assert "Connection refused" in last
    assert last.endswith("); is it running? (--bootstrap-servers; leave it out for the "
                         "embedded broker)")
    # librdkafka's own lines: through logging, naming the app, once (not one per retry)
    assert len(logged) <= 2, logged
    assert all("[wc " in line and "fluvial.librdkafka" in line for line in logged), logged
    assert 1.5 <= took < 30


def test_ctrl_c_while_waiting_for_a_broker_acts_within_a_second(tmp_path: Path) -> None:
    proc = start(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                 "-b", f"127.0.0.1:{closed_port()}", "--state-dir", str(tmp_path))
    try:
        wait_for_line(proc, "Connection refused")  # librdkafka's first FAIL: it is waiting
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert out.splitlines()[-1] == "fluvial: interrupted"
    assert "Traceback" not in out
    assert took < 1.5  # one metadata request (0.5 s) at most, plus exiting


def test_a_state_directory_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    first = start(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                  "--state-dir", str(tmp_path / "state"))
    try:
        wait_for_line(first, "wc running: ")
        second = fluvial_in(tmp_path, "run", "examples.wordcount.app:build", "-a", "wc",
                            "--state-dir", str(tmp_path / "state"))
    finally:
        stop(first)
    assert second.returncode == 2
    assert second.stderr.splitlines()[-1] == (
        f"fluvial: error: state directory {tmp_path}/state/wc is in use by another instance "
        f"(pid {first.pid}); stop it, or give this instance its own state directory "
        f"(--state-dir / state_dir)")
    assert first.returncode == 0


def test_run_builds_once_logs_a_banner_and_names_app_and_instance(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    (tmp_path / "counted.py").write_text(
        "from examples.wordcount.app import build as wordcount\n\n"
        "def build():\n"
        f"    with open({str(calls)!r}, 'a') as f:\n"
        "        f.write('build\\n')\n"
        "    return wordcount()\n")
    proc = start(tmp_path, "run", "counted:build", "-a", "wc", "--state-dir",
                 str(tmp_path / "state"), "--http-port", "0")
    try:
        lines = wait_for_line(proc, "wc running: ")
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert calls.read_text() == "build\n"
    banner = lines[-1]
    assert re.search(
        r" INFO \[wc \S+/\d+\] fluvial\.app: wc running: instance \S+/\d+, broker embedded, "
        r"in-process, input TextLinesTopic, output WordsWithCountsTopic, state "
        + re.escape(str(tmp_path / "state" / "wc")) + r", HTTP port \d+, at_least_once$",
        banner.rstrip("\n")), banner
    private = next(line for line in lines if "WARNING" in line)
    assert "no --bootstrap-servers: running on a private in-process broker" in private


def test_produce_and_consume_on_an_embedded_data_directory(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    produced = fluvial_in(tmp_path, "produce", "--embedded", data, "words",
                          "--key-separator", "=", "a=1", "b=2", "--value-serde", "int64")
    assert (produced.returncode, produced.stderr) == (0, "2 record(s) to words\n")
    read = fluvial_in(tmp_path, "consume", "--embedded", data, "words", "--print-key",
                      "--value-serde", "int64")
    assert (read.returncode, read.stdout) == (0, "a\t1\nb\t2\n")
    short = fluvial_in(tmp_path, "consume", "--embedded", data, "words", "-n", "3",
                       "--timeout", "0.5")
    assert short.returncode == 2
    assert short.stderr == "fluvial: error: topic 'words': 2 of 3 record(s) within 0.5 s\n"
    missing = fluvial_in(tmp_path, "consume", "--embedded", data, "nope")
    assert (missing.returncode, missing.stderr) == (
        2, "fluvial: error: topic 'nope' does not exist\n")
    bad = fluvial_in(tmp_path, "produce", "--embedded", data, "words", "--value-serde",
                     "int64", "x")
    assert (bad.returncode, bad.stderr) == (
        2, "fluvial: error: line 1: value 'x' is not int64: invalid literal for int() with "
           "base 10: 'x'\n")
