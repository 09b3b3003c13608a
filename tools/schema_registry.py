#!/usr/bin/env python3
"""A real schema registry (Apicurio Registry, Confluent-compatible API) for tests, without Docker.

Why this exists: the Avro / JSON Schema / Protobuf serdes must be tested against a real
registry, which refuses incompatible schemas and hands out ids by its own rules; a fake would
only echo our assumptions. Apicurio Registry (Apache-2.0) is on Maven Central as a library jar
that a Quarkus build turns into a runnable app: ``tools/registry/pom.xml`` is that build. The
first ``fetch`` runs it once (about 20 s with a warm Maven cache) into
``<kafka home>/registry-<version>/`` (``$FLUVIAL_KAFKA_HOME`` or ``<repo>/.kafka``, shared with
the broker's jars); later runs reuse it until the POM changes.

Library use (what the pytest fixture does)::

    with SchemaRegistryServer() as registry:
        print(registry.url)   # http://127.0.0.1:PORT/apis/ccompat/v7

Command line::

    python tools/schema_registry.py fetch    # build the app (once)
    python tools/schema_registry.py up       # start, detached; prints the URL
    python tools/schema_registry.py down
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tools`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.kafka_cluster import (
    LOOPBACK,
    KafkaToolError,
    _die_with_parent,
    find_free_ports,
    find_java,
    find_mvn,
    kafka_home,
    pid_alive,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
POM_PATH = REPO_ROOT / "tools" / "registry" / "pom.xml"
CCOMPAT_PATH = "/apis/ccompat/v7"
MARKER_NAME = ".built"
STATE_NAME = "registry-state.json"
START_TIMEOUT_S = 120.0


def registry_version(pom: Path = POM_PATH) -> str:
    """The Apicurio version pinned by the POM's ``apicurio.version`` property."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:apicurio.version", ns)
    if node is None or not (node.text or "").strip():
        raise KafkaToolError(f"{pom} has no <apicurio.version> property")
    return (node.text or "").strip()


def _build_digest(pom: Path) -> str:
    """Digest of everything the build reads: the POM and its resources."""
    h = hashlib.sha256(pom.read_bytes())
    for f in sorted((pom.parent / "src").rglob("*")):
        if f.is_file():
            h.update(f.relative_to(pom.parent).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def default_app_dir(home: Path | None = None, pom: Path = POM_PATH) -> Path:
    """``<kafka home>/registry-<version>``: one built app per version."""
    return (home or kafka_home()) / f"registry-{registry_version(pom)}"


def app_is_built(app_dir: Path, pom: Path = POM_PATH) -> bool:
    """True when ``app_dir`` holds a finished build made from this very POM and resources."""
    try:
        data = json.loads((app_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (data.get("build_sha256") == _build_digest(pom)
            and (app_dir / "quarkus-run.jar").is_file())


def fetch_app(app_dir: Path | None = None, pom: Path = POM_PATH,
              env: Mapping[str, str] | None = None, quiet: bool = False) -> Path:
    """Build the registry app into ``app_dir`` unless an up-to-date build is there; return it.

    Maven downloads the registry and Quarkus from Maven Central and the Quarkus plugin
    packages them; the result is renamed into place under a file lock, so concurrent runs never
    see half a build.
    """
    app_dir = app_dir or default_app_dir(pom=pom)
    if app_is_built(app_dir, pom):
        return app_dir
    app_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(app_dir.parent / f".{app_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if app_is_built(app_dir, pom):
            return app_dir
        build_dir = app_dir.parent / f".{app_dir.name}.build-{os.getpid()}"
        shutil.rmtree(build_dir, ignore_errors=True)
        cmd = [find_mvn(env), "-B", "-q", "-f", str(pom), "package",
               f"-Dregistry.build.dir={build_dir}"]
        if not quiet:
            print(f"building Apicurio Registry {registry_version(pom)} with Maven into "
                  f"{app_dir} ...", file=sys.stderr)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        built = build_dir / "quarkus-app"
        if proc.returncode != 0 or not (built / "quarkus-run.jar").is_file():
            shutil.rmtree(build_dir, ignore_errors=True)
            out = (proc.stdout + proc.stderr).strip()[-4000:]
            raise KafkaToolError(f"Maven failed to build the schema registry (exit "
                                 f"{proc.returncode}):\n  {' '.join(cmd)}\n{out}")
        (built / MARKER_NAME).write_text(json.dumps(
            {"version": registry_version(pom), "build_sha256": _build_digest(pom),
             "built_at": time.time()}, indent=2))
        shutil.rmtree(app_dir, ignore_errors=True)
        os.replace(built, app_dir)
        shutil.rmtree(build_dir, ignore_errors=True)
        if not quiet:
            print(f"built the registry in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return app_dir


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/subjects", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class SchemaRegistryServer:
    """One Apicurio Registry JVM on a free loopback port, in-memory storage.

    The JVM dies with the Python process that started it (PR_SET_PDEATHSIG) unless
    ``detached``; ``stop`` kills it. ``url`` is the Confluent-compatible API's base URL.
    """

    def __init__(self, app_dir: Path | None = None, run_dir: Path | None = None,
                 detached: bool = False) -> None:
        self.app_dir = app_dir or default_app_dir()
        self.run_dir = run_dir or kafka_home() / f"registry-run-{os.getpid()}"
        self.detached = detached
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{CCOMPAT_PATH}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "registry.log"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> SchemaRegistryServer:
        """Build if needed, start the JVM and wait until the API answers."""
        fetch_app(self.app_dir, quiet=True)
        java = find_java()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.port,) = find_free_ports(1)
        cmd = [java, "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dquarkus.http.port={self.port}", f"-Dquarkus.http.host={LOOPBACK}",
               "-Dquarkus.log.console.level=WARN",
               "-jar", str(self.app_dir / "quarkus-run.jar")]
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:  # the JVM keeps its own copy of the file
            self.proc = subprocess.Popen(
                cmd, cwd=self.run_dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=None if self.detached else _die_with_parent)
        deadline = t0 + timeout_s
        while not _answers(self.url):
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise KafkaToolError(f"the schema registry exited with code "
                                     f"{self.proc.returncode} while starting; log "
                                     f"{self.log_path}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaToolError(f"the schema registry did not answer on {self.url} within "
                                     f"{timeout_s:.0f}s; log {self.log_path}")
            time.sleep(0.2)
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Kill the JVM (its storage is in memory: nothing to shut down cleanly)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> SchemaRegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _state_path() -> Path:
    return kafka_home() / STATE_NAME


def _running() -> dict[str, Any]:
    """The detached registry ``up`` started (pid, url), or {} when none is running."""
    try:
        state = json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state.get("pid"), int) and pid_alive(state["pid"]) else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=["fetch", "up", "down"])
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch_app())
        elif args.command == "up":
            if running := _running():
                print(running["url"])  # one is enough
                return 0
            server = SchemaRegistryServer(run_dir=kafka_home() / "registry-run-cli",
                                          detached=True).start()
            assert server.proc is not None
            _state_path().write_text(json.dumps({"pid": server.proc.pid, "url": server.url}))
            print(server.url)
        else:
            if running := _running():
                os.killpg(running["pid"], signal.SIGKILL)
                print(f"stopped the schema registry (pid {running['pid']})")
            _state_path().unlink(missing_ok=True)
    except KafkaToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
