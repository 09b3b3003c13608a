"""CPU seconds per record of a workload's DSL and SQL topologies, in process (no broker).

Each topology runs on the ``TestDriver``'s tasks fed in poll-sized batches (what a consumer
gives a task), what they write to their own repartition topics fed back the same way; the
time is ``time.process_time``, DSL and SQL alternated, the median of the repeats. What it
leaves out (the client, the broker, RocksDB) is the same for both; this isolates the cost
of the compiled SQL against the hand-written DSL::

    PYTHONPATH=src python -m bench.sql_inprocess stateless wordcount windowed
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import fluvial
from bench import workloads
from fluvial.cli.main import GC_THRESHOLDS
from fluvial.sql import Engine

BATCH = 500


def run(topology: Any, inputs: list[workloads.Input]) -> float:
    """CPU seconds to push ``inputs`` through ``topology``."""
    with fluvial.TestDriver(topology) as driver:
        d: Any = driver
        start = time.process_time()
        for i in range(0, len(inputs), BATCH):
            messages = [d._append("in", r.key, r.value, r.index, None)
                        for r in inputs[i:i + BATCH]]
            pending = [("in", messages)]
            while pending:
                topic, batch = pending.pop(0)
                task = d._tasks[topic]
                outer, d._written = d._written, []
                task.process(topic, batch)
                task.flush()
                written, d._written = d._written, outer
                by_topic: dict[str, list[Any]] = {}
                for m in written:
                    by_topic.setdefault(m.topic(), []).append(m)
                pending.extend(by_topic.items())
            for log in d._topics.values():  # what a broker would hold, not this process:
                log.clear()  # kept, a growing heap the GC scans would tax the later records
        return time.process_time() - start


def measure(name: str, records: int, repeats: int) -> tuple[float, float]:
    """Median µs of CPU per record of the DSL and SQL topologies of workload ``name``."""
    os.environ["BENCH_INPUT"], os.environ["BENCH_OUTPUT"] = "in", "out"
    w = workloads.get(name)
    inputs = w.generate(random.Random(7), 0, records, 4)
    engine = Engine()
    engine.execute(w.sql_script("in", "out", 4, "app"))
    builds: dict[str, Callable[[], Any]] = {"dsl": w.fluvial_topology, "sql": engine.topology}
    times: dict[str, list[float]] = {"dsl": [], "sql": []}
    for _ in range(repeats):
        for system, build in builds.items():
            times[system].append(run(build(), inputs))
    dsl, sql = (statistics.median(times[s]) / records * 1e6 for s in ("dsl", "sql"))
    return dsl, sql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="+")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)  # as `fluvial run` and `fluvial sql -f` have it
    for name in args.workloads:
        dsl, sql = measure(name, args.records, args.repeats)
        print(f"{name:10} DSL {dsl:6.1f} µs/rec  SQL {sql:6.1f} µs/rec  "
              f"SQL/DSL throughput {dsl / sql:.2f}", flush=True)


if __name__ == "__main__":
    main()
