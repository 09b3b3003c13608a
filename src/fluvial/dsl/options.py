"""Optional settings of DSL calls: names of stores and internal topics, serdes, partitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fluvial.io.serdes import Serde


@dataclass(frozen=True)
class Materialized:
    """The store behind a table: its name (also its changelog's), serdes, backend, logging."""

    name: str | None = None
    key_serde: Serde | str | None = None
    value_serde: Serde | str | None = None
    persistent: bool = True  # RocksDB; False = in memory (restored from the changelog)
    logging: bool = True     # backed by a changelog topic
    #: how long a window or session store keeps windows (timedelta or ms); default: the
    #: window size (or session gap) plus the grace period, as Kafka Streams
    retention: timedelta | int | None = None

    @classmethod
    def as_(cls, name: str) -> Materialized:
        return cls(name=name)


@dataclass(frozen=True)
class Grouped:
    """How a stream is grouped: the repartition topic's name and the serdes it is written with."""

    name: str | None = None
    key_serde: Serde | str | None = None
    value_serde: Serde | str | None = None


@dataclass(frozen=True)
class Repartitioned:
    name: str | None = None
    partitions: int | None = None
    key_serde: Serde | str | None = None
    value_serde: Serde | str | None = None


@dataclass(frozen=True)
class Joined:
    """A stream-table join's settings: ``name`` names the join processor (and a
    repartition topic it needs, ``<name>-repartition``); the serdes write that topic."""

    name: str | None = None
    key_serde: Serde | str | None = None
    value_serde: Serde | str | None = None


@dataclass(frozen=True)
class StreamJoined:
    """A stream-stream join's settings: ``name`` names its processors (and repartition
    topics, ``<name>-left-repartition``/``-right-repartition``), ``store_name`` its stores
    (``<store_name>-this-join-store``, ...); the serdes write the stores and topics:
    ``value_serde`` this stream's values, ``other_value_serde`` the other's."""

    name: str | None = None
    store_name: str | None = None
    key_serde: Serde | str | None = None
    value_serde: Serde | str | None = None
    other_value_serde: Serde | str | None = None
    logging: bool = True


def as_materialized(value: Materialized | str | None) -> Materialized:
    if value is None:
        return Materialized()
    return Materialized(name=value) if isinstance(value, str) else value


def as_grouped(value: Grouped | str | None) -> Grouped:
    if value is None:
        return Grouped()
    return Grouped(name=value) if isinstance(value, str) else value
