"""fluvial: stateful, fault-tolerant streaming microservices on Apache Kafka, in Python.

Everything an application needs is importable from here: build a topology with
``StreamsBuilder``, test it with ``TestDriver``, run it with ``App`` (on Kafka, or on the
``EmbeddedBroker`` with nothing installed); ``serdes`` and the settings (``StreamsConfig``,
``OnError``, ``Guarantee``) complete it. Modules below ``fluvial`` are internal.
"""

from importlib.metadata import PackageNotFoundError, version

from fluvial import serdes
from fluvial.dsl import (
    BranchedStream,
    GlobalTable,
    Grouped,
    GroupedStream,
    GroupedTable,
    Joined,
    Materialized,
    Repartitioned,
    Stream,
    StreamJoined,
    StreamsBuilder,
    Table,
)
from fluvial.dsl.suppressed import BufferConfig, Suppressed
from fluvial.errors import (
    ConfigError,
    DeliveryError,
    FluvialError,
    ProcessingError,
    StoreMovingError,
    TopologyError,
)
from fluvial.io.embedded import EmbeddedBroker
from fluvial.processing.errors import OnError
from fluvial.processing.processor import Processor, PunctuationType, RecordProcessor
from fluvial.processing.timestamps import (
    RecordTimestamp,
    TimestampExtractor,
    ValueFieldTimestamp,
    WallClockTimestamp,
)
from fluvial.record import Change, Record
from fluvial.runtime.app import App
from fluvial.runtime.config import GroupProtocol, Guarantee, StreamsConfig
from fluvial.server import AppServer
from fluvial.testing import TestDriver
from fluvial.topology.topology import Topology
from fluvial.windows import (
    EmitStrategy,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
)

try:
    __version__ = version("fluvial")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "App", "BranchedStream", "Change", "ConfigError", "DeliveryError", "EmbeddedBroker",
    "FluvialError", "GlobalTable", "GroupProtocol", "Grouped", "GroupedStream", "GroupedTable",
    "Guarantee", "Joined", "Materialized", "OnError", "ProcessingError", "Processor",
    "PunctuationType", "Record", "RecordProcessor", "Repartitioned", "Stream", "StreamJoined",
    "StreamsBuilder", "StreamsConfig", "Table", "TestDriver", "Topology", "TopologyError",
    "__version__", "serdes",
]
# event time and windows
__all__ += ["AppServer", "StoreMovingError"]
__all__ += [
    "EmitStrategy", "JoinWindows", "RecordTimestamp", "SessionWindows", "SlidingWindows",
    "TimeWindows", "TimestampExtractor", "ValueFieldTimestamp", "WallClockTimestamp", "Window",
    "Windowed",
]
# suppress
__all__ += ["BufferConfig", "Suppressed"]
