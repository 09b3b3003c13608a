"""Every Python block of README.md and docs/*.md runs as written (see doc_blocks.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doc_blocks import REPO, blocks, pages

HARNESS = Path(__file__).with_name("doc_blocks.py")
BANNER = " running: "  # in the App's start-up banner (fluvial.runtime.banner)


def _pages_with_code() -> list[Path]:
    return [p for p in pages() if any(b.mode != "skip" for b in blocks(p))]


def test_markers_are_well_formed() -> None:
    for page in pages():
        page_blocks = [b for b in blocks(page) if b.mode != "skip"]
        services = [b for b in page_blocks if b.mode == "service"]
        assert len(services) <= 1, f"{page.name}: more than one service block"
        if services:
            assert page_blocks[-1] is services[0], \
                f"{page.name}:{services[0].line}: a service block must be the page's last"
        for b in blocks(page):
            if b.mode == "skip":
                assert b.reason, f"{page.name}:{b.line}: a skipped block says why"


PUBLIC_SUBPACKAGES = ("ml", "schema_registry", "sql")  # besides ``fluvial`` itself


def test_no_doc_example_imports_an_internal_module() -> None:
    public = "|".join(PUBLIC_SUBPACKAGES)
    internal = re.compile(rf"^\s*(?:from|import) fluvial\.(?!(?:{public})\b)(\S+)", re.M)
    found = [f"{page.name}:{b.line}: fluvial.{m.group(1)}" for page in pages()
             for b in blocks(page) for m in internal.finditer(b.code)]
    assert found == [], "import these from fluvial (add them to fluvial/__init__.py)"


def test_the_readme_and_getting_started_have_code_that_runs() -> None:
    ran = {p.name for p in _pages_with_code()}
    assert {"README.md", "getting-started.md"} <= ran


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.name)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
           "FLUVIAL_STATE_DIR": str(tmp_path / "state")}  # this checkout's code
    proc = subprocess.Popen([sys.executable, str(HARNESS), str(page)], cwd=tmp_path, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        service = any(b.mode == "service" for b in blocks(page))
        lines: list[str] = []
        if service:
            assert proc.stdout is not None
            deadline = time.monotonic() + 120
            for line in proc.stdout:
                lines.append(line)
                if BANNER in line or time.monotonic() > deadline:
                    break
            assert any(BANNER in line for line in lines), "".join(lines)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        out = "".join(lines) + out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
