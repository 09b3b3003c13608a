"""Unit tests of tools/schema_registry.py's cache logic (no JVM, no Maven, no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tools import schema_registry as sr
from tools.kafka_cluster import KafkaToolError


@pytest.fixture
def pom(tmp_path: Path) -> Path:
    """A copy of the registry build (POM and resources) that a test may edit."""
    shutil.copytree(sr.POM_PATH.parent, tmp_path / "registry",
                    ignore=shutil.ignore_patterns("target"))
    return tmp_path / "registry" / "pom.xml"


def _fake_build(app_dir: Path, pom: Path) -> None:
    app_dir.mkdir(parents=True)
    (app_dir / "quarkus-run.jar").write_bytes(b"")
    (app_dir / sr.MARKER_NAME).write_text(json.dumps(
        {"build_sha256": sr._build_digest(pom)}))


def test_the_version_comes_from_the_pom() -> None:
    assert sr.registry_version() == "2.4.2.Final"
    assert sr.default_app_dir(Path("/cache")) == Path("/cache/registry-2.4.2.Final")


def test_a_build_counts_only_for_the_pom_and_resources_it_was_made_from(
        pom: Path, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    assert not sr.app_is_built(app_dir, pom)
    _fake_build(app_dir, pom)
    assert sr.app_is_built(app_dir, pom)
    assert sr.fetch_app(app_dir, pom, quiet=True) == app_dir  # no Maven run: nothing to do

    props = pom.parent / "src" / "main" / "resources" / "application.properties"
    props.write_text(props.read_text() + "quarkus.http.limits.max-body-size=1M\n")
    assert not sr.app_is_built(app_dir, pom)


def test_a_build_without_its_jar_is_not_a_build(pom: Path, tmp_path: Path) -> None:
    _fake_build(tmp_path / "app", pom)
    (tmp_path / "app" / "quarkus-run.jar").unlink()
    assert not sr.app_is_built(tmp_path / "app", pom)


def test_a_pom_without_the_version_says_so(pom: Path) -> None:
    pom.write_text(pom.read_text().replace("apicurio.version>", "other.version>"))
    with pytest.raises(KafkaToolError, match=r"has no <apicurio\.version> property"):
        sr.registry_version(pom)
