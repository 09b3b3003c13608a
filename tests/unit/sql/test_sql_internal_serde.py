"""The SQL engine's internal encoding (repartition topics, stores) reads back what it wrote:
Decimals exact, keys as tuples, and a string that looks like a tag stays a string."""

from __future__ import annotations

from decimal import Decimal

from fluvial.sql.formats import InternalSerde, InternalStateSerde


def test_rows_keys_and_states_read_back_as_written() -> None:
    serde = InternalSerde()
    row = {"A": Decimal("1.50"), "B": [Decimal("2"), "$d"], "C": 'x"$d"'}
    assert serde.deserialize(serde.serialize(row)) == row
    assert serde.deserialize(serde.serialize(("w", 3))) == ("w", 3)
    state = InternalStateSerde()
    assert state.deserialize(state.serialize([Decimal("3.0"), 4])) == [Decimal("3.0"), 4]
    assert serde.deserialize(serde.serialize({"plain": 1.5})) == {"plain": 1.5}
