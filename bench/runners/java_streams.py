"""Java Kafka Streams (Maven Central), one stream thread: bench/java (BenchApp.java).

Built by ``mvn -q package`` in bench/java (``make bench`` does it): target/classes plus the
runtime jars in target/lib.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bench.runners.base import RunContext, Runner

HEAP = "1g"


def _pom_version(pom: Path, prop: str = "kafka.version") -> str | None:
    m = re.search(rf"<{re.escape(prop)}>([^<]+)</{re.escape(prop)}>", pom.read_text())
    return m.group(1).strip() if m else None


class JavaStreamsRunner(Runner):
    key = "java"
    name = "Kafka Streams (Java, 1 thread)"
    system = "java"

    @property
    def project(self) -> Path:
        return self.repo / "bench" / "java"

    def _java(self) -> str:
        from tools.kafka_cluster import find_java

        return find_java()

    def unavailable(self) -> str | None:
        ours = _pom_version(self.project / "pom.xml")
        broker = _pom_version(self.repo / "tools" / "kafka" / "pom.xml")
        if ours != broker:
            return (f"bench/java/pom.xml has kafka.version {ours}, the broker "
                    f"(tools/kafka/pom.xml) {broker}: make them equal")
        target = self.project / "target"
        if not (target / "classes" / "dev" / "fluvial" / "bench" / "BenchApp.class").is_file() \
                or not any((target / "lib").glob("kafka-streams-*.jar")):
            return "not built: run `mvn -q -f bench/java/pom.xml package` (make bench does)"
        try:
            self._java()
        except Exception as exc:
            return str(exc)
        return None

    def versions(self) -> dict[str, str]:
        v = {"kafka-streams": _pom_version(self.project / "pom.xml") or "?"}
        try:
            out = subprocess.run([self._java(), "-version"], capture_output=True, text=True,
                                 timeout=60, check=False)
            v["java"] = (out.stderr.strip().splitlines() or ["?"])[0]
        except Exception:
            pass
        return v

    def settings(self) -> dict[str, str]:
        return {"num.stream.threads": "1", "heap": f"-Xmx{HEAP}",
                "state": "RocksDB with record cache (defaults)"}

    def command(self, ctx: RunContext) -> list[str]:
        target = self.project / "target"
        classpath = f"{target / 'classes'}:{target / 'lib'}/*"
        return [self._java(), f"-Xmx{HEAP}", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", classpath, "dev.fluvial.bench.BenchApp", *self.app_args(ctx)]
