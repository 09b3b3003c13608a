"""The engine: executes statements against its catalog and collects persistent queries.

``Engine.execute(text)`` runs each statement in order: DDL changes the catalog, CREATE ... AS
SELECT and INSERT INTO ... SELECT plan a persistent query, INSERT INTO ... VALUES hands an
encoded record to ``on_insert``. ``topology()`` compiles every running query into one
fluvial topology, for the TestDriver or an ``App``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fluvial.sql import ast, functions, udfs
from fluvial.sql import types as t
from fluvial.sql.catalog import PSEUDO_COLUMNS, ROWTIME, Column, DataSource, Formats, Schema
from fluvial.sql.compiler import TopologyCompiler, key_serde, value_serde
from fluvial.sql.errors import SqlAnalysisError, SqlError, SqlExecutionError, at
from fluvial.sql.expressions import Scope, cast_function, compile_expr
from fluvial.sql.formats import KEY_FORMATS, VALUE_FORMATS, codec, delimiter
from fluvial.sql.parser import parse
from fluvial.sql.planner import QueryPlan, plan_select
from fluvial.topology.topology import Topology

_SOURCE_PROPERTIES = {"KAFKA_TOPIC", "KEY_FORMAT", "VALUE_FORMAT", "FORMAT", "PARTITIONS",
                      "REPLICAS", "TIMESTAMP", "WRAP_SINGLE_VALUE", "VALUE_DELIMITER"}

#: ``on_insert(topic, key, value, timestamp)``: where INSERT INTO ... VALUES records go
Inserter = Callable[[str, bytes | None, bytes | None, int], None]


@dataclass(frozen=True)
class PersistentQuery:
    id: str
    sink: str
    plan: QueryPlan
    statement: str


@dataclass
class Result:
    """What a statement did: a message, and for SHOW / DESCRIBE a table of rows."""

    statement: str
    message: str
    header: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class Engine:
    def __init__(self, on_insert: Inserter | None = None,
                 clock_ms: Callable[[], int] | None = None,
                 properties: dict[str, Any] | None = None,
                 functions: udfs.FunctionRegistry | None = None) -> None:
        """``functions``: the Python functions (UDFs, UDAFs, UDTFs) its SQL may call.
        ``properties``: ksqlDB's, of which ``ksql.persistence.default.format.key`` and
        ``….value`` (the formats of a CREATE that names none) and ``ksql.schema.registry.url``
        (for AVRO) are used."""
        props = properties or {}
        self._default_formats = Formats(
            str(props.get("ksql.persistence.default.format.key", "KAFKA")).upper(),
            str(props.get("ksql.persistence.default.format.value", "")).upper(),
            schema_registry=props.get("ksql.schema.registry.url"))
        self.sources: dict[str, DataSource] = {}
        self.queries: dict[str, PersistentQuery] = {}
        self.inserted: list[tuple[str, bytes | None, bytes | None, int]] = []
        self._on_insert = on_insert or (lambda *record: self.inserted.append(record))
        self._clock = clock_ms or (lambda: int(time.time() * 1000))
        self._query_count = 0
        self.functions = functions or udfs.FunctionRegistry()

    # -- running statements -----------------------------------------------------------------

    def execute(self, text: str) -> list[Result]:
        """Parse and run every statement of ``text`` in order; the first failure raises a
        ``SqlError`` (statements before it have taken effect)."""
        return [self.run(statement, text) for statement in parse(text)]

    def run(self, statement: ast.Statement, text: str = "") -> Result:
        handler = getattr(self, f"_run_{type(statement).__name__}", None)
        if handler is None:
            raise SqlExecutionError(at(getattr(statement, "pos", None),
                                       "transient (push and pull) queries are not supported "
                                       "yet: create a stream or table AS SELECT"))
        with udfs.using(self.functions):
            result: Result = handler(statement, text)
        return result

    def sandbox(self) -> Engine:
        """A copy to try a statement on: its catalog changes leave this engine's as they are
        (a server checks a statement there before writing it to the command topic)."""
        copied = copy.copy(self)
        copied.sources = dict(self.sources)
        copied.queries = dict(self.queries)
        return copied

    def topology(self) -> Topology:
        """Every running query, compiled into one topology."""
        compiler = TopologyCompiler(q.plan for q in self.queries.values())
        for query in self.queries.values():
            compiler.add(query.id, query.plan, self.sources[query.sink])
        return compiler.build()

    def _plan(self, query: ast.Query, sink_name: str) -> QueryPlan:
        sources = [self.source(query.source, query.source_pos, "Source ")]
        sources += [self.source(j.source, j.source_pos, "Source ") for j in query.joins]
        return plan_select(query, sources, sink_name)

    def source(self, name: str, pos: ast.Pos | None = None, what: str = "") -> DataSource:
        """The source ``name``; ``what`` ("Source ") words the error as ksqlDB does for a
        query's FROM: "Source `X` does not exist."."""
        try:
            return self.sources[name]
        except KeyError:
            shown = f"{what}`{name}`" if what else name
            raise SqlExecutionError(at(pos, f"{shown} does not exist.")) from None

    # -- DDL --------------------------------------------------------------------------------

    def _run_CreateSource(self, s: ast.CreateSource, text: str) -> Result:
        existing_source = self.sources.get(s.name)
        if s.or_replace and (s.read_only or (existing_source and existing_source.read_only)):
            kind = s.kind.lower()
            raise SqlExecutionError(at(s.pos, f"Cannot add {kind} '{s.name}': CREATE OR REPLACE "
                                              f"is not supported on source {kind}s."))
        if s.name in self.sources:
            existing = self.sources[s.name]
            if s.if_not_exists:
                return Result(text, f"{s.kind.title()} {s.name} already exists.")
            if not s.or_replace or existing.query_id is not None:
                raise SqlExecutionError(at(s.pos, f"Cannot add {s.kind.lower()} '{s.name}': "
                                                  f"A {existing.kind.lower()} with the same "
                                                  f"name already exists"))
        props = _properties(s.properties, _SOURCE_PROPERTIES)
        if "KAFKA_TOPIC" not in props:
            raise SqlAnalysisError(at(s.pos, "Missing required property \"KAFKA_TOPIC\" "
                                             "which has no default value."))
        formats = _formats(props, None, s.pos, self._default_formats)
        if not s.columns:
            raise SqlAnalysisError(at(s.pos, "The statement does not define any columns."))
        schema = _schema(s)
        timestamp = _timestamp_column(props, schema, s.pos)
        source = DataSource(s.name, s.kind, schema, str(props["KAFKA_TOPIC"]), formats,
                            int(props.get("PARTITIONS", 1)), timestamp, statement=text,
                            read_only=s.read_only)
        _check_formats(source, s.pos)
        self.sources[s.name] = source
        return Result(text, f"{s.kind.title()} created")

    def _run_CreateAs(self, s: ast.CreateAs, text: str) -> Result:
        if s.name in self.sources:
            if s.if_not_exists:
                return Result(text, f"{s.kind.title()} {s.name} already exists.")
            if not s.or_replace:
                existing = self.sources[s.name]
                raise SqlExecutionError(at(s.pos, f"Cannot add {s.kind.lower()} '{s.name}': "
                                                  f"A {existing.kind.lower()} with the same "
                                                  f"name already exists"))
        plan = self._plan(s.query, s.name)
        source = plan.source
        if plan.result_kind != s.kind:
            create = "CREATE STREAM" if plan.result_kind == "STREAM" else "CREATE TABLE"
            raise SqlAnalysisError(at(s.pos, f"Invalid result type. Your SELECT query "
                                             f"produces a {plan.result_kind}. Please use "
                                             f"{create} AS SELECT statement instead."))
        props = _properties(s.properties, _SOURCE_PROPERTIES - {"TIMESTAMP"})
        formats = _formats(props, source.formats, s.pos)
        schema = plan.projection.schema
        if not schema.key and source.schema.key:
            if "KEY_FORMAT" in props:
                raise SqlAnalysisError(at(s.pos, "Key format specified for stream without key "
                                                 "columns."))
            formats = replace(formats, key="NONE")  # PARTITION BY NULL: no key columns
        replaced = self.sources.get(s.name)
        query_id = replaced.query_id if replaced and replaced.query_id else \
            self._new_query_id(f"C{s.kind[0]}AS_{s.name}")
        sink = DataSource(s.name, s.kind, schema, str(props.get("KAFKA_TOPIC", s.name)),
                          formats, int(props.get("PARTITIONS", source.partitions)),
                          window=plan.window, query_id=query_id, statement=text)
        _check_formats(sink, s.pos)
        self.sources[s.name] = sink
        self.queries[query_id] = PersistentQuery(query_id, s.name, plan, text)
        return Result(text, f"Created query with ID {query_id}")

    def _run_InsertSelect(self, s: ast.InsertSelect, text: str) -> Result:
        target = self.source(s.target, s.pos)
        if target.read_only and target.kind == "STREAM":
            raise SqlExecutionError(at(s.pos, f"Cannot insert into read-only stream: "
                                              f"{s.target}"))
        if target.kind == "TABLE":
            raise SqlExecutionError(at(s.pos, f"INSERT INTO can only be used to insert into "
                                              f"a stream. {s.target} is a table."))
        plan = self._plan(s.query, s.target)
        if plan.result_kind != "STREAM":
            raise SqlAnalysisError(at(s.pos, "INSERT INTO can only insert the result of a "
                                             "stream query"))
        if plan.projection.schema != target.schema:
            raise SqlAnalysisError(at(s.pos, f"Incompatible schema between results and sink. "
                                             f"Result schema is {plan.projection.schema}, "
                                             f"but the sink schema is {target.schema}."))
        query_id = self._new_query_id("INSERTQUERY")
        self.queries[query_id] = PersistentQuery(query_id, s.target, plan, text)
        return Result(text, f"Created query with ID {query_id}")

    def _run_InsertValues(self, s: ast.InsertValues, text: str) -> Result:
        target = self.source(s.target, s.pos)
        if target.read_only:
            raise SqlExecutionError(at(s.pos, f"Cannot insert values into read-only "
                                              f"{target.kind.lower()}: {s.target}"))
        allowed = {c.name: c.type for c in target.schema.columns}
        allowed[ROWTIME] = t.BIGINT
        names = s.columns or tuple(c.name for c in target.schema.columns)
        if len(names) != len(s.values):
            raise SqlAnalysisError(at(s.pos, f"Expected number columns and values to match: "
                                             f"{list(names)}, {len(s.values)} value(s)"))
        row: dict[str, Any] = {}
        for name, expr in zip(names, s.values, strict=True):
            if name not in allowed:
                raise SqlAnalysisError(at(s.pos, f"Column name {name} does not exist."))
            row[name] = constant(expr, allowed[name])
        timestamp = row.pop(ROWTIME, None)
        key = tuple(row.get(c.name) for c in target.schema.key)
        value = {c.name: row.get(c.name) for c in target.schema.value}
        self._on_insert(target.topic, key_serde(target).serialize(key),
                        value_serde(target).serialize(value),
                        self._clock() if timestamp is None else timestamp)
        return Result(text, "Inserted 1 row")

    def _run_Drop(self, s: ast.Drop, text: str) -> Result:
        source = self.sources.get(s.name)
        if source is None:
            if s.if_exists:
                return Result(text, f"{s.name} does not exist.")
            raise SqlExecutionError(at(s.pos, f"{s.kind.title()} {s.name} does not exist."))
        if source.kind != s.kind:
            raise SqlExecutionError(at(s.pos, f"Incompatible data source type is "
                                              f"{source.kind}, but statement was DROP "
                                              f"{s.kind}"))
        if s.delete_topic and source.read_only:
            raise SqlExecutionError(at(s.pos, f"Cannot delete topic for read-only source: "
                                              f"{s.name}"))
        readers = sorted(q.id for q in self.queries.values() if s.name in q.plan.reads)
        if readers:
            raise SqlExecutionError(at(s.pos, f"Cannot drop {s.name}. The following queries "
                                              f"read from this source: [{', '.join(readers)}]."))
        writers = [q.id for q in self.queries.values() if q.sink == s.name]
        for query_id in writers:
            del self.queries[query_id]
        del self.sources[s.name]
        return Result(text, f"Source `{s.name}` (topic: {source.topic}) was dropped.")

    def _run_Terminate(self, s: ast.Terminate, text: str) -> Result:
        """Stop a persistent query (ALL: every one); its sink stays, for DROP or reading."""
        if s.query_id == "ALL":
            self.queries.clear()
        elif self.queries.pop(s.query_id, None) is None:
            raise SqlExecutionError(at(s.pos, f"Unknown queryId: {s.query_id}"))
        return Result(text, "Query terminated.")

    def _run_Show(self, s: ast.Show, text: str) -> Result:
        if s.what == "FUNCTIONS":
            rows: list[tuple[Any, ...]] = [(name, "AGGREGATE", "BUILT_IN")
                                           for name in udfs.BUILTIN_AGGREGATES]
            rows += [(name, "SCALAR", "BUILT_IN") for name in functions.REGISTRY]
            rows += [(name, "TABLE", "BUILT_IN") for name in udfs.BUILTIN_TABLE_FUNCTIONS]
            rows += [(f.name, f.kind, "PYTHON") for f in self.functions.functions.values()]
            return Result(text, f"{len(rows)} functions", ("Function Name", "Type",
                                                             "Category"), sorted(rows))
        if s.what == "QUERIES":
            queries: list[tuple[Any, ...]] = [(q.id, q.sink, q.statement)
                                              for q in self.queries.values()]
            return Result(text, f"{len(queries)} queries",
                          ("Query ID", "Sink", "Query String"), queries)
        kind = s.what[:-1]  # STREAMS -> STREAM
        rows = [(d.name, d.topic, d.formats.key, d.formats.value, d.window is not None)
                for d in sorted(self.sources.values(), key=lambda d: d.name) if d.kind == kind]
        header = (f"{kind.title()} Name", "Kafka Topic", "Key Format", "Value Format",
                  "Windowed")
        return Result(text, f"{len(rows)} {s.what.lower()}", header, rows)

    def _run_DescribeFunction(self, s: ast.DescribeFunction, text: str) -> Result:
        kind, where, about, rows = self.function_info(s.name, s.pos)
        return Result(text, f"Name: {s.name} ({kind}, {where})" + (f": {about}" if about
                                                                   else ""),
                      ("Arguments", "Returns", "Implementation"), rows)

    def function_info(self, name: str, pos: ast.Pos | None = None) -> tuple[
            str, str, str, list[tuple[Any, ...]]]:
        """(kind, "Python" or "built in", description, a row per Python overload: argument
        types, result type, implementation) of the function ``name``."""
        user = self.functions.get(name)
        if user is not None:
            rows: list[tuple[Any, ...]] = [
                (o.signature.arguments(), str(o.signature.returns),
                 f"{o.call.__module__}.{o.call.__qualname__}") for o in user.overloads]
            return user.kind, "Python", user.description, rows
        if name in udfs.BUILTIN_AGGREGATES:
            return "AGGREGATE", "built in", "", []
        if name in functions.REGISTRY:
            return "SCALAR", "built in", functions.REGISTRY[name].description, []
        if name in udfs.BUILTIN_TABLE_FUNCTIONS:
            return "TABLE", "built in", "One row per element of an ARRAY.", []
        raise SqlExecutionError(at(pos, f"Can't find any functions with the name '{name}'"))

    def _run_Describe(self, s: ast.Describe, text: str) -> Result:
        source = self.source(s.name, s.pos)
        rows: list[tuple[Any, ...]] = [(c.name, f"{c.type}   (key)") for c in source.schema.key]
        rows += [(c.name, str(c.type)) for c in source.schema.value]
        header = ("Field", "Type")
        message = (f"Name: {source.name} ({source.kind}), topic {source.topic}, key format "
                   f"{source.formats.key}, value format {source.formats.value}"
                   + (f", windowed ({source.window.kind})" if source.window else ""))
        if s.extended and source.query_id:
            message += f", written by query {source.query_id}"
        return Result(text, message, header, rows)

    def _new_query_id(self, prefix: str) -> str:
        query_id = f"{prefix}_{self._query_count}"
        self._query_count += 1
        return query_id


# -- helpers of the statements --------------------------------------------------------------

def _properties(props: tuple[ast.Property, ...], allowed: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for p in props:
        if p.name not in allowed:
            raise SqlAnalysisError(at(p.pos, f"Invalid config variable(s) in the WITH clause: "
                                             f"{p.name}; valid: {', '.join(sorted(allowed))}"))
        if p.name in found:
            raise SqlAnalysisError(at(p.pos, f"Duplicate property {p.name}"))
        found[p.name] = p.value
    for clash in ("KEY_FORMAT", "VALUE_FORMAT"):
        if "FORMAT" in found and clash in found:
            raise SqlAnalysisError(f"Cannot supply both '{clash}' and 'FORMAT' properties, as "
                                   f"'FORMAT' sets both key and value formats.")
    if "PARTITIONS" in found and (not isinstance(found["PARTITIONS"], int)
                                  or found["PARTITIONS"] < 1):
        raise SqlAnalysisError(f"Invalid number of partitions: {found['PARTITIONS']}")
    return found


def _schema(s: ast.CreateSource) -> Schema:
    names: set[str] = set()
    key: list[Column] = []
    value: list[Column] = []
    wanted = "PRIMARY KEY" if s.kind == "TABLE" else "KEY"
    for c in s.columns:
        if c.name in PSEUDO_COLUMNS:
            raise SqlAnalysisError(at(c.pos, f"'{c.name}' is a reserved column name."))
        if c.name in names:
            raise SqlAnalysisError(at(c.pos, f"Duplicate column names: {c.name}"))
        names.add(c.name)
        column = Column(c.name, t.from_name(c.type))
        if c.constraint == "HEADERS":
            raise SqlAnalysisError(at(c.pos, "HEADERS columns are not supported yet"))
        if c.constraint is not None:
            if c.constraint != wanted:
                raise SqlAnalysisError(at(c.pos, f"Column `{c.name}` is a '{c.constraint}' "
                                                 f"column: please use '{wanted}' for "
                                                 f"{s.kind.lower()}s."))
            key.append(column)
        else:
            value.append(column)
    if s.kind == "TABLE" and not key:
        raise SqlAnalysisError(at(s.pos, "Tables require a PRIMARY KEY. Please define the "
                                         "PRIMARY KEY."))
    return Schema(tuple(key), tuple(value))


def _formats(props: dict[str, Any], inherited: Formats | None, pos: ast.Pos,
             defaults: Formats | None = None) -> Formats:
    both = props.get("FORMAT")
    key = props.get("KEY_FORMAT", both)
    value = props.get("VALUE_FORMAT", both)
    if defaults is not None:
        key = key or defaults.key
        value = value or defaults.value or None
    if value is None:
        if inherited is None:
            raise SqlAnalysisError(at(pos, "Statement is missing the 'VALUE_FORMAT' property "
                                           "from the WITH clause. Either provide one or set a "
                                           "default via the 'ksql.persistence.default.format."
                                           "value' config."))
        value = inherited.value
    if key is None:
        key = inherited.key if inherited is not None else "KAFKA"
    key, value = str(key).upper(), str(value).upper()
    if key not in KEY_FORMATS:
        raise SqlAnalysisError(at(pos, f"Unknown format: {key}; key formats: "
                                       f"{', '.join(KEY_FORMATS)}"))
    if value not in VALUE_FORMATS:
        raise SqlAnalysisError(at(pos, f"Unknown format: {value}; value formats: "
                                       f"{', '.join(VALUE_FORMATS)}"))
    wrap = props.get("WRAP_SINGLE_VALUE")
    if wrap is True and value in ("DELIMITED", "KAFKA"):
        raise SqlAnalysisError(at(pos, f"Format '{value}' does not support "
                                       f"'WRAP_SINGLE_VALUE' set to 'true'."))
    if wrap is None:
        wrap = inherited.wrap_single_value if inherited is not None else True
    separator = ","
    if "VALUE_DELIMITER" in props:
        if value != "DELIMITED":
            raise SqlAnalysisError(at(pos, f"{value} does not support the following configs: "
                                           f"[delimiter]"))
        try:
            separator = delimiter(str(props["VALUE_DELIMITER"]))
        except ValueError as exc:
            raise SqlAnalysisError(at(pos, f"Failed to prepare statement: {exc}")) from None
    elif inherited is not None and value == inherited.value:
        separator = inherited.value_delimiter
    known = defaults or inherited
    return Formats(key, value, bool(wrap), separator,
                   known.schema_registry if known is not None else None)


def _check_formats(source: DataSource, pos: ast.Pos) -> None:
    """Refuse schemas their formats cannot carry (several columns in KAFKA, ...)."""
    try:
        if source.schema.key:
            if source.formats.key == "NONE":
                raise ValueError("The 'NONE' format can only be used when no columns are "
                                 "defined. Got: key columns")
            codec(source.formats.key, source.schema.key, wrapped=False)
        if not source.schema.value:
            raise ValueError("The projection contains no value columns." if source.query_id
                             else "The statement does not define any value columns.")
        codec(source.formats.value, source.schema.value, source.formats.wrap_single_value,
              registry=source.formats.schema_registry, topic=source.topic)
    except ValueError as exc:
        raise SqlAnalysisError(at(pos, str(exc))) from None
    if not source.formats.wrap_single_value and len(source.schema.value) != 1:
        raise SqlAnalysisError(at(pos, "'WRAP_SINGLE_VALUE' is only valid for single-field "
                                       "value schemas"))


def _timestamp_column(props: dict[str, Any], schema: Schema, pos: ast.Pos) -> str | None:
    name = props.get("TIMESTAMP")
    if name is None:
        return None
    name = str(name).upper()
    column = schema.find(name)
    if column is None:
        raise SqlAnalysisError(at(pos, f"The TIMESTAMP column set in the WITH clause does not "
                                       f"exist in the schema: '{name}'"))
    if column.type != t.BIGINT:
        raise SqlAnalysisError(at(pos, f"Timestamp column, `{name}`, should be BIGINT (or a "
                                       f"STRING with TIMESTAMP_FORMAT, not supported yet)"))
    return name


def constant(expr: ast.Expr, target: t.SqlType) -> Any:
    """A VALUES expression (no columns) as a value of the column's type."""
    try:
        compiled = compile_expr(expr, Scope({}))
    except SqlError as exc:
        raise SqlAnalysisError(f"INSERT INTO ... VALUES takes constant expressions: {exc}")\
            from None
    value = compiled.fn({})
    if value is None:
        return None
    widening = compiled.type == target or (compiled.type.numeric and target.numeric) or \
        compiled.type == t.NULL
    convert = cast_function(compiled.type, target) if widening else None
    if convert is None:
        raise SqlAnalysisError(at(getattr(expr, "pos", None),
                                  f"Expected type {target} for value, got {compiled.type}"))
    return convert(value)

