"""The SQL engine's internal topics and stores: their encoding reads back what it wrote
(Decimals exact, keys as tuples, a string that looks like a tag stays a string), and a
GROUP BY's repartition carries only the columns its aggregates read; and the shortcut a
JSON sink takes for a projected row writes what its codec writes."""

from __future__ import annotations

from decimal import Decimal

import orjson

import fluvial
from fluvial.sql import Engine
from fluvial.sql import types as t
from fluvial.sql.catalog import Column
from fluvial.sql.formats import InternalSerde, InternalStateSerde, ValueSerde


def test_rows_keys_and_states_read_back_as_written() -> None:
    serde = InternalSerde()
    row = {"A": Decimal("1.50"), "B": [Decimal("2"), "$d"], "C": 'x"$d"'}
    assert serde.deserialize(serde.serialize(row)) == row
    assert serde.deserialize(serde.serialize(("w", 3))) == ("w", 3)
    state = InternalStateSerde()
    assert state.deserialize(state.serialize([Decimal("3.0"), 4])) == [Decimal("3.0"), 4]
    assert serde.deserialize(serde.serialize({"plain": 1.5})) == {"plain": 1.5}


def test_a_group_by_repartitions_only_the_columns_its_aggregates_read() -> None:
    engine = Engine()
    engine.execute("CREATE STREAM S (K STRING KEY, A BIGINT, B STRING, C STRING) "
                   "WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON', PARTITIONS=1);"
                   "CREATE TABLE T WITH (KAFKA_TOPIC='out') AS "
                   "SELECT B, SUM(A) AS TOTAL FROM S GROUP BY B;")
    with fluvial.TestDriver(engine.topology()) as driver:
        source = driver.input_topic("in", "bytes", "bytes")
        source.pipe(b'{"A": 2, "B": "x", "C": "unread"}', key=b"k", timestamp=1)
        source.pipe(b'{"A": 3, "B": "x", "C": "unread"}', key=b"k", timestamp=2)
        topics = driver._topics
        [repartition] = [t for t in topics if t.endswith("-repartition")]
        assert [orjson.loads(m.value()) for m in topics[repartition]] == [
            {"A": 2, "B": "x"}, {"A": 3, "B": "x"}]
        out = driver.output_topic("out", "bytes", "bytes")
        assert [orjson.loads(r.value) for r in out.read_records()] == [
            {"TOTAL": 2}, {"TOTAL": 5}]


def test_a_json_row_of_its_columns_is_written_as_the_codec_writes_it() -> None:
    columns = [Column("A", t.DOUBLE), Column("B", t.STRING), Column("C", t.BYTES)]
    serde = ValueSerde("JSON", columns)
    assert serde.serialize({"A": 1.5, "B": "x", "C": None}) == b'{"A":1.5,"B":"x","C":null}'
    assert serde.serialize({"A": float("nan"), "B": "x", "C": b"\x01"}) == \
        b'{"A":"NaN","B":"x","C":"AQ=="}'
    assert serde.serialize({"B": "x", "A": 2.0}) == b'{"A":2.0,"B":"x","C":null}'
    exact = ValueSerde("JSON", [Column("D", t.decimal(4, 2))])
    assert exact.serialize({"D": Decimal("1.50")}) == b'{"D":1.50}'
