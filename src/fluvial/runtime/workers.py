"""``--workers N``: N processes, each a full instance in the same consumer group.

Processes, not threads: CPU-bound operators hold the GIL. The parent only supervises: it
passes SIGTERM/SIGINT on to every worker (each then commits and leaves the group), and SIGUSR1
(each writes its threads' stacks), and exits non-zero if any worker failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("fluvial.workers")


def run_workers(count: int, target: Callable[..., None], args: tuple[Any, ...]) -> int:
    """Run ``target(worker_index, *args)`` in ``count`` processes; 0 if all exit cleanly."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(i, *args), name=f"fluvial-worker-{i}")
             for i in range(count)]
    for p in procs:
        p.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signum)

    # SIGUSR1: each worker writes its threads' stacks (fluvial run registers it)
    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        for p in procs:
            p.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [f"{p.name} (exit {p.exitcode})" for p in procs if p.exitcode != 0]
    if failed:
        log.error("worker(s) failed: %s", ", ".join(failed))
        return 1
    return 0
