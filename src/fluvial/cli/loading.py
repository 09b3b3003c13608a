"""Finding the topology a user points ``fluvial run`` at."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from fluvial.dsl.builder import StreamsBuilder
from fluvial.errors import ConfigError
from fluvial.topology.topology import Topology


def load_topology(target: str) -> Topology:
    """``module:object`` where object is a Topology, a StreamsBuilder, or a function of none
    returning one of them."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{target!r} is not MODULE:OBJECT (e.g. examples.wordcount.app:build)")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, (Topology, StreamsBuilder)):
        obj = obj()
    if isinstance(obj, StreamsBuilder):
        obj = obj.build()
    if not isinstance(obj, Topology):
        raise ConfigError(f"{target} is a {type(obj).__name__}, not a Topology, a "
                          f"StreamsBuilder, or a function returning one")
    return obj
