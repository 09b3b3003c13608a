"""docs/getting-started.md's shell walk-through, run as written, on the embedded broker.

The page's Python blocks (orders.py, test_orders.py) are written to a fresh directory as the
page says; then its section-3 shell block runs under ``bash -e`` and must print what the
page shows. The Kafka walk-through is in tests/integration/test_first_hour_kafka.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.unit.docs.doc_blocks import REPO, blocks, expected_output, shell_blocks

PAGE = REPO / "docs" / "getting-started.md"


def write_page_files(directory: Path) -> None:
    for block in blocks(PAGE):
        if block.mode == "file":
            (directory / block.reason).write_text(block.code)


def run_walkthrough(script: str, cwd: Path, extra_env: dict[str, str],
                    timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``bash -e`` on the script, then wait for its background jobs (the app must exit 0).

    The script runs in its own process group, killed afterwards: a step that fails must not
    leave the app it started in the background running.
    """
    env = {**os.environ, **extra_env, "PYTHONPATH": str(cwd),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # a failing step ends the script: its EXIT trap stops the background jobs at once
    guarded = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script + "\nwait %1\n"
    proc = subprocess.Popen(["bash", "-e", "-c", guarded], cwd=cwd, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_embedded_walkthrough_prints_what_the_page_says(tmp_path: Path) -> None:
    write_page_files(tmp_path)
    script = shell_blocks(PAGE)[""]
    result = run_walkthrough(script, tmp_path, {"FLUVIAL_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(script), result.stderr
    assert "Traceback" not in result.stderr
    assert "orders running: instance" in result.stderr  # the banner
