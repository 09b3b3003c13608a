"""Flights of the airline data file: a CSV line (exactly as in the file) → a flight record.

A flight record is a plain ``dict``: the 11 model features under their column names, plus the
label ``IsDepDelayed`` (``True``/``False``, ``None`` when ``NA``). Numeric features are
``int`` (``None`` when ``NA``); the categorical ones (``UniqueCarrier``, ``FlightNum``,
``Origin``, ``Dest``) stay ``str`` (``None`` when ``NA``). The file is latin-1 (``TailNum``
has non-UTF-8 bytes), so ``bytes`` lines are decoded as latin-1.

A malformed line raises :class:`MalformedFlight` (a ``ValueError``) naming the column and why.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).parent / "data" / "allyears2k_headers.csv.gz"

COLUMNS: tuple[str, ...] = (
    "Year", "Month", "DayofMonth", "DayOfWeek", "DepTime", "CRSDepTime", "ArrTime",
    "CRSArrTime", "UniqueCarrier", "FlightNum", "TailNum", "ActualElapsedTime",
    "CRSElapsedTime", "AirTime", "ArrDelay", "DepDelay", "Origin", "Dest", "Distance",
    "TaxiIn", "TaxiOut", "Cancelled", "CancellationCode", "Diverted", "CarrierDelay",
    "WeatherDelay", "NASDelay", "SecurityDelay", "LateAircraftDelay", "IsArrDelayed",
    "IsDepDelayed",
)
HEADER = ",".join(COLUMNS)

#: The talk model's features, in model order.
FEATURES: tuple[str, ...] = (
    "Year", "Month", "DayofMonth", "DayOfWeek", "CRSDepTime", "CRSArrTime", "UniqueCarrier",
    "FlightNum", "CRSElapsedTime", "Origin", "Dest",
)
CATEGORICAL: tuple[str, ...] = ("UniqueCarrier", "FlightNum", "Origin", "Dest")
NUMERIC: tuple[str, ...] = tuple(f for f in FEATURES if f not in CATEGORICAL)
LABEL = "IsDepDelayed"
MISSING = "NA"

_INDEX = {name: i for i, name in enumerate(COLUMNS)}
_NUMERIC_AT = tuple((name, _INDEX[name]) for name in NUMERIC)
_CATEGORICAL_AT = tuple((name, _INDEX[name]) for name in CATEGORICAL)
_LABEL_AT = _INDEX[LABEL]
_LABELS = {"YES": True, "NO": False, MISSING: None}


class MalformedFlight(ValueError):
    """A line that is not a flight of the data file; ``column`` names the culprit (or "")."""

    def __init__(self, message: str, column: str = "") -> None:
        super().__init__(message)
        self.column = column


def parse_line(line: str | bytes) -> dict[str, Any]:
    """One CSV line of the data file → a flight record (features + ``IsDepDelayed``).

    Trailing ``\\r\\n`` is ignored; ``NA`` is missing (``None``). Raises
    :class:`MalformedFlight` for an empty line, a wrong column count, a non-integer where a
    number is needed, or a label other than YES/NO/NA.
    """
    if isinstance(line, (bytes, bytearray, memoryview)):
        line = bytes(line).decode("latin-1")
    if not isinstance(line, str):
        raise MalformedFlight(f"a flight line must be text, not {type(line).__name__}")
    text = line.rstrip("\r\n")
    if not text.strip():
        raise MalformedFlight("empty line")
    fields = text.split(",")
    if len(fields) != len(COLUMNS):
        raise MalformedFlight(f"expected {len(COLUMNS)} comma-separated columns, got "
                              f"{len(fields)}")
    flight: dict[str, Any] = {}
    for name, i in _NUMERIC_AT:
        raw = fields[i]
        if raw == MISSING or raw == "":
            flight[name] = None
            continue
        try:
            flight[name] = int(raw)
        except ValueError:
            raise MalformedFlight(f"column {name}: {raw!r} is not an integer or NA",
                                  name) from None
    for name, i in _CATEGORICAL_AT:
        raw = fields[i]
        flight[name] = None if raw == MISSING or raw == "" else raw
    raw = fields[_LABEL_AT]
    try:
        flight[LABEL] = _LABELS[raw]
    except KeyError:
        raise MalformedFlight(f"column {LABEL}: {raw!r} is not YES, NO or NA", LABEL) from None
    return {name: flight[name] for name in (*FEATURES, LABEL)}  # features in model order


def is_header(line: str | bytes) -> bool:
    if isinstance(line, (bytes, bytearray, memoryview)):
        line = bytes(line).decode("latin-1")
    return line.rstrip("\r\n") == HEADER


def parse_lines(lines: Iterable[str | bytes]) -> tuple[list[dict[str, Any]],
                                                      list[tuple[int, MalformedFlight]]]:
    """Parse many lines: the flights, and ``(index, error)`` of each line that is malformed."""
    flights: list[dict[str, Any]] = []
    errors: list[tuple[int, MalformedFlight]] = []
    for i, line in enumerate(lines):
        try:
            flights.append(parse_line(line))
        except MalformedFlight as exc:
            errors.append((i, exc))
    return flights, errors


def columns(flights: Sequence[dict[str, Any]],
            names: Sequence[str] = (*FEATURES, LABEL)) -> dict[str, list[Any]]:
    """Records → columns (feature name → list of values), the shape models score."""
    return {name: [f[name] for f in flights] for name in names}


def flight_key(flight: dict[str, Any]) -> str:
    """A readable key for a flight: ``1987-10-14 PS1451 SAN-SFO 0730`` (``NA`` for missing)."""

    def f(name: str, width: int = 0) -> str:
        v = flight.get(name)
        if v is None:
            return MISSING
        return f"{v:0{width}d}" if width and isinstance(v, int) else str(v)

    return (f"{f('Year')}-{f('Month', 2)}-{f('DayofMonth', 2)} {f('UniqueCarrier')}"
            f"{f('FlightNum')} {f('Origin')}-{f('Dest')} {f('CRSDepTime', 4)}")


def read_lines(path: str | Path = DATA_FILE, header: bool = False) -> list[str]:
    """The lines of a (gzipped or plain) data file, as in the file less ``\\r\\n``, read as
    latin-1; the header line is dropped unless ``header``."""
    p = Path(path)
    opener: Any = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="latin-1", newline="") as f:
        lines = [line.rstrip("\r\n") for line in f]
    if lines and not header and is_header(lines[0]):
        lines = lines[1:]
    return lines


def iter_lines(path: str | Path = DATA_FILE) -> Iterator[str]:
    """The data lines of a file, one at a time (no header)."""
    p = Path(path)
    opener: Any = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="latin-1", newline="") as f:
        for i, line in enumerate(f):
            text = line.rstrip("\r\n")
            if i == 0 and is_header(text):
                continue
            yield text


def file_sha256(path: str | Path = DATA_FILE) -> str:
    """sha256 of the file's bytes as stored (the gzip file itself for a .gz)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
