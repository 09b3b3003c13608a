"""Settings: every malformed value fails at start-up, naming the setting."""

from __future__ import annotations

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
                                              "group.remote.assignor": "range"}
    classic = StreamsConfig.create(application_id="a", group_protocol="CLASSIC",
                                   consumer_config={"session.timeout.ms": 6000})
    assert group_consumer_config(classic) == {"group.protocol": "classic",
                                              "partition.assignment.strategy": "range",
                                              "session.timeout.ms": 6000}
    sticky = StreamsConfig.create(application_id="a", group_protocol="classic",
                                  partition_assignment_strategy="cooperative-sticky")
    assert group_consumer_config(sticky)["partition.assignment.strategy"] == "cooperative-sticky"
