"""Runs cases in ksqlDB's query-validation-test (QTT) format on fluvial's TestDriver.

A file holds ``{"tests": [case, ...]}``; a case has ``name``, ``statements``, ``inputs`` and
``outputs`` (records ``{topic, key, value, timestamp, window?}``), and optionally
``properties``, ``expectedException`` (``{type, message}``, the message matched as a
substring), ``format``/``formats`` (one run per format, ``{FORMAT}`` in the statements
replaced) and ``post.sources`` (expected schemas of the created sources). Every topic has one
partition and every record is processed and committed before the next, so each intermediate
update is an output; outputs are compared per topic, in order.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fluvial.io.serdes import SerdeError
from fluvial.sql.catalog import DataSource
from fluvial.sql.engine import Engine
from fluvial.sql.errors import SqlError
from fluvial.sql.formats import dump_json, load_json
from fluvial.sql.udfs import FunctionRegistry
from fluvial.testing.driver import TestDriver

_STRUCTS = {"INTEGER": struct.Struct(">i"), "BIGINT": struct.Struct(">q"),
            "DOUBLE": struct.Struct(">d")}


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    detail: str = ""  # the first difference of a failure


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    """The cases of a QTT file, each format expansion as a case of its own."""
    try:
        document = json.loads(Path(path).read_text(), parse_float=Decimal)
    except (OSError, ValueError) as exc:
        raise SqlError(f"{path}: cannot read the test file: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("tests"), list):
        raise SqlError(f"{path}: a test file is an object with a \"tests\" list")
    return [case for raw in document["tests"] for case in _expand(raw)]


def _expand(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    formats = case.get("formats") or case.get("format")
    if not formats:
        yield case
        return
    for fmt in formats:
        statements = [s.replace("{FORMAT}", fmt) for s in case.get("statements", [])]
        yield {**case, "name": f"{case.get('name', '?')} - {fmt}", "statements": statements}


def run_file(path: str | Path, functions: FunctionRegistry | None = None) -> list[CaseResult]:
    """Every case of ``path``; ``functions``: the Python functions its SQL may call."""
    return [run_case(case, functions) for case in load_cases(path)]


def run_case(case: dict[str, Any], functions: FunctionRegistry | None = None) -> CaseResult:
    name = str(case.get("name", "?"))
    expected_error = case.get("expectedException")
    engine = Engine(clock_ms=lambda: 0, properties=case.get("properties"),
                    functions=functions)
    try:
        for statement in case.get("statements", []):
            engine.execute(statement)
        outputs = _drive(engine, case.get("inputs", []))
    except (SqlError, SerdeError, ValueError) as exc:
        if expected_error is None:
            return CaseResult(name, False, f"unexpected error: {exc}")
        # ksqlDB's messages may span lines; fluvial's are one line: match the first
        wanted = str(expected_error.get("message", "")).split("\n")[0]
        if wanted in str(exc):
            return CaseResult(name, True)
        return CaseResult(name, False, f"error message {str(exc)!r} does not contain "
                                       f"{wanted!r}")
    if expected_error is not None:
        return CaseResult(name, False, f"expected an error containing "
                                       f"{expected_error.get('message', '')!r}, got none")
    difference = _compare(engine, case.get("outputs", []), outputs) or \
        _check_sources(engine, case.get("post", {}).get("sources", []))
    return CaseResult(name, difference is None, difference or "")


# -- driving --------------------------------------------------------------------------------

def _drive(engine: Engine, inputs: list[dict[str, Any]]) -> Callable[[str], list[Any]]:
    """Pipe the inserted records, then the inputs; the records each topic then holds."""
    if not engine.queries:
        return lambda _topic: []  # no query: nothing reads the inputs, nothing is written
    driver = TestDriver(engine.topology(), application_id="fluvial-sql-test",
                        on_error="skip", wall_clock_ms=0)
    read = {t for st in driver.topology.subtopologies
            for t in st.source_topics(driver.application_id)}
    for topic, key, value, timestamp in engine.inserted:
        if topic in read:  # records to topics no query reads change nothing
            driver.input_topic(topic, "bytes", "bytes").pipe(value, key, timestamp)
    for record in inputs:
        topic = str(record["topic"])
        source = _source_of(engine, topic)
        key = _encode(record.get("key"), source, is_key=True)
        value = _encode(record.get("value"), source, is_key=False)
        if topic in read:
            driver.input_topic(topic, "bytes", "bytes").pipe(
                value, key, int(record.get("timestamp", 0)))
    return driver.read


def _source_of(engine: Engine, topic: str) -> DataSource | None:
    matches = [s for s in engine.sources.values() if s.topic == topic]
    declared = [s for s in matches if s.query_id is None]
    found = declared or matches
    return found[0] if found else None


def _encode(literal: Any, source: DataSource | None, is_key: bool) -> bytes | None:
    """A record's key or value as the test file writes it, to the topic's bytes."""
    if literal is None:
        return None
    fmt = "JSON" if source is None else (source.formats.key if is_key else
                                          source.formats.value)
    columns = () if source is None else (source.schema.key if is_key else source.schema.value)
    if fmt == "JSON":
        return dump_json(literal)
    if fmt == "KAFKA" and len(columns) == 1 and columns[0].type.name in _STRUCTS:
        packer = _STRUCTS[columns[0].type.name]
        number = float(literal) if columns[0].type.name == "DOUBLE" else int(literal)
        return packer.pack(number)
    return str(literal).encode()


def _decode(data: bytes | None, source: DataSource | None, is_key: bool) -> Any:
    if data is None:
        return None
    fmt = "JSON" if source is None else (source.formats.key if is_key else
                                          source.formats.value)
    columns = () if source is None else (source.schema.key if is_key else source.schema.value)
    if fmt == "JSON":
        return load_json(data, exact=True)
    if fmt == "KAFKA" and len(columns) == 1 and columns[0].type.name in _STRUCTS:
        packer = _STRUCTS[columns[0].type.name]
        return packer.unpack(data)[0] if len(data) == packer.size else data
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


# -- comparing ------------------------------------------------------------------------------

def _compare(engine: Engine, expected: list[dict[str, Any]],
             read: Callable[[str], list[Any]]) -> str | None:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for record in expected:
        by_topic.setdefault(str(record["topic"]), []).append(record)
    for topic, wanted in by_topic.items():
        source = next((s for s in engine.sources.values()
                       if s.topic == topic and s.query_id is not None),
                      _source_of(engine, topic))
        actual = [_actual(m, source) for m in read(topic)]
        for i, want in enumerate(wanted):
            if i >= len(actual):
                return (f"topic {topic}: expected {len(wanted)} record(s), got "
                        f"{len(actual)}; missing #{i}: {_show(want)}")
            difference = _differs(want, actual[i])
            if difference:
                return f"topic {topic} record #{i}: {difference}"
        if len(actual) > len(wanted):
            return (f"topic {topic}: expected {len(wanted)} record(s), got {len(actual)}; "
                    f"extra #{len(wanted)}: {_show(actual[len(wanted)])}")
    return None


def _actual(message: Any, source: DataSource | None) -> dict[str, Any]:
    key_bytes = message.key()
    record: dict[str, Any] = {"timestamp": message.timestamp()[1]}
    if source is not None and source.window is not None and key_bytes is not None:
        if source.window.size_ms is None:
            end, start = struct.unpack(">qq", key_bytes[-16:])
            key_bytes = key_bytes[:-16]
            record["window"] = {"start": start, "end": end, "type": "session"}
        else:
            start = struct.unpack(">q", key_bytes[-8:])[0]
            key_bytes = key_bytes[:-8]
            record["window"] = {"start": start, "end": start + source.window.size_ms,
                                "type": "time"}
        key_bytes = key_bytes or None
    record["key"] = _decode(key_bytes, source, is_key=True)
    record["value"] = _decode(message.value(), source, is_key=False)
    return record


def _differs(want: dict[str, Any], got: dict[str, Any]) -> str | None:
    for field in ("key", "value"):
        if _normal(want.get(field)) != _normal(got.get(field)):
            return (f"{field} differs: expected {_show_value(want.get(field))}, got "
                    f"{_show_value(got.get(field))}")
    if "timestamp" in want and int(want["timestamp"]) != got["timestamp"]:
        return f"timestamp differs: expected {want['timestamp']}, got {got['timestamp']}"
    if "window" in want:
        w, g = want["window"], got.get("window") or {}
        for part in ("start", "end"):
            if part in w and int(w[part]) != g.get(part):
                return f"window {part} differs: expected {w[part]}, got {g.get(part)}"
        if "type" in w and str(w["type"]).lower() != g.get("type"):
            return f"window type differs: expected {w['type']}, got {g.get('type')}"
    return None


def _normal(value: Any) -> Any:
    """Numbers compared by value whatever their spelling (1, 1.0, 1.00 are equal)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)).normalize()
    if isinstance(value, int | Decimal):
        return Decimal(value).normalize()
    if isinstance(value, dict):  # field names as ksqlDB's runner compares them: any case
        return {str(k).upper(): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _show_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return dump_json(value).decode()
    return repr(value)


def _show(record: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_show_value(v)}" for k, v in record.items() if k != "topic")


def _check_sources(engine: Engine, expected: Iterable[dict[str, Any]]) -> str | None:
    for want in expected:
        name = str(want.get("name", ""))
        source = engine.sources.get(name)
        if source is None:
            return f"post: source {name} does not exist"
        if "type" in want and str(want["type"]).upper() != source.kind:
            return f"post: {name} is a {source.kind}, expected {want['type']}"
        if "schema" in want and _squash(str(want["schema"])) != _squash(str(source.schema)):
            return f"post: {name} has schema {source.schema}, expected {want['schema']}"
        key_format = want.get("keyFormat", {}).get("format")
        if key_format and str(key_format).upper() != source.formats.key:
            return f"post: {name} has key format {source.formats.key}, expected {key_format}"
    return None


def _squash(schema: str) -> str:
    """A schema's text compared loosely: no back-quotes, spacing or type-name aliases, and
    a table's ``PRIMARY KEY`` as ``KEY``."""
    words = schema.replace("`", "").replace(",", " , ").replace("(", " ( ").replace(
        ")", " ) ").upper().split()
    aliases = {"INT": "INTEGER", "VARCHAR": "STRING"}
    return " ".join(aliases.get(w, w) for w in words).replace("PRIMARY KEY", "KEY")


def format_table(results: list[CaseResult]) -> str:
    """The pass/fail table ``fluvial sql test`` prints, failures with their first
    difference, and a summary line."""
    width = max((len(r.name) for r in results), default=4)
    lines = [f"{'RESULT':6}  {'CASE':{width}}  FIRST DIFFERENCE"]
    for r in results:
        lines.append(f"{'pass' if r.passed else 'FAIL':6}  {r.name:{width}}  {r.detail}"
                     .rstrip())
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} case(s) passed")
    return "\n".join(lines)
