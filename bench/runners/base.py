"""The runner interface: start a system's process(es) for a workload, stop them.

The driver owns everything else (topics, input, reading the output, metrics), so a runner is
a command line plus what it needs to know about the system (its versions, whether it is
installed, how many consumer-group members it starts).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.workloads import Workload


@dataclass
class RunContext:
    workload: Workload
    bootstrap: str
    app_id: str  # also the consumer group id
    input_topic: str
    output_topic: str
    commit_ms: int
    partitions: int
    state_dir: Path
    log_path: Path
    wrap: list[str] = field(default_factory=list)  # e.g. a py-spy command line, ending in --


class Handle:
    """The started process (in its own process group, so stop() reaches its children)."""

    def __init__(self, proc: subprocess.Popen[bytes], log: IO[bytes], log_path: Path,
                 stop_signal: int = signal.SIGTERM) -> None:
        self.proc = proc
        self.stop_signal = stop_signal
        self._log = log
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP every process of the system (to queue input it has not seen yet)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the process group (each system commits and leaves), SIGKILL after timeout."""
        if self.alive():
            self._signal(self.stop_signal)
            self._signal(signal.SIGCONT)  # in case it was paused
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
        else:
            self._signal(signal.SIGKILL)  # stray children of a dead parent
        self._log.close()
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Runner(ABC):
    key: str  # short id used in results and on the command line, e.g. "fluvial-2w"
    name: str  # for tables
    system: str  # matched against Workload.systems
    members = 1  # consumer-group members it starts
    stop_signal: int = signal.SIGTERM
    wrap: tuple[str, ...] = ()  # a command prefix, e.g. py-spy record ... --

    def __init__(self, python: str, repo: Path) -> None:
        self.python = python
        self.repo = repo

    def unavailable(self) -> str | None:
        """Why this system cannot run here, or None."""
        return None

    def versions(self) -> dict[str, str]:
        return {}

    def supports(self, workload: Workload) -> bool:
        return self.system in workload.systems

    def settings(self) -> dict[str, str]:
        """System-specific settings worth stating next to the results."""
        return {}

    @abstractmethod
    def command(self, ctx: RunContext) -> list[str]: ...

    def env(self, ctx: RunContext) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.repo), str(self.repo / "src"), env.get("PYTHONPATH")) if p)
        env["BENCH_INPUT"] = ctx.input_topic
        env["BENCH_OUTPUT"] = ctx.output_topic
        env["BENCH_PARTITIONS"] = str(ctx.partitions)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, ctx: RunContext) -> Handle:
        ctx.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(ctx.log_path, "wb")  # noqa: SIM115 - the Handle closes it
        log.write(f"# {time.strftime('%H:%M:%S')} {' '.join(self.command(ctx))}\n".encode())
        log.flush()
        proc = subprocess.Popen([*ctx.wrap, *self.command(ctx)], cwd=self.repo,
                                env=self.env(ctx), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        return Handle(proc, log, ctx.log_path, self.stop_signal)

    # -- helpers ------------------------------------------------------------------------------

    def python_versions(self, *dists: str) -> dict[str, str]:
        """Versions of installed distributions, as seen by the interpreter the system uses."""
        code = ("import importlib.metadata as m, sys\n"
                "for d in sys.argv[1:]:\n"
                "    try: print(d, m.version(d))\n"
                "    except Exception: print(d, 'missing')\n")
        try:
            out = subprocess.run([self.python, "-c", code, *dists], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def python_import_error(self, module: str) -> str | None:
        proc = subprocess.run([self.python, "-c", f"import {module}"], capture_output=True,
                              text=True, timeout=120, check=False)
        if proc.returncode == 0:
            return None
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"`import {module}` fails in {self.python}: {last}"

    def app_args(self, ctx: RunContext) -> list[str]:
        return [ctx.workload.name, ctx.bootstrap, ctx.app_id, ctx.input_topic, ctx.output_topic,
                str(ctx.commit_ms), str(ctx.state_dir)]
