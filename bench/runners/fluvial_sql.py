"""fluvial's SQL: the workload's ksqlDB script, run by ``python -m fluvial sql -f SCRIPT``.

The script (``Workload.sql_script``) is written into the case's state directory with the
case's topics in it; ``fluvial sql`` runs its statements, then its persistent queries as one
app on the same engine, with the same settings as ``fluvial run`` in ``FluvialRunner``.
"""

from __future__ import annotations

from pathlib import Path

from bench.runners.base import Handle, RunContext
from bench.runners.fluvial import FluvialRunner


class FluvialSqlRunner(FluvialRunner):
    system = "fluvial-sql"
    key = "fluvial-sql"
    name = "fluvial SQL (1 worker)"

    def __init__(self, python: str, repo: Path) -> None:
        super().__init__(python, repo, workers=1)
        self.key, self.name = FluvialSqlRunner.key, FluvialSqlRunner.name

    def settings(self) -> dict[str, str]:
        return {"workers": "1 process (fluvial sql -f)",
                "state": "RocksDB stores with record cache (defaults)"}

    def script_path(self, ctx: RunContext) -> Path:
        return ctx.state_dir / f"{ctx.workload.name}.sql"

    def start(self, ctx: RunContext) -> Handle:
        ctx.state_dir.mkdir(parents=True, exist_ok=True)
        self.script_path(ctx).write_text(ctx.workload.sql_script(
            ctx.input_topic, ctx.output_topic, ctx.partitions, ctx.app_id))
        return super().start(ctx)

    def command(self, ctx: RunContext) -> list[str]:
        return [self.python, "-m", "fluvial", "--log-level", "WARNING", "sql",
                "-f", str(self.script_path(ctx)),
                "-a", ctx.app_id, "-b", ctx.bootstrap, "--commit-interval-ms", str(ctx.commit_ms),
                "--processing-guarantee", "at_least_once", "--state-dir", str(ctx.state_dir),
                "--replication-factor", "1"]
