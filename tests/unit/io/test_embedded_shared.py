"""Reaching an embedded broker that another process owns, while that owner starts up."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from fluvial.io.embedded.shared import (
    ADDRESS_FILE,
    BrokerInUseError,
    RemoteBroker,
    _try_lock,
    connect,
)


def test_a_client_waits_for_an_owner_still_starting(tmp_path: Path) -> None:
    owner = _try_lock(tmp_path)  # a `fluvial run` that holds the lock, address not out yet
    assert owner is not None
    published = threading.Event()

    def publish() -> None:
        (tmp_path / ADDRESS_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9",
                                                         "pid": 1}))
        published.set()

    timer = threading.Timer(0.3, publish)
    timer.start()
    try:
        broker, owned = connect(tmp_path, wait_s=30)
        assert published.is_set()
        assert owned is None and isinstance(broker, RemoteBroker)
        assert broker.url == "http://127.0.0.1:9"
    finally:
        timer.cancel()
        owner.close()


def test_an_owner_that_never_publishes_is_a_clear_error(tmp_path: Path) -> None:
    owner = _try_lock(tmp_path)
    assert owner is not None
    try:
        with pytest.raises(BrokerInUseError, match="starting or stopping in another process"):
            connect(tmp_path, wait_s=0.3)
    finally:
        owner.close()
