"""Settings: every malformed value fails at start-up, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial.errors import ConfigError
from fluvial.processing.errors import OnError
from fluvial.runtime.config import GroupProtocol, Guarantee, StreamsConfig
from fluvial.runtime.stream_thread import group_consumer_config


def test_defaults_and_coercion() -> None:
    config = StreamsConfig.create(application_id="app", commit_interval_ms="250",
                                  record_cache="false", on_error="skip",
                                  processing_guarantee="AT_LEAST_ONCE")
    assert config.commit_interval_ms == 250
    assert config.record_cache is False
    assert config.on_error is OnError.SKIP
    assert config.processing_guarantee is Guarantee.AT_LEAST_ONCE
    assert config.bootstrap_servers is None


def test_environment_fills_in_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUVIAL_APPLICATION_ID", "from-env")
    monkeypatch.setenv("FLUVIAL_COMMIT_INTERVAL_MS", "5000")
    config = StreamsConfig.create(commit_interval_ms=10)
    assert config.application_id == "from-env"
    assert config.commit_interval_ms == 10


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "application_id is required"),
    ({"application_id": "has space"}, "may only use letters"),
    ({"application_id": "a", "commit_interval_ms": 0}, "commit_interval_ms must be positive"),
    ({"application_id": "a", "commit_interval_ms": "soon"}, "must be an integer"),
    ({"application_id": "a", "record_cache": "maybe"}, "record_cache must be true or false"),
    ({"application_id": "a", "processing_guarantee": "twice"}, "is not one of"),
    ({"application_id": "a", "on_error": "ignore"}, "on_error='ignore' is not one of"),
    ({"application_id": "a", "replication_factor": 0}, "replication_factor must be"),
    ({"application_id": "a", "bootstrap_servers": " "}, "bootstrap_servers is empty"),
    ({"application_id": "a", "group_protocol": "eager"}, "group_protocol 'eager' is not one of"),
    ({"application_id": "a", "partition_assignment_strategy": "cooperative-sticky"},
     "applies to group_protocol=classic only"),
    ({"application_id": "a", "comit_interval_ms": 5}, "unknown setting(s): comit_interval_ms"),
])
def test_malformed_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        StreamsConfig.create(**settings)
    assert message in str(info.value)


def test_group_protocol_picks_the_assignor() -> None:
    """KIP-848 with the broker's range assignor by default; classic keeps its eager range."""
    default = StreamsConfig.create(application_id="a")
    assert default.group_protocol is GroupProtocol.CONSUMER
    assert group_consumer_config(default) == {"group.protocol": "consumer",
                                              "group.remote.assignor": "range",
                                              "max.poll.interval.ms": 60_000}
    longer = StreamsConfig.create(application_id="a",
                                  consumer_config={"max.poll.interval.ms": 300_000})
    assert group_consumer_config(longer)["max.poll.interval.ms"] == 300_000
    classic = StreamsConfig.create(application_id="a", group_protocol="CLASSIC",
                                   consumer_config={"session.timeout.ms": 6000})
    assert group_consumer_config(classic) == {"group.protocol": "classic",
                                              "partition.assignment.strategy": "range",
                                              "session.timeout.ms": 6000}
    sticky = StreamsConfig.create(application_id="a", group_protocol="classic",
                                  partition_assignment_strategy="cooperative-sticky")
    assert group_consumer_config(sticky)["partition.assignment.strategy"] == "cooperative-sticky"


def test_file_then_environment_then_arguments(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.toml"
    path.write_text('application_id = "from-file"\ncommit_interval_ms = 100\n'
                    'poll_timeout_ms = 50\n'
                    '[kafka_config]\n"security.protocol" = "SASL_SSL"\n"client.id" = "file"\n'
                    '[consumer_config]\nfetch.min.bytes = 1\n')  # dotted: nested tables
    monkeypatch.setenv("FLUVIAL_COMMIT_INTERVAL_MS", "200")
    monkeypatch.setenv("FLUVIAL_KAFKA_CONFIG", '{"client.id": "env", "sasl.mechanism": "PLAIN"}')
    config = StreamsConfig.create(path, poll_timeout_ms=70,
                                  kafka_config={"sasl.mechanism": "SCRAM-SHA-256"},
                                  admin_config={"client.id": "admin"})
    assert (config.application_id, config.commit_interval_ms, config.poll_timeout_ms) == \
        ("from-file", 200, 70)
    # the *_config layers merge key by key; each kind of client gets kafka_config under its own
    assert config.kafka_config == {"security.protocol": "SASL_SSL", "client.id": "env",
                                   "sasl.mechanism": "SCRAM-SHA-256"}
    assert config.client_config("consumer") == {**config.kafka_config, "fetch.min.bytes": 1}
    assert config.client_config("admin")["client.id"] == "admin"
    assert config.client_config("producer") == config.kafka_config


@pytest.mark.parametrize(("file", "env", "flags", "message"), [
    ('application_id = "a"\ncommit_interval_ms = "soon"\n', {}, False,
     "commit_interval_ms must be an integer, got 'soon' (from {path} key commit_interval_ms)"),
    ('application_id = "a"\n', {"FLUVIAL_REPLICATION_FACTOR": "0"}, False,
     "replication_factor must be -1 or >= 1, got 0 (from FLUVIAL_REPLICATION_FACTOR)"),
    ('application_id = "a"\n', {"FLUVIAL_NUM_STANDBY_REPLICAS": "-1"}, False,
     "num_standby_replicas must be >= 0, got -1 (from FLUVIAL_NUM_STANDBY_REPLICAS)"),
    ('application_id = "a"\n', {}, True,
     "group_protocol 'eager' is not one of: consumer, classic (from --group-protocol)"),
    ('application_id = "a"\ncomit_interval_ms = 5\n', {}, False,
     "unknown setting(s): comit_interval_ms (from {path} key comit_interval_ms); known"),
    ('application_id = "a"\nkafka_config = "security.protocol=SSL"\n', {}, False,
     "kafka_config must be a table of librdkafka properties (a JSON object in the "
     "environment), got 'security.protocol=SSL' (from {path} key kafka_config)"),
    ('application_id = "a"\n[producer_config]\n"acks" = ["all"]\n', {}, False,
     "producer_config: property 'acks' must be a string, number or boolean, got ['all'] "
     "(from {path} key producer_config)"),
    ('application_id = "a"\ncommit_interval_ms = \n', {}, False,
     "config file {path}: not valid TOML: Invalid value (at line 2, column 22)"),
])
def test_errors_name_the_setting_and_where_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str, env: dict[str, str],
        flags: bool, message: str) -> None:
    path = tmp_path / "app.toml"
    path.write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    extra = {"group_protocol": "eager"} if flags else {}
    with pytest.raises(ConfigError) as info:
        StreamsConfig.create(path, flags=flags, **extra)
    assert message.format(path=path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.toml: No such file"):
        StreamsConfig.create(tmp_path / "nope.toml")
