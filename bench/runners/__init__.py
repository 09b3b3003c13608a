"""One runner per system: start its process(es) for a workload; the driver does the rest."""

from __future__ import annotations

from pathlib import Path

from bench.runners.base import Handle, RunContext, Runner
from bench.runners.ceiling import CeilingRunner
from bench.runners.faust import FaustRunner
from bench.runners.fluvial import FluvialRunner
from bench.runners.fluvial_sql import FluvialSqlRunner
from bench.runners.java_streams import JavaStreamsRunner
from bench.runners.quix import QuixRunner

__all__ = ["Handle", "RunContext", "Runner", "all_runners"]


def all_runners(python: str, repo: Path) -> list[Runner]:
    """Every system, in report order."""
    return [
        FluvialRunner(python, repo, workers=1),
        FluvialRunner(python, repo, workers=2),
        FluvialSqlRunner(python, repo),
        CeilingRunner(python, repo),
        QuixRunner(python, repo),
        FaustRunner(python, repo),
        JavaStreamsRunner(python, repo),
    ]
