"""Which instance of the application this process is: a slot, stable across restarts.

Slot *k* of an application lives in ``<state_dir>/<application_id>/instance-<k>.id`` (a
random id written once) and is held by a lock on that file for the life of the process.
A process takes the lowest slot no live process holds, so a restarted instance (or worker
*k* of ``fluvial run --workers N``) gets its predecessor's id back. The id names the
transactional producer (``<application_id>-<id>``): the successor's ``init_transactions``
fences the dead one at once and aborts the transaction it left open, instead of readers
waiting for the broker's transaction timeout. A marker file beside it, removed when the
process releases the slot, tells the next process whether its predecessor was killed.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fluvial.errors import ConfigError

MAX_SLOTS = 1024


@dataclass
class InstanceSlot:
    slot: int
    instance_id: str
    _lock: IO[str]
    _running: Path  # exists while a process holds the slot: left behind by a kill -9
    crashed_before: bool = False  # the slot's previous process did not release it

    def transactional_id(self, application_id: str) -> str:
        return f"{application_id}-{self.instance_id}"

    def group_instance_id(self, configured: str) -> str:
        """The static member id: the configured one, suffixed for slots after the first."""
        return configured if self.slot == 0 else f"{configured}-{self.slot}"

    def release(self) -> None:
        self._running.unlink(missing_ok=True)
        self._lock.close()  # closing the file drops the lock


def claim_slot(app_dir: Path) -> InstanceSlot:
    """Take the lowest free slot under ``app_dir``; create its id on first use."""
    app_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        path = app_dir / f"instance-{slot}.id"
        f = open(path, "a+")  # noqa: SIM115 - held open: the lock lives as long as the file
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        f.seek(0)
        instance_id = f.read().strip()
        if not instance_id:
            instance_id = uuid.uuid4().hex
            f.write(instance_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        running = app_dir / f"instance-{slot}.running"
        crashed_before = running.exists()
        running.touch()
        return InstanceSlot(slot, instance_id, f, running, crashed_before)
    raise ConfigError(f"{MAX_SLOTS} instances already hold slots under {app_dir}")
