"""WordCount as integration tests drive it: lines, expected counts, `fluvial run` processes."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

from examples.wordcount.app import split_words

REPO = Path(__file__).resolve().parents[2]
VOCABULARY = ["exactly", "once", "kafka", "streams", "python", "state", "fence", "abort",
              "commit", "topic", "table", "window"]


def make_lines(start: int, count: int) -> list[str]:
    return [" ".join(VOCABULARY[(i * 5 + j * 7) % len(VOCABULARY)] for j in range(1 + i % 6))
            for i in range(start, start + count)]


def word_counts(lines: list[str]) -> dict[str, int]:
    return dict(collections.Counter(w for line in lines for w in split_words(line)))


class Instance:
    """One ``fluvial run examples.wordcount.app:build`` process; its log in a file.

    ``restart()`` starts it again on the same state directory (so it takes its instance slot
    and transactional.id back), appending to the same log.
    """

    def __init__(self, name: str, app_id: str, bootstrap: str, source: str, sink: str,
                 tmp_path: Path, guarantee: str = "at_least_once",
                 group_protocol: str = "consumer", env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        self._env = {**os.environ, **(env or {}),
                     "FLUVIAL_WORDCOUNT_INPUT": source, "FLUVIAL_WORDCOUNT_OUTPUT": sink,
                     "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
        if group_protocol == "classic":
            # a SIGKILLed member leaves the group after 6 s instead of the default 45 s (under
            # the consumer protocol the broker sets it: tools/kafka_cluster.py makes it 6 s)
            self._env["FLUVIAL_CONSUMER_CONFIG"] = json.dumps({"session.timeout.ms": 6000,
                                                               "heartbeat.interval.ms": 500})
        self._command = [
            sys.executable, "-m", "fluvial", "run", "examples.wordcount.app:build",
            "-a", app_id, "-b", bootstrap, "--state-dir", str(tmp_path / name),
            "--commit-interval-ms", "500" if guarantee == "at_least_once" else "100",
            "--processing-guarantee", guarantee, "--group-protocol", group_protocol]
        self._started_at = 0  # log size when the current process started
        self.proc = self._launch("w")

    def _launch(self, mode: str) -> subprocess.Popen[bytes]:
        with self.log.open(mode) as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(self._command, cwd=REPO, env=self._env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def restart(self) -> None:
        if self.proc.poll() is None:
            raise RuntimeError(f"instance {self.name} is still running")
        self._started_at = self.log.stat().st_size
        self.proc = self._launch("a")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def has_tasks(self) -> bool:
        """Whether the current process runs tasks (restored, processing)."""
        with self.log.open("rb") as f:
            f.seek(self._started_at)
            return b"tasks running" in f.read()
