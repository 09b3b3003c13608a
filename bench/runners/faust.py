"""Faust (PyPI ``faust-streaming``, on aiokafka): bench/systems/faust_app.py."""

from __future__ import annotations

from bench.runners.base import RunContext, Runner


class FaustRunner(Runner):
    key = "faust"
    name = "Faust"
    system = "faust"

    def unavailable(self) -> str | None:
        return self.python_import_error("faust")

    def versions(self) -> dict[str, str]:
        return self.python_versions("faust-streaming", "aiokafka", "mode-streaming")

    def settings(self) -> dict[str, str]:
        return {"state": "rocksdb:// table (rocksdict) with changelog", "web": "disabled"}

    def command(self, ctx: RunContext) -> list[str]:
        return [self.python, "-m", "bench.systems.faust_app", *self.app_args(ctx)]
