"""fluvial: stateful, fault-tolerant streaming microservices on Apache Kafka, in Python."""

from fluvial import serdes
from fluvial.dsl import (
    BranchedStream,
    GlobalTable,
    Grouped,
    GroupedStream,
    GroupedTable,
    Materialized,
    Repartitioned,
    Stream,
    StreamsBuilder,
    Table,
)
from fluvial.errors import ConfigError, FluvialError, ProcessingError, TopologyError
from fluvial.processing.errors import OnError
from fluvial.processing.processor import Processor, PunctuationType, RecordProcessor
from fluvial.processing.timestamps import (
    RecordTimestamp,
    TimestampExtractor,
    ValueFieldTimestamp,
    WallClockTimestamp,
)
from fluvial.record import Change, Record
from fluvial.testing import TestDriver
from fluvial.topology.topology import Topology
from fluvial.windows import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
)

__version__ = "0.1.0"

__all__ = [
    "BranchedStream", "Change", "ConfigError", "FluvialError", "GlobalTable", "Grouped",
    "GroupedStream", "GroupedTable", "Materialized", "OnError", "ProcessingError", "Processor",
    "PunctuationType", "Record", "RecordProcessor", "Repartitioned", "Stream",
    "StreamsBuilder", "Table", "TestDriver", "Topology", "TopologyError", "serdes",
]
# event time and windows
__all__ += [
    "EmitStrategy", "RecordTimestamp", "SessionWindows", "SlidingWindows", "TimeWindows",
    "TimestampExtractor", "ValueFieldTimestamp", "WallClockTimestamp", "Window", "Windowed",
]
