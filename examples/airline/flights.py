"""Flights of the airline data file: a CSV line (exactly as in the file) → a flight record.

A flight record is a plain ``dict``: the 11 model features under their column names, plus the
label ``IsDepDelayed`` (``True``/``False``, ``None`` when ``NA``). Numeric features are
``int`` (``None`` when ``NA``); the categorical ones (``UniqueCarrier``, ``FlightNum``,
``Origin``, ``Dest``) stay ``str`` (``None`` when ``NA``). The file is latin-1 (``TailNum``
has non-UTF-8 bytes), so ``bytes`` lines are decoded as latin-1.

A malformed line raises :class:`MalformedFlight` (a ``ValueError``) naming the column and why.

:func:`parse_columns` parses a whole batch at once into feature columns, with numpy over the
batch's bytes, for ``fluvial.ml.score(featurize_batch=...)``: several times cheaper a line.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

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


#: What parse_columns reads of a line: the numeric features, the categorical ones, the label
#: (field indices, in this order).
_FIELDS = np.array([i for _, i in (*_NUMERIC_AT, *_CATEGORICAL_AT)] + [_LABEL_AT])
_TEXTS = slice(len(NUMERIC), len(FEATURES))
#: Below this many lines, numpy's cost a call outweighs its speed a line.
_SMALL_BATCH = 32
#: A field's last 8 bytes are read as one little-endian word, from the two aligned words
#: they straddle (the buffer is padded at both ends so that both exist). Numbers of up to 8
#: digits are parsed from it; the mask for a field of ``width`` bytes keeps its bytes, the
#: word's high ones.
_WORD = 8
_PADDING = b"\0" * _WORD
_WIDTH_MASKS = np.array([~np.uint64(0) << np.uint64(8 * (_WORD - w)) if w else 0
                         for w in range(_WORD + 1)], dtype=np.uint64)


def _last_bytes(text: str, n: int) -> np.uint64:
    """``text`` as the top ``n`` bytes of a word, as it reads at the end of a field."""
    return np.uint64(int.from_bytes(text.encode(), "little") << 8 * (_WORD - n))


def _bytes8(value: int) -> np.uint64:
    """``value`` in each byte of a word: to work on 8 bytes at once."""
    return np.uint64(value * 0x0101010101010101)


_NA, _YES, _NO = _last_bytes(MISSING, 2), _last_bytes("YES", 3), _last_bytes("NO", 2)


def parse_columns(lines: Sequence[str | bytes]) -> dict[str, Any]:
    """A batch of CSV lines → the model's feature columns (``FEATURES``), as ``parse_line``
    would give them, at a fraction of its cost a line (numpy over the batch's bytes).

    Numeric features are float64 arrays with NaN where ``parse_line`` gives ``None`` (what a
    model makes of ``None``: the scores are the same, bit for bit); categorical ones are
    lists of ``str`` or ``None``. A batch under 32 lines is parsed by ``parse_line`` (numbers
    then are lists of ``int`` or ``None``). Raises (``MalformedFlight`` or another error) on
    any line that ``parse_line`` refuses, and on some unusual ones it takes (a sign, spaces or
    more than 8 digits in a number, a trailing ``\\r``): parse those one by one, which also
    names the culprit.
    """
    if len(lines) < _SMALL_BATCH:
        return columns([parse_line(line) for line in lines], FEATURES)
    data, encoding = _joined(lines)
    buf = np.frombuffer(data, dtype=np.uint8)
    seps = _separators(buf, len(lines))
    starts, ends = seps[:, _FIELDS].T + 1, seps[:, _FIELDS + 1].T  # (field, line)
    width = ends - starts
    words = _words(np.frombuffer(data, dtype="<u8", count=len(data) // _WORD), ends)
    last2, last3 = words & _WIDTH_MASKS[2], words[-1] & _WIDTH_MASKS[3]
    missing = (width == 0) | ((width == 2) & (last2 == _NA))
    if not (((width[-1] == 3) & (last3 == _YES))
            | ((width[-1] == 2) & ((last2[-1] == _NO) | (last2[-1] == _NA)))).all():
        raise MalformedFlight(f"column {LABEL}: not YES, NO or NA", LABEL)
    numbers = _numbers(words[:len(NUMERIC)], width[:len(NUMERIC)], missing[:len(NUMERIC)])
    texts = _texts(buf, starts[_TEXTS], width[_TEXTS], missing[_TEXTS], encoding)
    out: dict[str, Any] = dict(zip(NUMERIC, numbers, strict=True))
    out.update(zip(CATEGORICAL, texts, strict=True))
    return {name: out[name] for name in FEATURES}


def _joined(lines: Sequence[str | bytes]) -> tuple[bytes, str]:
    """The lines as one buffer, each between two ``\\n``, with padding before and after, and
    the encoding to read text back with: bytes are latin-1 (as ``parse_line`` reads them),
    text is written as UTF-8 (whose multi-byte characters never hold a comma, a newline or a
    digit)."""
    if isinstance(lines[0], str):
        pad = _PADDING.decode()
        return "\n".join([pad, *cast(Sequence[str], lines), pad * 2]).encode(), "utf-8"
    return b"\n".join([_PADDING, *cast(Sequence[bytes], lines), _PADDING * 2]), "latin-1"


def _separators(buf: np.ndarray, n: int) -> np.ndarray:
    """Where each line's fields are, shape ``(lines, 32)``: field ``k`` of a line is
    ``buf[seps[k] + 1:seps[k + 1]]`` (the newlines around the line and its 30 commas).
    Raises unless every line has exactly 31 fields (and no newline of its own)."""
    newlines = np.flatnonzero(buf == ord("\n"))
    commas = np.flatnonzero(buf == ord(","))
    per_line = len(COLUMNS) - 1
    if len(newlines) != n + 1 or len(commas) != n * per_line:
        raise MalformedFlight(f"expected {len(COLUMNS)} comma-separated columns a line")
    commas = commas.reshape(n, per_line)  # then each line's commas must lie in that line
    before, after = newlines[:-1], newlines[1:]
    if not ((commas[:, 0] > before).all() and (commas[:, -1] < after).all()):
        raise MalformedFlight(f"expected {len(COLUMNS)} comma-separated columns a line")
    return np.column_stack((before, commas, after))


def _words(aligned: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The 8 bytes before each end, as little-endian words: the top of one aligned word and
    the bottom of the next."""
    first = ends - _WORD
    at = first >> 3
    shift = ((first & 7) << 3).astype(np.uint64)
    return (aligned[at] >> shift) | ((aligned[at + 1] << np.uint64(1)) << (np.uint64(63) - shift))


def _numbers(words: np.ndarray, width: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fields as numbers from their last 8 bytes (float64, NaN where ``missing``); raises on
    any other field that is not plain digits, or longer than 8. The digits are checked and
    summed a byte pair, then a pair of pairs, at a time (SWAR)."""
    if width.max() > _WORD:
        raise MalformedFlight(f"a number of more than {_WORD} digits")
    x = (words ^ _bytes8(ord("0"))) & _WIDTH_MASKS[width]  # a digit byte is now its value
    not_digit = (x & _bytes8(0xF0)) | ((x + _bytes8(6)) & _bytes8(0x10))
    if ((not_digit != 0) & ~missing).any():
        raise MalformedFlight("a number that is not plain digits or NA")
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    x = (x * np.uint64(10000) + (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    numbers = x.astype(np.float64)
    numbers[missing] = np.nan
    return numbers


def _texts(buf: np.ndarray, starts: np.ndarray, width: np.ndarray, missing: np.ndarray,
           encoding: str) -> list[list[str | None]]:
    """Fields as text, one list per row of ``starts`` (``None`` where ``missing``): the
    fields, each with the comma after it, gathered into one buffer that is decoded and split
    at C speed."""
    sizes = (width + 1).ravel()
    offsets = np.cumsum(sizes) - sizes
    gathered = buf[np.repeat(starts.ravel() - offsets, sizes) + np.arange(int(sizes.sum()))]
    fields = gathered.tobytes().decode(encoding).split(",")
    n = starts.shape[1]
    return [_none_where(fields[k * n:(k + 1) * n], gaps) for k, gaps in enumerate(missing)]


def _none_where(column: list[str], missing: np.ndarray) -> list[str | None]:
    if not missing.any():
        return cast(list[str | None], column)
    return [None if gap else v for v, gap in zip(column, missing.tolist(), strict=True)]


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
