#!/usr/bin/env python3
"""A real Apache Kafka broker (KRaft) for development and CI, without Docker.

Why this exists: fluvial's guarantees (replication, fail-over, transactions,
consumer-group offsets) can only be tested against a real broker; librdkafka's
mock cluster does not implement enough of it. A Kafka "distribution" is just
jars plus shell scripts, so this module fetches the jars from Maven Central once
(``tools/kafka/pom.xml`` pins the version) and starts ``kafka.Kafka`` JVMs
directly, one combined broker+controller per node, on free loopback ports.

Library use (what the pytest fixtures do)::

    with KafkaCluster(nodes=3) as cluster:
        print(cluster.bootstrap_servers)
        cluster.kill_node(2)
        cluster.restart_node(2)

Command line::

    python tools/kafka_cluster.py fetch          # download the jars (once)
    python tools/kafka_cluster.py up [--nodes 3] # start, detached; prints bootstrap
    python tools/kafka_cluster.py status
    python tools/kafka_cluster.py down

Only the standard library and confluent_kafka are used (the latter lazily, so
``fetch`` works without it).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
POM_PATH = REPO_ROOT / "tools" / "kafka" / "pom.xml"
DEFAULT_HOME = REPO_ROOT / ".kafka"
MIN_JAVA = 17
MARKER_NAME = ".fetched"
STATE_NAME = "state.json"
LOOPBACK = "127.0.0.1"

# Environment overrides (so CI can cache outside the checkout or pick a JDK).
ENV_HOME = "FLUVIAL_KAFKA_HOME"  # replaces <repo>/.kafka
ENV_JAVA = "FLUVIAL_JAVA"  # path to a java binary; else $JAVA_HOME/bin/java; else PATH

log = logging.getLogger("fluvial.kafka_cluster")


class KafkaToolError(RuntimeError):
    """A problem the user can fix (missing tool, broker failed to start, ...)."""


# --------------------------------------------------------------------------------------
# Prerequisites: java and mvn
# --------------------------------------------------------------------------------------

JAVA_INSTALL_HINT = (
    "Install a Java {min}+ runtime (e.g. `apt-get install openjdk-17-jre-headless`, "
    "or a Temurin JDK) and put `java` on PATH, or set JAVA_HOME / {env}."
)
MVN_INSTALL_HINT = (
    "Install Apache Maven 3.8+ (e.g. `apt-get install maven`) and put `mvn` on PATH; "
    "it is only needed once, to download the Kafka jars from Maven Central."
)


def parse_java_major(version_output: str) -> int:
    """Return the major version from ``java -version`` output.

    Handles both the modern form (``"17.0.15"``, ``"25"``) and the legacy one
    (``"1.8.0_292"`` means 8).
    """
    m = re.search(r'version "([^"]+)"', version_output)
    if not m:
        raise KafkaToolError(f"cannot parse `java -version` output: {version_output.strip()!r}")
    parts = re.split(r"[._+-]", m.group(1))
    try:
        major = int(parts[0])
        if major == 1 and len(parts) > 1:
            major = int(parts[1])
    except ValueError as exc:
        raise KafkaToolError(f"cannot parse java version {m.group(1)!r}") from exc
    return major


def find_java(env: Mapping[str, str] | None = None) -> str:
    """Locate ``java`` and check it is at least Java 17 (Kafka 4.x brokers need it).

    Looks at ``$FLUVIAL_JAVA``, then ``$JAVA_HOME/bin/java``, then ``PATH``.
    Raises :class:`KafkaToolError` with install instructions otherwise.
    """
    env = os.environ if env is None else env
    hint = JAVA_INSTALL_HINT.format(min=MIN_JAVA, env=ENV_JAVA)
    candidate: str | None = env.get(ENV_JAVA) or None
    if candidate is None and env.get("JAVA_HOME"):
        jh = Path(env["JAVA_HOME"]) / "bin" / "java"
        if jh.is_file() and os.access(jh, os.X_OK):
            candidate = str(jh)
    if candidate is None:
        candidate = shutil.which("java", path=env.get("PATH", ""))
    if candidate is None:
        raise KafkaToolError(f"`java` was not found. {hint}")
    try:
        proc = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise KafkaToolError(f"cannot run {candidate!r}: {exc}. {hint}") from exc
    major = parse_java_major(proc.stderr + proc.stdout)
    if major < MIN_JAVA:
        raise KafkaToolError(
            f"{candidate} is Java {major}, but Kafka 4.x needs Java {MIN_JAVA} or newer. {hint}"
        )
    return candidate


def find_mvn(env: Mapping[str, str] | None = None) -> str:
    """Locate ``mvn`` on PATH or raise :class:`KafkaToolError` saying what to install."""
    env = os.environ if env is None else env
    mvn = shutil.which("mvn", path=env.get("PATH", ""))
    if mvn is None:
        raise KafkaToolError(f"`mvn` was not found. {MVN_INSTALL_HINT}")
    return mvn


# --------------------------------------------------------------------------------------
# Jars
# --------------------------------------------------------------------------------------


def kafka_version(pom: Path = POM_PATH) -> str:
    """The Kafka version pinned by the ``kafka.version`` property of the POM.

    The POM is the single place the version lives; everything else reads it.
    """
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()
    node = root.find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise KafkaToolError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def kafka_home(env: Mapping[str, str] | None = None) -> Path:
    """Root for jar caches and run dirs: ``$FLUVIAL_KAFKA_HOME`` or ``<repo>/.kafka``."""
    env = os.environ if env is None else env
    return Path(env[ENV_HOME]) if env.get(ENV_HOME) else DEFAULT_HOME


def default_jars_dir(version: str | None = None, home: Path | None = None) -> Path:
    """``<home>/jars-<version>``: one cache per version so a bump never mixes jars."""
    return (home or kafka_home()) / f"jars-{version or kafka_version()}"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_are_fetched(jars_dir: Path, pom: Path = POM_PATH) -> bool:
    """True when ``jars_dir`` holds a complete fetch made from this very POM.

    The marker stores the POM's digest, so editing the POM (another binding, a new
    version) triggers a new fetch, while an unchanged POM never invokes Maven again.
    """
    marker = jars_dir / MARKER_NAME
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if data.get("pom_sha256") != _pom_digest(pom):
        return False
    return all((jars_dir / name).is_file() for name in data.get("jars", [])) and bool(
        data.get("jars")
    )


def fetch_jars(
    jars_dir: Path | None = None,
    pom: Path = POM_PATH,
    env: Mapping[str, str] | None = None,
    quiet: bool = False,
) -> Path:
    """Make sure the broker's runtime jars are in ``jars_dir``; return it.

    Runs Maven at most once per POM: a marker file records a finished fetch. The copy
    goes to a temporary sibling directory that is renamed into place, under a file
    lock, so concurrent test runs (several engineers share a checkout) never see a
    half-filled directory.
    """
    version = kafka_version(pom)
    jars_dir = jars_dir or default_jars_dir(version)
    if jars_are_fetched(jars_dir, pom):
        return jars_dir
    jars_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = jars_dir.parent / f".{jars_dir.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jars_are_fetched(jars_dir, pom):  # another process finished meanwhile
            return jars_dir
        mvn = find_mvn(env)
        tmp = jars_dir.parent / f".{jars_dir.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        if not quiet:
            print(f"fetching Kafka {version} jars with Maven into {jars_dir} ...", file=sys.stderr)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            out = (proc.stdout + proc.stderr).strip()[-4000:]
            raise KafkaToolError(
                f"Maven failed to fetch the Kafka jars (exit {proc.returncode}):\n"
                f"  {' '.join(cmd)}\n{out}"
            )
        jars = sorted(p.name for p in tmp.glob("*.jar"))
        if not any(j.startswith("kafka_2.13-") for j in jars):
            shutil.rmtree(tmp, ignore_errors=True)
            raise KafkaToolError(f"Maven ran but no kafka_2.13 jar appeared in {tmp}")
        (tmp / MARKER_NAME).write_text(
            json.dumps(
                {
                    "kafka_version": version,
                    "pom_sha256": _pom_digest(pom),
                    "jars": jars,
                    "fetched_at": time.time(),
                },
                indent=2,
            )
        )
        shutil.rmtree(jars_dir, ignore_errors=True)
        os.replace(tmp, jars_dir)
        if not quiet:
            print(
                f"fetched {len(jars)} jars in {time.monotonic() - t0:.1f}s",
                file=sys.stderr,
            )
    return jars_dir


# --------------------------------------------------------------------------------------
# Pure helpers: ports, ids, configuration
# --------------------------------------------------------------------------------------


def find_free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return ``count`` distinct TCP ports that are free on ``host`` right now.

    Binds port 0 (the kernel picks a free one) for all sockets at once, so the ports
    are distinct, then releases them. Fixed ports (19092...) collide with whatever
    else runs on a shared machine; this does not. There is a small window before the
    JVM binds them; the ports come from the ephemeral range, so a clash is unlikely.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def random_cluster_id() -> str:
    """A KRaft cluster id: url-safe base64 of 16 random bytes, no padding.

    Same shape as ``StorageTool random-uuid``; avoids a JVM start just for an id.
    A leading '-' would be read as an option by the storage tool, so avoid it.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class SaslSslListener:
    """An extra SASL_SSL listener for testing secured clients: TLS with ``keystore`` (PKCS12
    holding the broker's key and certificate chain), SASL with SCRAM-SHA-256 and PLAIN for
    ``users`` (name -> password). Brokers and controllers keep talking PLAINTEXT."""

    keystore: Path
    keystore_password: str
    users: Mapping[str, str]

    def broker_config(self) -> dict[str, str]:
        plain_users = " ".join(f'user_{name}="{pw}"' for name, pw in self.users.items())
        prefix = "listener.name.sasl_ssl"
        return {
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,PLAIN",
            f"{prefix}.ssl.keystore.type": "PKCS12",
            f"{prefix}.ssl.keystore.location": str(self.keystore),
            f"{prefix}.ssl.keystore.password": self.keystore_password,
            f"{prefix}.ssl.key.password": self.keystore_password,
            f"{prefix}.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                f"{plain_users};",
            f"{prefix}.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        }

    def format_args(self) -> list[str]:
        """StorageTool arguments that create the SCRAM credentials with the cluster."""
        return [arg for name, pw in self.users.items()
                for arg in ("--add-scram", f"SCRAM-SHA-256=[name={name},password={pw}]")]


@dataclass
class NodeSpec:
    """Where one node listens and keeps its files."""

    node_id: int
    broker_port: int
    controller_port: int
    node_dir: Path
    host: str = LOOPBACK
    sasl_ssl_port: int | None = None  # with a SaslSslListener

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "data"

    @property
    def config_path(self) -> Path:
        return self.node_dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.node_dir / "broker.log"

    @property
    def broker_address(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def controller_address(self) -> str:
        return f"{self.host}:{self.controller_port}"

    @property
    def sasl_ssl_address(self) -> str | None:
        return None if self.sasl_ssl_port is None else f"{self.host}:{self.sasl_ssl_port}"


def render_config(
    node: NodeSpec,
    all_nodes: Sequence[NodeSpec],
    overrides: Mapping[str, str] | None = None,
    sasl_ssl: SaslSslListener | None = None,
) -> dict[str, str]:
    """The ``server.properties`` of one node, tuned for fast tests (and with ``sasl_ssl``,
    a SASL_SSL listener on the node's ``sasl_ssl_port`` besides the PLAINTEXT one).

    Every node is a combined broker+controller. The quorum is static
    (``controller.quorum.voters``): it needs no directory ids at format time and a
    restarted node simply rejoins. With one node every internal topic has
    replication 1; with several, replication = min(3, nodes) and min ISR 2, so a
    single killed node loses nothing and acks=all still succeeds.
    """
    n = len(all_nodes)
    rf = min(3, n)
    min_isr = 2 if n >= 3 else 1
    voters = ",".join(f"{x.node_id}@{x.controller_address}" for x in all_nodes)
    cfg: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{node.broker_address},CONTROLLER://{node.controller_address}",
        "advertised.listeners": f"PLAINTEXT://{node.broker_address}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        # Tests create their topics explicitly; a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min_isr),
        # Internal topics: few partitions (creating 50 is slow on 2 cores).
        "offsets.topic.num.partitions": "1" if n == 1 else "3",
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.num.partitions": "1" if n == 1 else "3",
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.num.partitions": "1" if n == 1 else "3",
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        # No 3 s wait before the first rebalance of a new group.
        "group.initial.rebalance.delay.ms": "0",
        # Let tests use short consumer session timeouts (classic protocol).
        "group.min.session.timeout.ms": "1000",
        # The consumer protocol (KIP-848) takes both timeouts from the broker, not the
        # client: a SIGKILLed member leaves after 6 s (default 45 s), and members learn
        # their new assignment at their next heartbeat, every 1 s (default 5 s).
        "group.consumer.min.session.timeout.ms": "1000",
        "group.consumer.session.timeout.ms": "6000",
        "group.consumer.min.heartbeat.interval.ms": "100",
        "group.consumer.heartbeat.interval.ms": "1000",
        # Small machine: fewer threads than the defaults (3 network, 8 io).
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
    }
    if sasl_ssl is not None:
        if node.sasl_ssl_address is None:
            raise ValueError(f"node {node.node_id} has no sasl_ssl_port")
        cfg["listeners"] += f",SASL_SSL://{node.sasl_ssl_address}"
        cfg["advertised.listeners"] += f",SASL_SSL://{node.sasl_ssl_address}"
        cfg["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        cfg.update(sasl_ssl.broker_config())
    if n > 1:
        # Fence a killed node quickly (defaults 9000 / 2000) so leadership moves fast.
        cfg["broker.session.timeout.ms"] = "6000"
        cfg["broker.heartbeat.interval.ms"] = "1000"
        cfg["replica.lag.time.max.ms"] = "10000"
    if overrides:
        cfg.update({k: str(v) for k, v in overrides.items()})
    return cfg


def format_properties(cfg: Mapping[str, str]) -> str:
    """Render a Java properties file (values here never need escaping beyond ``\\``)."""
    lines = ["# generated by tools/kafka_cluster.py; edits are overwritten"]
    lines += [f"{k}={str(v).replace(chr(92), chr(92) * 2)}" for k, v in cfg.items()]
    return "\n".join(lines) + "\n"


def jvm_command(
    java: str,
    jars_dir: Path,
    main_class: str,
    args: Sequence[str],
    heap: str = "512m",
    full_jit: bool = False,
) -> list[str]:
    """The JVM command line for a Kafka main class (what kafka-run-class.sh would run).

    By default C1-only JIT (TieredStopAtLevel=1) and a small heap keep start-up quick and
    memory low on a 2-core CI box, where the broker's throughput is not what we test.
    ``full_jit`` keeps the optimizing compiler: a benchmark's broker costs half the CPU.
    """
    return [
        java,
        f"-Xms{min_heap(heap)}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        *([] if full_jit else ["-XX:TieredStopAtLevel=1"]),
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        # e.g. KAFKA_DEBUG_LOGGERS=org.apache.kafka.coordinator.group: a broker's own trace
        *(f"-Dorg.slf4j.simpleLogger.log.{name}=debug"
          for name in os.environ.get("KAFKA_DEBUG_LOGGERS", "").split(",") if name),
        "-cp",
        f"{jars_dir}/*",
        main_class,
        *args,
    ]


def min_heap(heap: str) -> str:
    """Initial heap: 128m, or the max heap if that is smaller."""
    m = re.fullmatch(r"(\d+)([mMgG])", heap)
    if not m:
        raise KafkaToolError(f"heap must look like 512m or 1g, not {heap!r}")
    mb = int(m.group(1)) * (1024 if m.group(2).lower() == "g" else 1)
    return f"{min(mb, 128)}m"


def tail_file(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a text file (for error messages), or a note if absent."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


_ERROR_LINE = re.compile(r" (ERROR|FATAL) |^Caused by: |^Exception in thread ")


def error_lines(path: Path, limit: int = 12) -> list[str]:
    """Distinct ERROR / "Caused by" lines of a broker log, oldest first.

    A broker that dies logs its root cause (e.g. "Address already in use") long
    before the hundreds of shutdown lines a plain tail would show.
    """
    seen: dict[str, None] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if _ERROR_LINE.search(line):
                    key = re.sub(r"^\d\d:\d\d:\d\d\.\d+ ", "", line.rstrip())
                    seen.setdefault(key[:400])
                    if len(seen) >= limit:
                        break
    except OSError:
        return []
    return list(seen)


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """preexec_fn: ask Linux to SIGKILL the JVM when the Python process dies.

    atexit handlers do not run when pytest is SIGKILLed or crashes hard; this does.
    Note the signal fires when the *thread* that spawned the child exits, so
    clusters should be started from a long-lived thread (pytest's main thread is).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_our_broker(pid: int, config_path: Path) -> bool:
    """Guard against pid reuse: only signal a JVM running kafka.Kafka with our config."""
    cmd = pid_cmdline(pid)
    return "kafka.Kafka" in cmd and str(config_path) in cmd


def _signal_group(pid: int, sig: int) -> None:
    """Signal the node's process group (its own session), falling back to the pid."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


# Live clusters of this process, stopped at interpreter exit.
_LIVE: weakref.WeakSet[KafkaCluster] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop(graceful=False)


@dataclass
class _Node:
    spec: NodeSpec
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None  # also set for nodes adopted from a state file
    log_file: TextIO | None = field(default=None, repr=False)


class KafkaCluster:
    """One or more local Kafka KRaft nodes (each a combined broker+controller).

    Nodes are numbered 1..n and ``node_id`` equals Kafka's ``node.id``/broker id, so
    a test can look up a partition leader in metadata and ``kill_node(leader)``.

    By default every JVM dies with the Python process (atexit + PR_SET_PDEATHSIG, and
    each JVM in its own process group), so a crashed pytest does not leak brokers.
    ``detached=True`` (used by the CLI ``up``) lets them outlive this process; a state
    file in the run dir then lets ``down``/``status`` find them.
    """

    def __init__(
        self,
        nodes: int = 1,
        name: str | None = None,
        run_dir: Path | None = None,
        jars_dir: Path | None = None,
        heap: str | None = None,
        host: str = LOOPBACK,
        startup_timeout: float = 120.0,
        config_overrides: Mapping[str, str] | None = None,
        detached: bool = False,
        keep_data: bool = False,
        java: str | None = None,
        full_jit: bool = False,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.num_nodes = nodes
        self.name = name or f"py{os.getpid()}-{nodes}n-{uuid.uuid4().hex[:6]}"
        self.run_dir = (run_dir or kafka_home() / f"run-{self.name}").resolve()
        self._jars_dir = jars_dir
        self.heap = heap or ("512m" if nodes == 1 else "384m")
        self.host = host
        self.startup_timeout = startup_timeout
        self.config_overrides = dict(config_overrides or {})
        self.detached = detached
        self.keep_data = keep_data
        self._java = java
        self.full_jit = full_jit
        self.sasl_ssl = sasl_ssl
        self.cluster_id: str | None = None
        self.start_seconds: float | None = None
        self._nodes: dict[int, _Node] = {}
        self._lock = threading.RLock()

    # -- properties --------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated broker addresses of all nodes (dead ones too)."""
        self._require_started()
        return ",".join(n.spec.broker_address for n in self._nodes.values())

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """Comma-separated SASL_SSL addresses of all nodes (needs ``sasl_ssl``)."""
        self._require_started()
        if self.sasl_ssl is None:
            raise KafkaToolError(f"cluster {self.name!r} has no SASL_SSL listener")
        return ",".join(str(n.spec.sasl_ssl_address) for n in self._nodes.values())

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._nodes)

    @property
    def pids(self) -> dict[int, int]:
        """node_id -> pid of the JVM, for nodes currently running."""
        return {
            i: n.pid for i, n in self._nodes.items() if n.pid is not None and self.is_running(i)
        }

    def node_spec(self, node_id: int) -> NodeSpec:
        return self._node(node_id).spec

    def node_bootstrap(self, node_id: int) -> str:
        """The broker address of one node."""
        return self._node(node_id).spec.broker_address

    def log_path(self, node_id: int) -> Path:
        return self._node(node_id).spec.log_path

    def is_running(self, node_id: int) -> bool:
        node = self._node(node_id)
        if node.proc is not None:
            return node.proc.poll() is None
        return node.pid is not None and pid_alive(node.pid)

    def running_node_ids(self) -> list[int]:
        return [i for i in self.node_ids if self.is_running(i)]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> KafkaCluster:
        """Fetch jars if needed, format storage, start every node, wait until ready."""
        t0 = time.monotonic()
        java = self._java or find_java()
        self._java = java
        jars = fetch_jars(self._jars_dir)
        self._jars_dir = jars
        reap_stale(self.run_dir)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        per_node = 2 if self.sasl_ssl is None else 3
        ports = find_free_ports(per_node * self.num_nodes, self.host)
        specs = [
            NodeSpec(
                node_id=i + 1,
                broker_port=ports[per_node * i],
                controller_port=ports[per_node * i + 1],
                node_dir=self.run_dir / f"node-{i + 1}",
                host=self.host,
                sasl_ssl_port=ports[per_node * i + 2] if self.sasl_ssl is not None else None,
            )
            for i in range(self.num_nodes)
        ]
        self.cluster_id = random_cluster_id()
        for spec in specs:
            spec.node_dir.mkdir(parents=True)
            spec.config_path.write_text(
                format_properties(render_config(spec, specs, self.config_overrides,
                                                self.sasl_ssl))
            )
        self._format_all(specs)
        with self._lock:
            self._nodes = {s.node_id: _Node(spec=s) for s in specs}
            if not self.detached:
                _LIVE.add(self)
        try:
            for spec in specs:
                self._spawn(spec.node_id)
            self._write_state()
            self.wait_ready(timeout=self.startup_timeout)
        except BaseException:
            self.stop(graceful=False)
            raise
        self.start_seconds = time.monotonic() - t0
        self._write_state()
        log.info(
            "kafka cluster %s (%d node(s)) ready at %s in %.1fs",
            self.name,
            self.num_nodes,
            self.bootstrap_servers,
            self.start_seconds,
        )
        return self

    def _format_all(self, specs: Sequence[NodeSpec]) -> None:
        """Format every node's log dir with one cluster id (one JVM per node, in parallel)."""
        assert self._java and self._jars_dir and self.cluster_id
        procs = []
        for spec in specs:
            cmd = jvm_command(
                self._java,
                self._jars_dir,
                "kafka.tools.StorageTool",
                ["format", "-t", self.cluster_id, "-c", str(spec.config_path),
                 *(self.sasl_ssl.format_args() if self.sasl_ssl is not None else [])],
                heap="256m",
            )
            out = open(spec.node_dir / "format.log", "w")  # noqa: SIM115 - closed below
            procs.append((spec, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out))
        errors = []
        for spec, proc, out in procs:
            rc = proc.wait(timeout=120)
            out.close()
            if rc != 0:
                errors.append(
                    f"node {spec.node_id}: StorageTool format exited {rc}:\n"
                    + tail_file(spec.node_dir / "format.log", 20)
                )
        if errors:
            raise KafkaToolError("formatting KRaft storage failed\n" + "\n".join(errors))

    def _spawn(self, node_id: int) -> None:
        assert self._java and self._jars_dir
        node = self._nodes[node_id]
        spec = node.spec
        cmd = jvm_command(
            self._java, self._jars_dir, "kafka.Kafka", [str(spec.config_path)], heap=self.heap,
            full_jit=self.full_jit,
        )
        logf = open(spec.log_path, "a")  # noqa: SIM115 - kept open for the node's life
        logf.write(f"===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting node {node_id} =====\n")
        logf.flush()
        node.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=spec.node_dir,
            start_new_session=True,  # own process group: killpg reaches everything
            preexec_fn=None if self.detached else _die_with_parent,
        )
        node.pid = node.proc.pid
        if node.log_file:
            node.log_file.close()
        node.log_file = logf

    def wait_ready(
        self,
        node_ids: Sequence[int] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Block until the brokers answer and every node in ``node_ids`` is registered.

        ``node_ids`` defaults to the running nodes. Readiness means: each node's port
        accepts connections, each node answers DescribeCluster itself, and the cluster
        metadata lists all of them (an unfenced, registered broker). On time-out or if
        a JVM exits, raises :class:`KafkaToolError` with the tail of the broker log.
        """
        self._require_started()
        timeout = self.startup_timeout if timeout is None else timeout
        wanted = sorted(node_ids) if node_ids is not None else self.running_node_ids()
        deadline = time.monotonic() + timeout
        # 1) TCP: cheap, and avoids librdkafka's connection-refused noise.
        for i in wanted:
            while not _port_open(self.node_spec(i).host, self.node_spec(i).broker_port):
                self._check_alive(i)
                if time.monotonic() > deadline:
                    raise self._not_ready(i, f"port {self.node_spec(i).broker_port} never opened")
                time.sleep(0.05)
        # 2) Kafka protocol: every wanted node sees every wanted node.
        last_err = ""
        for i in wanted:
            while True:
                self._check_alive(i)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._not_ready(i, last_err or "cluster did not become ready")
                try:
                    seen = describe_cluster_ids(self.node_bootstrap(i), min(3.0, remaining))
                except Exception as exc:
                    last_err = f"describe_cluster via node {i}: {exc}"
                    time.sleep(0.1)
                    continue
                if set(wanted) <= set(seen):
                    break
                last_err = f"node {i} lists brokers {sorted(seen)}, waiting for {wanted}"
                time.sleep(0.1)

    def _check_alive(self, node_id: int) -> None:
        if not self.is_running(node_id):
            node = self._node(node_id)
            rc = node.proc.poll() if node.proc else None
            raise self._not_ready(node_id, f"the JVM of node {node_id} exited (code {rc})")

    def _not_ready(self, node_id: int, why: str) -> KafkaToolError:
        path = self.log_path(node_id)
        errors = error_lines(path)
        found = "\n".join(errors) if errors else "(none)"
        return KafkaToolError(
            f"Kafka node {node_id} of cluster {self.name!r} not ready: {why}\n"
            f"--- ERROR lines in {path} ---\n{found}\n"
            f"--- last lines of {path} ---\n{tail_file(path, 25)}"
        )

    def stop_node(self, node_id: int, timeout: float = 60.0) -> int | None:
        """SIGTERM one node (controlled shutdown) and wait for the JVM to exit.

        Falls back to SIGKILL after ``timeout``. Returns the exit code if known.
        """
        return self._terminate(node_id, graceful=True, timeout=timeout)

    def kill_node(self, node_id: int) -> int | None:
        """SIGKILL one node (a crash: no controlled shutdown) and reap it."""
        return self._terminate(node_id, graceful=False, timeout=30.0)

    def restart_node(self, node_id: int, timeout: float | None = None) -> None:
        """Start a stopped/killed node again on the same ports and dirs; wait till it rejoins."""
        with self._lock:
            if self.is_running(node_id):
                raise KafkaToolError(f"node {node_id} is still running; stop or kill it first")
            self._spawn(node_id)
            self._write_state()
        self.wait_ready(timeout=timeout)

    def stop(self, graceful: bool = True, timeout: float = 30.0) -> None:
        """Stop every node (SIGTERM in parallel, SIGKILL after ``timeout``); idempotent.

        Leaves no process behind. Data dirs are removed unless ``keep_data``; the
        broker logs stay in the run dir for post-mortems.
        """
        with self._lock:
            sig = signal.SIGTERM if graceful else signal.SIGKILL
            running = [i for i in self._nodes if self.is_running(i)]
            for i in running:
                pid = self._nodes[i].pid
                if pid is not None:
                    _signal_group(pid, sig)
            deadline = time.monotonic() + timeout
            for i in running:
                pid = self._nodes[i].pid
                assert pid is not None
                if not self._reap(i, max(0.1, deadline - time.monotonic())):
                    _signal_group(pid, signal.SIGKILL)
                    self._reap(i, 30.0)
            for node in self._nodes.values():
                if node.log_file:
                    node.log_file.close()
                    node.log_file = None
            _LIVE.discard(self)
            with contextlib.suppress(OSError):
                (self.run_dir / STATE_NAME).unlink()
            if not self.keep_data:
                for node in self._nodes.values():
                    shutil.rmtree(node.spec.data_dir, ignore_errors=True)

    def _terminate(self, node_id: int, graceful: bool, timeout: float) -> int | None:
        with self._lock:
            node = self._node(node_id)
            if not self.is_running(node_id):
                return node.proc.poll() if node.proc else None
            assert node.pid is not None
            _signal_group(node.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            if not self._reap(node_id, timeout):
                _signal_group(node.pid, signal.SIGKILL)
                self._reap(node_id, 30.0)
            self._write_state()
            return node.proc.poll() if node.proc else None

    def _reap(self, node_id: int, timeout: float) -> bool:
        node = self._nodes[node_id]
        if node.proc is not None:
            try:
                node.proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return node.pid is None or _wait_pid_gone(node.pid, timeout)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state file (for the CLI) -------------------------------------------------------

    def _write_state(self) -> None:
        state = {
            "name": self.name,
            "kafka_version": kafka_version(),
            "cluster_id": self.cluster_id,
            "bootstrap_servers": self.bootstrap_servers,
            "detached": self.detached,
            "start_seconds": self.start_seconds,
            "nodes": [
                {
                    "node_id": i,
                    "pid": n.pid,
                    "broker_port": n.spec.broker_port,
                    "controller_port": n.spec.controller_port,
                    "config": str(n.spec.config_path),
                    "log": str(n.spec.log_path),
                }
                for i, n in sorted(self._nodes.items())
            ],
        }
        tmp = self.run_dir / f".{STATE_NAME}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.run_dir / STATE_NAME)

    # -- internals ---------------------------------------------------------------------

    def _node(self, node_id: int) -> _Node:
        self._require_started()
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KafkaToolError(f"no node {node_id}; nodes are numbered {self.node_ids}") from None

    def _require_started(self) -> None:
        if not self._nodes:
            raise KafkaToolError("cluster not started; call start() first")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class _QuietLogger(logging.Logger):
    """Swallow librdkafka's log lines (connection refused etc.) while polling."""

    def __init__(self) -> None:
        super().__init__("fluvial.kafka_cluster.rdkafka", level=logging.CRITICAL + 1)


def describe_cluster_ids(bootstrap: str, timeout: float = 5.0) -> list[int]:
    """Broker ids in the cluster metadata, as seen through ``bootstrap``."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _QuietLogger()}
    admin = AdminClient(conf)
    fut = admin.describe_cluster(request_timeout=timeout)
    desc = fut.result(timeout=timeout + 1)
    return sorted(n.id for n in desc.nodes)


# --------------------------------------------------------------------------------------
# State files, used by the CLI across processes
# --------------------------------------------------------------------------------------


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((run_dir / STATE_NAME).read_text())
        return data
    except (OSError, ValueError):
        return None


def state_live_pids(state: Mapping[str, Any]) -> dict[int, int]:
    """node_id -> pid for recorded nodes whose JVM is still ours and alive."""
    out = {}
    for n in state.get("nodes", []):
        pid = n.get("pid")
        if pid and pid_alive(pid) and _is_our_broker(pid, Path(n["config"])):
            out[int(n["node_id"])] = int(pid)
    return out


def stop_from_state(run_dir: Path, timeout: float = 30.0) -> list[int]:
    """Stop the JVMs a state file records (SIGTERM, then SIGKILL); return their pids."""
    state = read_state(run_dir)
    if state is None:
        return []
    live = state_live_pids(state)
    for pid in live.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in live.values():
        if not _wait_pid_gone(pid, max(0.1, deadline - time.monotonic())):
            _signal_group(pid, signal.SIGKILL)
            _wait_pid_gone(pid, 30.0)
    with contextlib.suppress(OSError):
        (run_dir / STATE_NAME).unlink()
    return list(live.values())


def reap_stale(run_dir: Path) -> list[int]:
    """Kill JVMs left by an earlier run in the same run dir (e.g. a crashed session)."""
    state = read_state(run_dir)
    if state is None:
        return []
    live = state_live_pids(state)
    for pid in live.values():
        _signal_group(pid, signal.SIGKILL)
        _wait_pid_gone(pid, 30.0)
    return list(live.values())


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _run_dir_for(name: str) -> Path:
    return (kafka_home() / f"run-{name}").resolve()


def cmd_fetch(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    jars = fetch_jars(Path(args.jars_dir) if args.jars_dir else None)
    print(f"Kafka {kafka_version()} jars ready in {jars} ({time.monotonic() - t0:.1f}s)")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    run_dir = _run_dir_for(args.name)
    state = read_state(run_dir)
    if state and state_live_pids(state):
        print(
            f"cluster {args.name!r} is already up at {state['bootstrap_servers']}; "
            f"run `python tools/kafka_cluster.py down --name {args.name}` first",
            file=sys.stderr,
        )
        return 1
    cluster = KafkaCluster(
        nodes=args.nodes,
        name=args.name,
        run_dir=run_dir,
        jars_dir=Path(args.jars_dir) if args.jars_dir else None,
        startup_timeout=args.timeout,
        detached=True,
        keep_data=True,
    )
    cluster.start()
    print(f"Kafka {kafka_version()}: {args.nodes} node(s) up in {cluster.start_seconds:.1f}s")
    for i, pid in cluster.pids.items():
        print(f"  node {i}: pid {pid}, log {cluster.log_path(i)}")
    print(f"state: {run_dir / STATE_NAME}")
    # the first is what `fluvial run` reads, the second points the test suite at this broker
    print(f"export FLUVIAL_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}")
    print(f"export FLUVIAL_BOOTSTRAP={cluster.bootstrap_servers}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    run_dir = _run_dir_for(args.name)
    if read_state(run_dir) is None:
        print(f"cluster {args.name!r} is not up (no {run_dir / STATE_NAME})")
        return 0
    t0 = time.monotonic()
    pids = stop_from_state(run_dir)
    print(f"stopped {len(pids)} node(s) {pids} in {time.monotonic() - t0:.1f}s")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    run_dir = _run_dir_for(args.name)
    state = read_state(run_dir)
    if state is None:
        print(f"cluster {args.name!r}: down")
        return 1
    live = state_live_pids(state)
    print(
        f"cluster {args.name!r}: Kafka {state.get('kafka_version')}, id {state.get('cluster_id')}"
    )
    print(f"bootstrap: {state['bootstrap_servers']}")
    for n in state["nodes"]:
        alive = "running" if n["node_id"] in live else "DOWN"
        print(f"  node {n['node_id']}: pid {n['pid']} {alive}, log {n['log']}")
    if live:
        try:
            ids = describe_cluster_ids(state["bootstrap_servers"], 5.0)
            print(f"brokers registered: {ids}")
        except Exception as exc:
            print(f"cluster does not answer: {exc}")
            return 1
    return 0 if len(live) == len(state["nodes"]) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kafka_cluster.py",
        description="Local Apache Kafka (KRaft) broker/cluster for fluvial dev and CI.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download the broker jars with Maven (once)")
    f.add_argument("--jars-dir", help="default <repo>/.kafka/jars-<version>")
    f.set_defaults(func=cmd_fetch)
    u = sub.add_parser("up", help="start a detached cluster and record it in a state file")
    u.add_argument("--nodes", type=int, default=1, help="1 (default) or 3")
    u.add_argument("--name", default="dev", help="run dir is <repo>/.kafka/run-<name>")
    u.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    u.add_argument("--jars-dir")
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="stop the cluster started by `up`")
    d.add_argument("--name", default="dev")
    d.set_defaults(func=cmd_down)
    s = sub.add_parser("status", help="show the cluster started by `up`")
    s.add_argument("--name", default="dev")
    s.set_defaults(func=cmd_status)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except KafkaToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
