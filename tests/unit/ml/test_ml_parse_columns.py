"""parse_columns: a batch of lines → the same features as parse_line, or an error for the
batch to be parsed line by line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from examples.airline.flights import (
    CATEGORICAL,
    COLUMNS,
    FEATURES,
    HEADER,
    LABEL,
    MalformedFlight,
    columns,
    parse_columns,
    parse_line,
)

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")
BATCH = 40  # over the size that parse_columns leaves to parse_line


def _with(line: str, **fields: str) -> str:
    parts = line.split(",")
    for name, value in fields.items():
        parts[COLUMNS.index(name)] = value
    return ",".join(parts)


def assert_same_as_parse_line(lines: list[Any]) -> None:
    """Categorical columns equal; numbers equal as the model reads them (None = NaN)."""
    got = parse_columns(lines)
    want = columns([parse_line(line) for line in lines], FEATURES)
    assert list(got) == list(FEATURES)
    for name in FEATURES:
        if name in CATEGORICAL:
            assert list(got[name]) == want[name], name
        else:
            assert np.array_equal(np.asarray(got[name], dtype=np.float64),
                                  np.asarray(want[name], dtype=np.float64), equal_nan=True), name


def test_the_whole_file_as_parse_line_reads_it(lines: list[str]) -> None:
    assert_same_as_parse_line(lines)
    assert_same_as_parse_line([line.encode("latin-1") for line in lines])


def test_numbers_are_float_arrays_with_nan_for_na(lines: list[str]) -> None:
    cols = parse_columns(lines[:BATCH])
    assert cols["Year"].dtype == np.float64
    assert cols["FlightNum"][0] == "1451" and cols["Origin"][0] == "SAN"
    assert cols["Year"][0] == 1987.0 and cols["CRSDepTime"][0] == 730.0


@pytest.mark.parametrize("size", [1, 2, 31, 32, 33, 200])
def test_every_batch_size(lines: list[str], size: int) -> None:
    assert_same_as_parse_line(lines[1000:1000 + size])
    assert parse_columns([]) == {name: [] for name in FEATURES}


def test_na_empty_and_odd_values(lines: list[str]) -> None:
    odd = [_with(REFERENCE, Year="NA", CRSElapsedTime="", UniqueCarrier="NA", Dest=""),
           _with(REFERENCE, Month="007", CRSDepTime="0", FlightNum="00012345678"),
           _with(REFERENCE, Origin="Zürich", TailNum="N\xe9123", Dest="N A"),
           _with(REFERENCE, Year="12345678", Origin="NAX", Dest="N"),
           _with(REFERENCE, IsDepDelayed="NA", IsArrDelayed="junk"),
           _with(REFERENCE, IsDepDelayed="NO", DepTime="x"),
           ",".join(["1"] * 8 + ["A", "B"] + [""] * 19 + ["NO", "NO"])]
    batch = odd * 6
    assert_same_as_parse_line(batch)
    assert_same_as_parse_line([line.encode("latin-1") for line in batch])
    cols = parse_columns(batch)
    assert np.isnan(cols["Year"][0]) and cols["UniqueCarrier"][0] is None
    assert cols["Dest"][0] is None and cols["Dest"][2] == "N A"


def test_text_beyond_latin_1_is_read_as_utf_8() -> None:
    batch = [_with(REFERENCE, Origin="東京", TailNum="€")] * BATCH
    assert parse_columns(batch)["Origin"] == ["東京"] * BATCH
    assert_same_as_parse_line(batch)


@pytest.mark.parametrize("bad", [
    "",                                           # empty
    "   ",
    "1987,10,14",                                 # too few columns
    REFERENCE + ",extra",                         # too many
    _with(REFERENCE, Year="19x7"),                # not an integer
    _with(REFERENCE, CRSElapsedTime="7.5"),
    _with(REFERENCE, DayOfWeek=" "),
    _with(REFERENCE, CRSArrTime="N/A"),
    _with(REFERENCE, Month="NAN"),
    _with(REFERENCE, IsDepDelayed="MAYBE"),       # not a label
    _with(REFERENCE, IsDepDelayed=""),
    _with(REFERENCE, IsDepDelayed="YE"),
    _with(REFERENCE, IsDepDelayed="NOPE"),
    HEADER,
])
def test_a_line_parse_line_refuses_fails_the_batch(bad: str) -> None:
    with pytest.raises(MalformedFlight):
        parse_line(bad)
    for at in (0, BATCH // 2, BATCH - 1):
        batch = [REFERENCE] * BATCH
        batch[at] = bad
        with pytest.raises(Exception):  # noqa: B017 - any error sends the batch line by line
            parse_columns(batch)
        with pytest.raises(Exception):  # noqa: B017
            parse_columns([line.encode("latin-1") for line in batch])


@pytest.mark.parametrize("unusual", [
    _with(REFERENCE, Year="+1987"),               # int() reads these; the batch leaves them
    _with(REFERENCE, Year="-1"),
    _with(REFERENCE, Year=" 1987"),
    _with(REFERENCE, Year="1_987"),
    _with(REFERENCE, FlightNum="1", Year="123456789"),
    REFERENCE + "\r\n",
    REFERENCE + "\r",
])
def test_lines_that_only_parse_line_takes_fail_the_batch(unusual: str) -> None:
    parse_line(unusual)
    with pytest.raises(MalformedFlight):
        parse_columns([REFERENCE] * (BATCH - 1) + [unusual])


def test_mixed_or_missing_values_fail_the_batch() -> None:
    with pytest.raises(TypeError):
        parse_columns([REFERENCE] * BATCH + [REFERENCE.encode()])
    with pytest.raises(TypeError):
        parse_columns([REFERENCE] * BATCH + [None])  # type: ignore[list-item]
    with pytest.raises(MalformedFlight):  # a newline inside a line
        parse_columns([REFERENCE] * BATCH + [REFERENCE[:20] + "\n" + REFERENCE[20:]])
    short, long = ",".join(REFERENCE.split(",")[:26]), REFERENCE + ",1,2,3,4,5"
    with pytest.raises(MalformedFlight, match="columns"):  # as many commas, not per line
        parse_columns([REFERENCE] * BATCH + [short, long])


def test_label_is_checked_not_returned() -> None:
    assert LABEL not in parse_columns([REFERENCE] * BATCH)
