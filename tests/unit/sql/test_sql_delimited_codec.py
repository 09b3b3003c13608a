"""DELIMITED's plain split/join path writes and reads exactly what the csv module does, on
random fields full of delimiters, quotes, newlines and empties."""

from __future__ import annotations

import csv
import io
import random

import pytest

from fluvial.sql import types as t
from fluvial.sql.catalog import Column
from fluvial.sql.formats import SerdeError, _DelimitedCodec

ALPHABET = ["a", "b", ",", '"', " ", "\t", "\n", "\r", ""]


def csv_line(values: list[str | None], delimiter: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="", delimiter=delimiter).writerow(
        ["" if v is None else v for v in values])
    return buffer.getvalue().encode()


def csv_fields(data: bytes, delimiter: str, count: int) -> list[str | None] | None:
    try:
        fields = next(csv.reader([data.decode()], delimiter=delimiter), [])
    except csv.Error:
        return None
    return None if len(fields) != count else [None if f == "" else f for f in fields]


def text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


@pytest.mark.parametrize("delimiter", [",", " ", "\t"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_delimited_matches_the_csv_module(delimiter: str, count: int) -> None:
    codec = _DelimitedCodec([Column(f"C{i}", t.STRING) for i in range(count)], delimiter)
    rng = random.Random(f"{delimiter}{count}")
    for _ in range(2000):
        values = [text(rng, 4) or rng.choice([None, ""]) for _ in range(count)]
        assert codec.encode(values) == csv_line(values, delimiter), values
        raw = text(rng, 6).encode()
        try:
            got = codec.decode(raw)
        except (SerdeError, csv.Error):  # csv's own error, as before the plain path
            got = None
        assert got == csv_fields(raw, delimiter, count), raw
