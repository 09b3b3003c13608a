"""Checkpoint files: the changelog offset up to which a task's local stores are known good.

A checkpoint is written only when a task closes cleanly, and removed when the task opens: a
crash therefore leaves none, and the next owner rebuilds the stores from the changelog rather
than trust files that may hold writes the changelog never saw.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Checkpoint:
    def __init__(self, directory: Path) -> None:
        self.path = directory / ".checkpoint"

    def take(self) -> dict[str, int]:
        """Read and delete: the stores are now in use, so the file no longer vouches for them."""
        try:
            offsets = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            offsets = {}  # unreadable: restore everything
        self.path.unlink(missing_ok=True)
        if not isinstance(offsets, dict):
            return {}
        return {str(k): int(v) for k, v in offsets.items() if isinstance(v, int)}

    def write(self, offsets: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(offsets, sort_keys=True))
        os.replace(tmp, self.path)
