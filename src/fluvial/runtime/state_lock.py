"""One instance per state directory: a lock file taken at start-up, held until close.

Two instances of an application on one state directory would open the same task stores;
RocksDB refuses the second with a raw ``LOCK`` error mid-rebalance. Taking ``.lock`` in
``<state_dir>/<application_id>`` first turns that into one clear line at start-up.

The lock is an ``flock``: the OS drops it when the process dies, so a crash leaves nothing
to clean up. Apps in one process share it (tests run several instances side by side), and
``fluvial run --workers N`` children share their parent's: together they are one instance.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import IO

from fluvial.errors import ConfigError

LOCK_NAME = ".lock"


class StateDirLockedError(ConfigError):
    """Another instance holds the state directory."""


_held: dict[Path, tuple[IO[str], int]] = {}  # directory -> (open lock file, users here)
_guard = threading.Lock()


def acquire(directory: Path) -> None:
    """Take ``directory``'s lock for this process (re-entrant across apps in the process)."""
    directory = directory.resolve()
    with _guard:
        if directory in _held:
            handle, users = _held[directory]
            _held[directory] = (handle, users + 1)
            return
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK_NAME).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            if holder != os.getppid():  # a --workers child runs under its parent's lock
                handle.close()
                raise StateDirLockedError(
                    f"state directory {directory} is in use by another instance "
                    f"(pid {holder or 'unknown'}); stop it, or give this instance its own "
                    f"state directory (--state-dir / state_dir)") from None
        else:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        _held[directory] = (handle, 1)


def release(directory: Path) -> None:
    directory = directory.resolve()
    with _guard:
        if directory not in _held:
            return
        handle, users = _held[directory]
        if users > 1:
            _held[directory] = (handle, users - 1)
            return
        del _held[directory]
        handle.close()  # closing drops the flock


def _holder(handle: IO[str]) -> int | None:
    with contextlib.suppress(ValueError, OSError):
        handle.seek(0)
        return int(handle.read().strip())
    return None
