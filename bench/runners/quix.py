"""Quix Streams (PyPI ``quixstreams``): bench/systems/quix_app.py."""

from __future__ import annotations

from bench.runners.base import RunContext, Runner


class QuixRunner(Runner):
    key = "quix"
    name = "Quix Streams"
    system = "quix"

    def unavailable(self) -> str | None:
        return self.python_import_error("quixstreams")

    def versions(self) -> dict[str, str]:
        return self.python_versions("quixstreams", "confluent-kafka")

    def settings(self) -> dict[str, str]:
        return {"state": "RocksDB (rocksdict) with changelog topics (defaults)"}

    def command(self, ctx: RunContext) -> list[str]:
        return [self.python, "-m", "bench.systems.quix_app", *self.app_args(ctx)]
