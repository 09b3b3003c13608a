"""The Python code blocks of README.md and docs/*.md, and a harness that runs one page's.

Convention: every fenced ```python block runs.
The blocks of one page run in order in one namespace, like a notebook, so a later block may
use what an earlier one defined; after the last, every ``test_*`` function a block defined is
called. An HTML comment on the line just above the fence changes that:

- ``<!-- doc-test: skip REASON -->``: not run (a signature, a sketch, needs a real cluster);
- ``<!-- doc-test: file NAME -->``: the block is also written to the file NAME in the
  page's working directory (a fresh one), so a later block can import it as a module;
- ``<!-- doc-test: service -->``: the block runs forever (``app.run()``); the page's last
  runnable block. The test waits for the app's start-up banner, sends Ctrl-C (SIGINT) and
  expects a clean exit 0.

A fenced ```bash block marked ``<!-- doc-test: shell LABEL -->`` is a shell walk-through
that another test runs (``shell_blocks``): its whole-line comments (``# ...``) are the output
it must print, in order.

Run a page by hand: ``python tests/unit/docs/doc_blocks.py docs/testing.md``.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*doc-test:\s*(skip|service|file)\b(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the block's first code line, 1-based
    code: str
    mode: str  # "run" | "skip" | "service" | "file"
    reason: str = ""  # why skipped; the file name of a "file" block


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        mode, reason = (marker.group(1), marker.group(2).strip()) if marker else ("run", "")
        line = text.count("\n", 0, match.start(1)) + 1
        found.append(Block(page, line, match.group(1), mode, reason))
    return found


_SHELL = re.compile(r"<!--\s*doc-test:\s*shell\b(.*?)-->\s*\n```bash[ \t]*\n(.*?)^```[ \t]*$",
                    re.S | re.M)


def shell_blocks(page: Path) -> dict[str, str]:
    """The page's shell walk-throughs by label ("" when unlabelled)."""
    return {m.group(1).strip(): m.group(2) for m in _SHELL.finditer(page.read_text())}


def expected_output(script: str) -> list[str]:
    """What a walk-through says it prints: its whole-line comments, without ``# ``."""
    return [line[2:] for line in script.splitlines() if line.startswith("# ")]


def run_page(page: Path) -> None:
    """Execute the page's runnable blocks in one namespace, then its ``test_*`` functions."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    sys.path.insert(0, str(Path.cwd()))  # where "file" blocks land
    namespace: dict[str, object] = {"__name__": "__doc_page__"}
    for block in blocks(page):
        if block.mode == "skip":
            continue
        if block.mode == "file":
            Path(block.reason).write_text(block.code)
        # blank lines in front keep tracebacks' line numbers those of the page
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        exec(code, namespace)
    for name, obj in list(namespace.items()):
        if name.startswith("test_") and callable(obj):
            obj()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    run_page(Path(sys.argv[1]).resolve())
