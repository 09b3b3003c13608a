"""The ceiling: bench/systems/ceiling.py, a bare confluent-kafka loop."""

from __future__ import annotations

from bench.runners.base import RunContext, Runner


class CeilingRunner(Runner):
    key = "ceiling"
    name = "ceiling (bare confluent-kafka)"
    system = "ceiling"

    def unavailable(self) -> str | None:
        return self.python_import_error("confluent_kafka")

    def versions(self) -> dict[str, str]:
        return self.python_versions("confluent-kafka", "orjson")

    def settings(self) -> dict[str, str]:
        return {"state": "a dict; changed counts written to output + changelog at commit"}

    def command(self, ctx: RunContext) -> list[str]:
        return [self.python, "-m", "bench.systems.ceiling", *self.app_args(ctx)]
