"""librdkafka's lines: a retry storm folds into one line per minute, with a count."""

from __future__ import annotations

import logging

import pytest

from fluvial.io.kafka_logging import RepeatFilter


def test_repeats_differing_only_in_numbers_fold_into_one(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("test.repeat")
    logger.addFilter(RepeatFilter(window_s=60))
    now = [0.0]
    monkeypatch.setattr("fluvial.io.kafka_logging.time.monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.repeat"):
        for attempt in range(500):
            logger.error("%s [%s] %s", "FAIL", "rdkafka#producer-1",
                         f"Connect to 127.0.0.1:1 failed (after {attempt}ms)")
        logger.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", "another message")
        now[0] = 61.0
        logger.error("%s [%s] %s", "FAIL", "rdkafka#producer-1",
                     "Connect to 127.0.0.1:1 failed (after 9ms)")
    assert [r.getMessage() for r in caplog.records] == [
        "FAIL [rdkafka#producer-1] Connect to 127.0.0.1:1 failed (after 0ms)",
        "FAIL [rdkafka#producer-1] another message",
        "FAIL [rdkafka#producer-1] Connect to 127.0.0.1:1 failed (after 9ms) "
        "(499 like it in the last 60 s)",
    ]


def test_debug_lines_are_never_folded(caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka's ``debug`` trace is asked for: every line of it counts."""
    logger = logging.getLogger("test.repeat.debug")
    logger.addFilter(RepeatFilter(window_s=60))
    with caplog.at_level(logging.DEBUG, logger="test.repeat.debug"):
        for epoch in range(3):
            logger.debug("HEARTBEAT [rdkafka#consumer-1] member epoch %d", epoch)
    assert len(caplog.records) == 3
