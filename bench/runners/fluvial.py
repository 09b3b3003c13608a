"""fluvial, via its own command line: ``python -m fluvial run MODULE:OBJECT --workers N``."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from bench.runners.base import RunContext, Runner


class FluvialRunner(Runner):
    system = "fluvial"

    def __init__(self, python: str, repo: Path, workers: int = 1) -> None:
        super().__init__(python, repo)
        self.workers = self.members = workers
        self.key = f"fluvial-{workers}w"
        self.name = f"fluvial ({workers} worker{'s' if workers > 1 else ''})"

    def unavailable(self) -> str | None:
        return self.python_import_error("fluvial")

    def versions(self) -> dict[str, str]:
        v = self.python_versions("fluvial", "confluent-kafka", "orjson", "rocksdict")
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            v["fluvial-git"] = subprocess.run(
                ["git", "describe", "--always", "--dirty"], cwd=self.repo, capture_output=True,
                text=True, timeout=30, check=True).stdout.strip()
        return v

    def settings(self) -> dict[str, str]:
        return {"workers": f"{self.workers} process(es) (fluvial run --workers)",
                "state": "RocksDB stores with record cache (defaults)"}

    def command(self, ctx: RunContext) -> list[str]:
        target = ctx.workload.fluvial_target
        return [self.python, "-m", "fluvial", "--log-level", "WARNING", "run", target,
                "-a", ctx.app_id, "-b", ctx.bootstrap, "--commit-interval-ms", str(ctx.commit_ms),
                "--processing-guarantee", "at_least_once", "--state-dir", str(ctx.state_dir),
                "--replication-factor", "1", "--workers", str(self.workers)]
