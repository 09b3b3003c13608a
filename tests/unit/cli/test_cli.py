"""The fluvial command line: running on the embedded broker, and malformed input."""

from __future__ import annotations

import os
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
])
def test_malformed_command_lines_fail_clearly(args: list[str], message: str) -> None:
    result = fluvial(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


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
        main._run_app(build(), {"application_id": "wc", "state_dir": str(tmp_path)}, None,
                      None)
    finally:
        gc.set_threshold(*before)
    assert seen == [main.GC_THRESHOLDS]
