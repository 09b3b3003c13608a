"""What users write: StreamsBuilder, Stream, Table, grouped streams and tables, options."""

from fluvial.dsl.builder import StreamsBuilder
from fluvial.dsl.grouped import GroupedStream, GroupedTable
from fluvial.dsl.options import Grouped, Joined, Materialized, Repartitioned, StreamJoined
from fluvial.dsl.stream import BranchedStream, Stream
from fluvial.dsl.table import GlobalTable, Table

__all__ = [
    "BranchedStream", "GlobalTable", "Grouped", "GroupedStream", "GroupedTable", "Joined",
    "Materialized", "Repartitioned", "Stream", "StreamJoined", "StreamsBuilder", "Table",
]
