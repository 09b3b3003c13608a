"""Every store test runs on both backends: the bytes order and the layers must not differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.state.support import Changelog

from fluvial.io.serdes import resolve
from fluvial.state.stack import open_store
from fluvial.topology.nodes import StoreSpec


@pytest.fixture(params=["memory", "rocksdb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Any:
    """make_store(kind, changelog=None, **spec fields) → the store's full stack."""

    def make(kind: str = "kv", changelog: Changelog | None = None, name: str = "s",
             key_serde: str = "string", value_serde: str = "json", directory: Path | None = None,
             **fields: Any) -> Any:
        spec = StoreSpec(name, resolve(key_serde), resolve(value_serde), kind=kind,
                         persistent=backend == "rocksdb", **fields)
        return open_store(spec, directory or tmp_path, changelog)

    return make
