"""Finding the topology a user points ``fluvial run`` at."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from fluvial.dsl.builder import StreamsBuilder
from fluvial.errors import ConfigError
from fluvial.topology.topology import Topology


def load_topology(target: str) -> Topology:
    """``module:object`` where object is a Topology, a StreamsBuilder, or a function of none
    returning one of them (called once)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{target!r} is not MODULE:OBJECT (e.g. examples.wordcount.app:build)")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise ConfigError(f"{exc.filename}:{exc.lineno}:{exc.offset or 0}: syntax error in "
                          f"module {module_name!r}: {exc.msg}") from None
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{_where(exc)}: importing module {module_name!r} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, (Topology, StreamsBuilder)):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"{_where(exc)}: {target}() failed: "
                              f"{type(exc).__name__}: {exc}") from None
    if isinstance(obj, StreamsBuilder):
        obj = obj.build()
    if not isinstance(obj, Topology):
        raise ConfigError(f"{target} is a {type(obj).__name__}, not a Topology, a "
                          f"StreamsBuilder, or a function returning one")
    return obj


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of the exception, where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "<unknown>"
    last = frames[-1]
    return f"{last.filename}:{last.lineno}"
