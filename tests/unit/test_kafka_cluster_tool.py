"""Unit tests of tools/kafka_cluster.py's pure parts (no JVM, no Maven, no network)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tools import kafka_cluster as kc


def _specs(n: int, tmp_path: Path) -> list[kc.NodeSpec]:
    return [
        kc.NodeSpec(
            node_id=i + 1,
            broker_port=10000 + 2 * i,
            controller_port=10001 + 2 * i,
            node_dir=tmp_path / f"node-{i + 1}",
        )
        for i in range(n)
    ]


def _props(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


# -- configuration ----------------------------------------------------------------------


def test_single_node_config_is_combined_and_tuned_for_tests(tmp_path: Path) -> None:
    (spec,) = _specs(1, tmp_path)
    cfg = kc.render_config(spec, [spec])
    assert cfg["process.roles"] == "broker,controller"
    assert cfg["node.id"] == "1"
    assert cfg["controller.quorum.voters"] == "1@127.0.0.1:10001"
    assert cfg["listeners"] == "PLAINTEXT://127.0.0.1:10000,CONTROLLER://127.0.0.1:10001"
    assert cfg["advertised.listeners"] == "PLAINTEXT://127.0.0.1:10000"
    assert cfg["log.dirs"] == str(tmp_path / "node-1" / "data")
    assert cfg["auto.create.topics.enable"] == "false"
    assert cfg["group.initial.rebalance.delay.ms"] == "0"
    assert cfg["offsets.topic.num.partitions"] == "1"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "min.insync.replicas",
        "default.replication.factor",
    ):
        assert cfg[key] == "1", key
    assert "broker.session.timeout.ms" not in cfg
    # KIP-848 groups: the broker owns the session timeout; short, within its own bounds
    session, heartbeat = (int(cfg[f"group.consumer.{k}"]) for k in
                          ("session.timeout.ms", "heartbeat.interval.ms"))
    assert int(cfg["group.consumer.min.session.timeout.ms"]) <= session <= 10_000
    assert int(cfg["group.consumer.min.heartbeat.interval.ms"]) <= heartbeat < session


def test_three_node_config_replicates_internal_topics(tmp_path: Path) -> None:
    specs = _specs(3, tmp_path)
    cfgs = [kc.render_config(s, specs) for s in specs]
    voters = "1@127.0.0.1:10001,2@127.0.0.1:10003,3@127.0.0.1:10005"
    assert {c["controller.quorum.voters"] for c in cfgs} == {voters}
    assert [c["node.id"] for c in cfgs] == ["1", "2", "3"]
    assert len({c["log.dirs"] for c in cfgs}) == 3
    for c in cfgs:
        assert c["default.replication.factor"] == "3"
        assert c["offsets.topic.replication.factor"] == "3"
        assert c["transaction.state.log.replication.factor"] == "3"
        assert c["min.insync.replicas"] == "2"
        assert c["transaction.state.log.min.isr"] == "2"
        assert c["share.coordinator.state.topic.min.isr"] == "2"
        assert int(c["broker.heartbeat.interval.ms"]) < int(c["broker.session.timeout.ms"]) < 9000


def test_overrides_win_and_properties_render(tmp_path: Path) -> None:
    (spec,) = _specs(1, tmp_path)
    cfg = kc.render_config(spec, [spec], {"num.partitions": "4", "x.y": "a\\b"})
    text = kc.format_properties(cfg)
    props = _props(text)
    assert props["num.partitions"] == "4"
    assert props["x.y"] == "a\\\\b"  # a backslash is escaped for java.util.Properties
    assert text.startswith("# generated")


def test_jvm_command_heap_and_classpath(tmp_path: Path) -> None:
    cmd = kc.jvm_command("/j/java", tmp_path, "kafka.Kafka", ["server.properties"], heap="384m")
    assert cmd[0] == "/j/java"
    assert "-Xmx384m" in cmd and "-Xms128m" in cmd
    assert cmd[cmd.index("-cp") + 1] == f"{tmp_path}/*"
    assert cmd[-2:] == ["kafka.Kafka", "server.properties"]
    assert kc.min_heap("64m") == "64m"
    assert kc.min_heap("1g") == "128m"
    with pytest.raises(kc.KafkaToolError):
        kc.min_heap("lots")


# -- ports and ids ------------------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = kc.find_free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_ports_skip_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert taken not in kc.find_free_ports(20)


def test_cluster_id_shape() -> None:
    ids = {kc.random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- java / mvn prerequisites ------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "11.0.2-ea" 2019', 11),
    ],
)
def test_parse_java_major(output: str, major: int) -> None:
    assert kc.parse_java_major(output) == major


def test_parse_java_major_rejects_garbage() -> None:
    with pytest.raises(kc.KafkaToolError, match="cannot parse"):
        kc.parse_java_major("command not found")


def _fake_bin(tmp_path: Path, name: str, script: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_missing_java_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "empty")}
    with pytest.raises(kc.KafkaToolError, match=r"`java` was not found.*Java 17"):
        kc.find_java(env)


def test_old_java_is_rejected(tmp_path: Path) -> None:
    bindir = _fake_bin(tmp_path, "java", "echo 'openjdk version \"11.0.20\" 2023' >&2\n")
    with pytest.raises(kc.KafkaToolError, match=r"Java 11.*needs Java 17"):
        kc.find_java({"PATH": str(bindir)})


def test_java_17_is_accepted_and_java_home_preferred(tmp_path: Path) -> None:
    bindir = _fake_bin(tmp_path, "java", "echo 'openjdk version \"17.0.1\" 2021' >&2\n")
    assert kc.find_java({"PATH": str(bindir)}) == str(bindir / "java")
    assert kc.find_java({"PATH": "", "JAVA_HOME": str(tmp_path)}) == str(bindir / "java")
    assert kc.find_java({"PATH": "", kc.ENV_JAVA: str(bindir / "java")}) == str(bindir / "java")


def test_missing_mvn_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(kc.KafkaToolError, match=r"`mvn` was not found.*Maven"):
        kc.find_mvn({"PATH": str(tmp_path)})


# -- jars cache ----------------------------------------------------------------------------


def test_version_comes_from_the_pom() -> None:
    version = kc.kafka_version()
    assert version.split(".")[0] == "4"
    assert kc.default_jars_dir(version, Path("/x")) == Path(f"/x/jars-{version}")


def _fake_fetched_dir(tmp_path: Path, pom: Path) -> Path:
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "kafka_2.13-4.1.2.jar").write_bytes(b"")
    marker = {"pom_sha256": kc._pom_digest(pom), "jars": ["kafka_2.13-4.1.2.jar"]}
    (jars / kc.MARKER_NAME).write_text(json.dumps(marker))
    return jars


def test_fetch_is_skipped_when_marker_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = _fake_fetched_dir(tmp_path, kc.POM_PATH)
    monkeypatch.setenv("PATH", str(tmp_path / "no-mvn-here"))  # Maven would fail
    assert kc.fetch_jars(jars) == jars


def test_fetch_reruns_when_pom_changed_or_jar_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text(kc.POM_PATH.read_text())
    jars = _fake_fetched_dir(tmp_path, pom)
    assert kc.jars_are_fetched(jars, pom)
    pom.write_text(pom.read_text() + "\n<!-- changed -->\n")
    assert not kc.jars_are_fetched(jars, pom)
    monkeypatch.setenv("PATH", str(tmp_path / "no-mvn-here"))
    with pytest.raises(kc.KafkaToolError, match="`mvn` was not found"):
        kc.fetch_jars(jars, pom=pom)


def test_fetch_reports_maven_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = _fake_bin(tmp_path, "mvn", "echo 'Could not resolve dependencies' >&2; exit 1\n")
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(kc.KafkaToolError, match=r"(?s)Maven failed.*Could not resolve"):
        kc.fetch_jars(tmp_path / "jars", quiet=True)
    assert not (tmp_path / "jars").exists()


# -- state file, pids, CLI --------------------------------------------------------------


def test_state_ignores_dead_or_foreign_pids(tmp_path: Path) -> None:
    state = {
        "bootstrap_servers": "127.0.0.1:1",
        "nodes": [
            {"node_id": 1, "pid": os.getpid(), "config": str(tmp_path / "server.properties")},
            {"node_id": 2, "pid": 2**22 + 7, "config": str(tmp_path / "x")},
        ],
    }
    (tmp_path / kc.STATE_NAME).write_text(json.dumps(state))
    assert kc.read_state(tmp_path) == state
    # pid 1 is alive but is this pytest, not a kafka.Kafka JVM: never signalled.
    assert kc.state_live_pids(state) == {}
    assert kc.reap_stale(tmp_path) == []


def test_pid_alive() -> None:
    assert kc.pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not kc.pid_alive(proc.pid)


def test_tail_file(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert kc.tail_file(log, 3).splitlines() == ["line 97", "line 98", "line 99"]
    assert "no log" in kc.tail_file(tmp_path / "missing.log")


def test_error_lines_find_the_root_cause(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text(
        "08:20:52.649 [main] INFO x - fine\n"
        "08:20:52.650 [main] ERROR a.B - Unable to start acceptor\n"
        "org.apache.kafka.common.KafkaException: bind failed\n"
        "Caused by: java.net.BindException: Address already in use\n"
        "08:20:53.000 [main] ERROR a.B - Unable to start acceptor\n"
        + "08:20:54.000 [hook] INFO y - shutting down\n"
        * 500
    )
    assert kc.error_lines(log) == [
        "[main] ERROR a.B - Unable to start acceptor",
        "Caused by: java.net.BindException: Address already in use",
    ]
    assert kc.error_lines(tmp_path / "missing.log") == []


def test_cli_parser() -> None:
    p = kc.build_parser()
    args = p.parse_args(["up", "--nodes", "3"])
    assert (args.command, args.nodes, args.name) == ("up", 3, "dev")
    assert p.parse_args(["down", "--name", "x"]).name == "x"
    assert p.parse_args(["status"]).func is kc.cmd_status
    assert p.parse_args(["fetch"]).func is kc.cmd_fetch


def test_cli_status_and_down_when_nothing_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(kc.ENV_HOME, str(tmp_path))
    assert kc.main(["status", "--name", "nothing"]) == 1
    assert kc.main(["down", "--name", "nothing"]) == 0
    assert "not up" in capsys.readouterr().out


def test_cli_turns_tool_errors_into_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(kc.ENV_HOME, str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv(kc.ENV_JAVA, raising=False)
    assert kc.main(["up", "--name", "nojava"]) == 2
    assert "`java` was not found" in capsys.readouterr().err


def test_cluster_api_before_start() -> None:
    cluster = kc.KafkaCluster(nodes=3)
    assert cluster.heap == "384m"
    with pytest.raises(kc.KafkaToolError, match="not started"):
        _ = cluster.bootstrap_servers
    with pytest.raises(ValueError):
        kc.KafkaCluster(nodes=0)


def test_a_sasl_ssl_listener_is_added_beside_plaintext(tmp_path: Path) -> None:
    spec = kc.NodeSpec(node_id=1, broker_port=10000, controller_port=10001,
                       node_dir=tmp_path, sasl_ssl_port=10002)
    listener = kc.SaslSslListener(tmp_path / "broker.p12", "pw", {"alice": "a-secret"})
    cfg = kc.render_config(spec, [spec], sasl_ssl=listener)
    assert cfg["listeners"] == ("PLAINTEXT://127.0.0.1:10000,CONTROLLER://127.0.0.1:10001,"
                                "SASL_SSL://127.0.0.1:10002")
    assert cfg["advertised.listeners"] == "PLAINTEXT://127.0.0.1:10000,SASL_SSL://127.0.0.1:10002"
    assert cfg["inter.broker.listener.name"] == "PLAINTEXT"
    assert cfg["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert cfg["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,PLAIN"
    assert cfg["listener.name.sasl_ssl.ssl.keystore.location"] == str(tmp_path / "broker.p12")
    assert 'user_alice="a-secret"' in cfg["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert listener.format_args() == ["--add-scram",
                                      "SCRAM-SHA-256=[name=alice,password=a-secret]"]
    with pytest.raises(ValueError, match="node 1 has no sasl_ssl_port"):
        kc.render_config(_specs(1, tmp_path)[0], _specs(1, tmp_path), sasl_ssl=listener)
