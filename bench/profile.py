"""py-spy profiles of fluvial (1 worker) on each workload, summarised in profile-notes.md.

Each workload runs once more, as in the benchmark, with fluvial started under
``py-spy record --format raw`` (collapsed stacks; open them in https://speedscope.app or
flamegraph.pl). py-spy leaves idle threads out, so the samples are where the engine spends
CPU: mostly the throughput phase. Native frames (librdkafka, orjson, RocksDB) are not
unwound: time in a C call is charged to the Python function that made it.
"""

from __future__ import annotations

import logging
import shutil
import signal
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.driver import Settings, run_case
from bench.runners.fluvial import FluvialRunner
from bench.workloads import Workload

log = logging.getLogger("bench")
RATE_HZ = 250
# Frames every stack shares (interpreter start-up, the CLI): left out of the inclusive table.
_WRAPPERS = ("<frozen", "click/", "fluvial/__main__", "fluvial/cli/", "App.run ", "App._loop ")


class ProfiledFluvial(FluvialRunner):
    stop_signal = signal.SIGINT  # py-spy writes its file on SIGINT; fluvial closes cleanly

    def __init__(self, python: str, repo: Path, out_file: Path) -> None:
        super().__init__(python, repo, workers=1)
        self.key = "fluvial-1w-profiled"
        self.name = "fluvial (1 worker, under py-spy)"
        py_spy = shutil.which("py-spy", path=str(Path(python).parent)) or "py-spy"
        self.wrap = (py_spy, "record", "--format", "raw", "--rate", str(RATE_HZ),
                     "--output", str(out_file), "--")


def _frame(frame: str) -> str:
    """'func (path/file.py:123)' -> 'func (path/file.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def summarize(raw: Path, top: int = 15) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, hottest by self time, hottest by inclusive time) from py-spy's raw output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and
                  not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return total, own.most_common(top), incl.most_common(top + 30)


def profile_fluvial(workloads: list[Workload], settings: Settings, bootstrap: str,
                    work: Path, out: Path, run_id: str) -> dict[str, Any]:
    import sys

    from bench.run import REPO

    results: dict[str, Any] = {}
    notes = ["# fluvial profiles (py-spy)", "",
             f"fluvial with 1 worker under `py-spy record --format raw --rate {RATE_HZ}`, "
             "one run per workload, twice the benchmark's records (latency phase shortened to "
             "1 s, so most samples are the throughput phase). Idle threads are not sampled. "
             "Time inside C calls (librdkafka, orjson, RocksDB) is charged to the Python "
             "frame that called them. Raw stacks: `profile-<workload>.txt` (collapsed "
             "format; https://speedscope.app opens it).", ""]
    # twice the benchmark's records, for enough samples where fluvial is fast
    prof_settings = replace(settings, latency_seconds=1.0, scale=settings.scale * 2,
                            records=settings.records * 2 if settings.records else None)
    for w in workloads:
        raw = out / f"profile-{w.name}.txt"
        runner = ProfiledFluvial(sys.executable, REPO, raw)
        log.info("── profiling fluvial-1w x %s", w.name)
        if hasattr(w, "run_case"):  # a workload with its own case (the Nexmark event queries)
            res = w.run_case(runner, prof_settings, bootstrap, work, f"{run_id}-prof")
        else:
            res = run_case(runner, w, prof_settings, bootstrap, work, f"{run_id}-prof")
        results[w.name] = {k: res.get(k) for k in ("status", "throughput", "error")}
        notes += [f"## {w.title}", ""]
        if not raw.is_file():
            notes += [f"No profile written ({res.get('status')}: {res.get('error', '')}).", ""]
            continue
        total, own, incl = summarize(raw)
        results[w.name]["samples"] = total
        notes += [f"{total:,} samples; throughput under py-spy "
                  f"{res.get('throughput') or 0:,.0f} {w.unit}/s (status {res['status']}).", "",
                  "Hottest by self time (the frame on top of the stack):", "",
                  "| % | function |", "|---:|---|"]
        notes += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own]
        notes += ["", "Hottest by inclusive time (on the stack):", "", "| % | function |",
                  "|---:|---|"]
        notes += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in incl
                  if not any(skip in f for skip in _WRAPPERS)][:18]
        notes.append("")
    (out / "profile-notes.md").write_text("\n".join(notes))
    return results
