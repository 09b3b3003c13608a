"""A stateless query over value columns only runs on the engine's fused fast path (its source
node decodes, WHERE and SELECT run as one filter and one map_values), and gives what the
general path gives: a NULL value dropped by WHERE, projected as NULL without one."""

from __future__ import annotations

from typing import Any

import fluvial
from fluvial.sql import Engine

STREAM = ("CREATE STREAM S (K STRING KEY, A BIGINT, B STRING) "
          "WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON', PARTITIONS=1);")


def run(script: str, values: list[bytes | None]) -> tuple[bool, list[tuple[Any, Any]]]:
    """Whether the task reading ``in`` is fused, and what the query writes to ``out``."""
    engine = Engine()
    engine.execute(STREAM + script)
    with fluvial.TestDriver(engine.topology()) as driver:
        fused = bool(driver._tasks["in"].fused)
        source = driver.input_topic("in", "bytes", "bytes")
        for i, value in enumerate(values):
            source.pipe(value, key=f"k{i}".encode(), timestamp=100 + i)
        out = driver.output_topic("out", "bytes", "bytes")
        return fused, [(r.key, r.value) for r in out.read_records()]


VALUES = [b'{"A": 5, "B": "x"}', None, b'{"A": 1, "B": "y"}']


def test_a_filter_and_projection_of_value_columns_is_fused() -> None:
    fused, out = run("CREATE STREAM O WITH (KAFKA_TOPIC='out') AS "
                     "SELECT K, A * 2 AS D, B FROM S WHERE A > 2;", VALUES)
    assert fused
    assert out == [(b"k0", b'{"D":10,"B":"x"}')]


def test_without_where_a_null_value_is_projected_as_null() -> None:
    fused, out = run("CREATE STREAM O WITH (KAFKA_TOPIC='out') AS SELECT K, B FROM S;", VALUES)
    assert fused
    assert out == [(b"k0", b'{"B":"x"}'), (b"k1", None), (b"k2", b'{"B":"y"}')]


def test_a_query_reading_a_key_column_or_rowtime_takes_the_row_path() -> None:
    for select in ("SELECT K, K + B AS KB FROM S", "SELECT K, ROWTIME AS T FROM S"):
        fused, out = run(f"CREATE STREAM O WITH (KAFKA_TOPIC='out') AS {select};", VALUES[:1])
        assert not fused
        assert out == [(b"k0", b'{"KB":"k0x"}' if "KB" in select else b'{"T":100}')]


def test_a_topic_two_queries_read_is_decoded_once_per_query() -> None:
    fused, out = run("CREATE STREAM O WITH (KAFKA_TOPIC='out') AS SELECT K, A FROM S; "
                     "CREATE STREAM P WITH (KAFKA_TOPIC='out2') AS SELECT K, B FROM S;",
                     VALUES[:1])
    assert not fused
    assert out == [(b"k0", b'{"A":5}')]
