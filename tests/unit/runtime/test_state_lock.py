"""One instance per state directory; apps in one process and --workers children share it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fluvial.runtime import state_lock

TRY_LOCK = ("import sys; from pathlib import Path; from fluvial.runtime import state_lock\n"
            "try:\n    state_lock.acquire(Path(sys.argv[1]))\n"
            "except Exception as e:\n    print(e); sys.exit(2)\n")


def try_from_child(directory: Path, via_shell: bool) -> subprocess.CompletedProcess[str]:
    """Acquire in a child process (our child), or in a grandchild (a shell's child)."""
    command = [sys.executable, "-c", TRY_LOCK, str(directory)]
    if via_shell:
        command = ["bash", "-c", " ".join(f"'{part}'" for part in command) + "; exit $?"]
    return subprocess.run(command, text=True, capture_output=True, timeout=60)


def test_apps_in_one_process_share_the_lock(tmp_path: Path) -> None:
    state_lock.acquire(tmp_path / "app")
    state_lock.acquire(tmp_path / "app")
    state_lock.release(tmp_path / "app")
    assert try_from_child(tmp_path / "app", via_shell=True).returncode == 2  # still held
    state_lock.release(tmp_path / "app")
    assert try_from_child(tmp_path / "app", via_shell=True).returncode == 0  # free again


def test_a_child_shares_its_parents_lock_and_a_stranger_is_refused(tmp_path: Path) -> None:
    state_lock.acquire(tmp_path / "app")
    try:
        assert try_from_child(tmp_path / "app", via_shell=False).returncode == 0
        stranger = try_from_child(tmp_path / "app", via_shell=True)
    finally:
        state_lock.release(tmp_path / "app")
    assert stranger.returncode == 2
    assert stranger.stdout.strip() == (
        f"state directory {(tmp_path / 'app').resolve()} is in use by another instance "
        f"(pid {os.getpid()}); stop it, or give this instance its own state directory "
        f"(--state-dir / state_dir)")
