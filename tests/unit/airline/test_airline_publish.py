"""examples/airline/publish.py, the Helm chart's model Job, on the embedded broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.airline import publish
from examples.airline.service import MODELS

from fluvial.io.embedded import EmbeddedBroker
from fluvial.ml import LightGBMModel, load_model


def test_the_job_publishes_the_model_file_keyed_by_its_name(
        tmp_path: Path, service_model: LightGBMModel, capsys: pytest.CaptureFixture[str]) -> None:
    path = service_model.save(tmp_path / "model.json")
    broker = EmbeddedBroker()
    assert publish.main(["--model", str(path)], target=broker) == 0
    (message,) = broker.records(MODELS, 0)
    assert message.key() == service_model.info.name.encode()
    assert load_model(message.value()).info == service_model.info
    assert f"to {MODELS}" in capsys.readouterr().out


def test_no_cluster_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                service_model: LightGBMModel,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FLUVIAL_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("FLUVIAL_CONFIG", raising=False)
    path = service_model.save(tmp_path / "model.json")
    assert publish.main(["--model", str(path)]) == 2
    assert capsys.readouterr().err == (
        "publish: error: no cluster to publish to: set FLUVIAL_BOOTSTRAP_SERVERS (or "
        "bootstrap_servers in the FLUVIAL_CONFIG file)\n")
