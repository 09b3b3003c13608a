"""A global table record its serdes cannot read goes through the app's error policy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fluvial import Materialized, ProcessingError, StreamsBuilder
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App


def _setup() -> tuple[EmbeddedBroker, StreamsBuilder]:
    broker = EmbeddedBroker()
    for topic in ("rates", "in", "out"):
        broker.create_topic(topic, 1)
    broker.append("rates", b"eur", b"1.1", 1)
    broker.append("rates", b"usd", b"{not json", 1)  # offset 1
    broker.append("rates", b"gbp", b"0.9", 1)
    b = StreamsBuilder()
    b.global_table("rates", key_serde="string", value_serde="json",
                   materialized=Materialized("rates-store", persistent=False))
    b.stream("in").to("out")
    return broker, b


def test_stop_names_the_record_and_the_app_does_not_start(tmp_path: Path) -> None:
    broker, b = _setup()
    with pytest.raises(ProcessingError) as info:
        App(b.build(), "g", broker=broker, state_dir=tmp_path).start()
    text = str(info.value)
    for part in ("global table 'rates-store'", "topic 'rates'", "partition 0", "offset 1",
                 "invalid JSON"):
        assert part in text, part


@pytest.mark.parametrize("on_error", ["skip", "dead_letter"])
def test_skip_or_dead_letter_loads_the_rest(tmp_path: Path, on_error: str) -> None:
    broker, b = _setup()
    with App(b.build(), "g", broker=broker, state_dir=tmp_path, on_error=on_error) as app:
        assert app.store("rates-store").to_dict() == {"eur": 1.1, "gbp": 0.9}
        broker.append("rates", b"chf", b"[oops", 1)  # while running, too
        broker.append("rates", b"chf", b"1.0", 1)
        deadline = time.monotonic() + 30
        while app.store("rates-store").get("chf") != 1.0:
            assert time.monotonic() < deadline, "the global table stopped following its topic"
            time.sleep(0.01)
        assert app.global_stores is not None and app.global_stores.skipped == 2
    assert app.error is None
    if on_error == "dead_letter":
        dead = broker.records("g-dead-letter")
        assert [m.value() for m in dead] == [b"{not json", b"[oops"]
        headers = dict(dead[0].headers() or [])
        assert headers["fluvial.topic"] == b"rates" and headers["fluvial.offset"] == b"1"
