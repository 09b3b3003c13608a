"""The Java oracle: Kafka Streams' TopologyTestDriver, run once for a whole list of cases.

Built by ``make conformance-oracle`` (tools/conformance, Maven); this module only runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conformance.records import Output, Outputs

ROOT = Path(__file__).resolve().parents[2]
ORACLE = ROOT / "tools" / "conformance"
CLASSPATH = f"{ORACLE / 'target' / 'classes'}:{ORACLE / 'target' / 'lib' / '*'}"


class OracleUnavailable(RuntimeError):
    pass


def _kafka_version(pom: Path) -> str:
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not found:
        raise OracleUnavailable(f"{pom} names no kafka.version")
    return found.group(1)


def check() -> None:
    """Fail with what to do when the oracle is not built, or not the broker's Kafka version."""
    if shutil.which("java") is None:
        raise OracleUnavailable("the conformance oracle needs Java 17+ on PATH")
    if not (ORACLE / "target" / "classes" / "dev" / "fluvial" / "conformance").is_dir():
        raise OracleUnavailable("the conformance oracle is not built: run "
                                "`make conformance-oracle` (needs Maven)")
    ours = _kafka_version(ORACLE / "pom.xml")
    broker = _kafka_version(ROOT / "tools" / "kafka" / "pom.xml")
    if ours != broker:
        raise OracleUnavailable(f"tools/conformance/pom.xml pins Kafka {ours} but the broker "
                                f"(tools/kafka/pom.xml) is {broker}: make them the same")


def run(specs: list[dict[str, Any]]) -> dict[str, Outputs | str]:
    """Each spec's outputs by id, or the oracle's error for that case, from one JVM."""
    check()
    text = "".join(json.dumps(s) + "\n" for s in specs)
    # C1 only and the serial collector: cases are short, so the optimizing compiler and a
    # parallel collector cost more CPU than they save (3x the time on a busy machine)
    done = subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
                           CLASSPATH, "dev.fluvial.conformance.Oracle"],
                          input=text, capture_output=True, text=True, timeout=1500, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the conformance oracle exited {done.returncode}: "
                           f"{done.stderr.strip()[-2000:]}")
    results: dict[str, Outputs | str] = {}
    for line in done.stdout.splitlines():
        answer = json.loads(line)
        if "error" in answer:
            results[answer["id"]] = answer["error"]
        else:
            results[answer["id"]] = {
                topic: [Output(r["key"], r["value"], r["ts"]) for r in records]
                for topic, records in answer["outputs"].items()}
    return results
