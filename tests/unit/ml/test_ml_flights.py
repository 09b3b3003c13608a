"""Parsing the airline data file: lines as in the file → flight records; malformed lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from examples.airline.flights import (
    COLUMNS,
    DATA_FILE,
    FEATURES,
    HEADER,
    LABEL,
    MalformedFlight,
    columns,
    file_sha256,
    flight_key,
    is_header,
    iter_lines,
    parse_line,
    parse_lines,
    read_lines,
)

REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")


def _with(line: str, column: str, value: str) -> str:
    fields = line.split(",")
    fields[COLUMNS.index(column)] = value
    return ",".join(fields)


def test_the_reference_row() -> None:
    flight = parse_line(REFERENCE + "\r\n")
    assert flight == {"Year": 1987, "Month": 10, "DayofMonth": 14, "DayOfWeek": 3,
                      "CRSDepTime": 730, "CRSArrTime": 849, "UniqueCarrier": "PS",
                      "FlightNum": "1451", "CRSElapsedTime": 79, "Origin": "SAN",
                      "Dest": "SFO", "IsDepDelayed": True}
    assert list(flight) == [*FEATURES, LABEL]
    assert flight_key(flight) == "1987-10-14 PS1451 SAN-SFO 0730"


def test_the_whole_file_parses(lines: list[str]) -> None:
    assert len(lines) == 43_978
    assert lines[0] == REFERENCE
    flights, errors = parse_lines(lines)
    assert errors == []
    assert sum(f[LABEL] for f in flights) == 23_091
    assert sum(f["CRSElapsedTime"] is None for f in flights) == 13


def test_na_is_missing_everywhere() -> None:
    line = REFERENCE
    for column in ("Year", "CRSDepTime", "CRSElapsedTime", "UniqueCarrier", "Dest"):
        line = _with(line, column, "NA")
    line = _with(line, LABEL, "NA")
    flight = parse_line(line)
    assert flight["Year"] is None and flight["CRSDepTime"] is None
    assert flight["CRSElapsedTime"] is None
    assert flight["UniqueCarrier"] is None and flight["Dest"] is None
    assert flight[LABEL] is None
    assert flight_key(flight) == "NA-10-14 NA1451 SAN-NA NA"


def test_bytes_are_latin_1() -> None:
    line = _with(REFERENCE, "TailNum", "N\xe9123").encode("latin-1")
    assert parse_line(line)["Origin"] == "SAN"


@pytest.mark.parametrize(("line", "column", "reason"), [
    ("", "", "empty line"),
    ("   \r\n", "", "empty line"),
    ("1987,10,14", "", "expected 31 comma-separated columns, got 3"),
    (REFERENCE + ",extra", "", "got 32"),
    (_with(REFERENCE, "Year", "19x7"), "Year", "column Year: '19x7' is not an integer"),
    (_with(REFERENCE, "CRSElapsedTime", "7.5"), "CRSElapsedTime", "not an integer or NA"),
    (_with(REFERENCE, "DayOfWeek", " "), "DayOfWeek", "column DayOfWeek"),
    (_with(REFERENCE, LABEL, "MAYBE"), LABEL, "is not YES, NO or NA"),
    (HEADER, "Year", "column Year: 'Year'"),
])
def test_malformed_lines_say_which_column_and_why(line: str, column: str, reason: str) -> None:
    with pytest.raises(MalformedFlight, match=reason.replace("(", r"\(")) as info:
        parse_line(line)
    assert info.value.column == column
    assert isinstance(info.value, ValueError)


def test_non_text_is_refused() -> None:
    with pytest.raises(MalformedFlight, match="must be text"):
        parse_line(None)  # type: ignore[arg-type]


def test_parse_lines_reports_the_malformed_ones_by_index() -> None:
    flights, errors = parse_lines([REFERENCE, "", REFERENCE, "x"])
    assert len(flights) == 2
    assert [i for i, _ in errors] == [1, 3]


def test_columns_and_header_helpers() -> None:
    assert is_header(HEADER + "\r\n") and is_header(HEADER.encode())
    assert not is_header(REFERENCE)
    cols = columns([parse_line(REFERENCE)] * 2, ["Origin", "Year"])
    assert cols == {"Origin": ["SAN", "SAN"], "Year": [1987, 1987]}


def test_reading_plain_and_gzipped_files(tmp_path: Path) -> None:
    text = HEADER + "\r\n" + REFERENCE + "\r\n"
    plain = tmp_path / "f.csv"
    plain.write_bytes(text.encode("latin-1"))
    zipped = tmp_path / "f.csv.gz"
    zipped.write_bytes(gzip.compress(text.encode("latin-1")))
    assert read_lines(plain) == read_lines(zipped) == [REFERENCE]
    assert read_lines(plain, header=True) == [HEADER, REFERENCE]
    assert list(iter_lines(zipped)) == [REFERENCE]
    assert len(file_sha256(DATA_FILE)) == 64
