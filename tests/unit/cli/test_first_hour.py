"""docs/getting-started.md's shell walk-through, run as written, on the embedded broker.

The page's Python blocks (orders.py, test_orders.py) are written to a fresh directory as the
page says; then its section-3 shell block runs under ``bash -e`` and must print what the
page shows. The Kafka walk-through is in tests/integration/test_first_hour_kafka.py.
"""

from __future__ import annotations

import os
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
    """``bash -e`` on the script, then wait for its background jobs (the app must exit 0)."""
    env = {**os.environ, **extra_env, "PYTHONPATH": str(cwd),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", script + "\nwait %1\n"], cwd=cwd, env=env,
                          text=True, capture_output=True, timeout=timeout)


def test_the_embedded_walkthrough_prints_what_the_page_says(tmp_path: Path) -> None:
    write_page_files(tmp_path)
    script = shell_blocks(PAGE)[""]
    result = run_walkthrough(script, tmp_path, {"FLUVIAL_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(script), result.stderr
    assert "Traceback" not in result.stderr
    assert "orders running: instance" in result.stderr  # the banner
