"""The SQL engine as a long-lived service: statements arrive one request at a time, persistent
queries run in one fluvial ``App``, pull queries read that app's state stores.

The engine compiles every running query into one topology, so adding a persistent query
restarts the App on the new topology (same application id: committed offsets and state
stores carry over; only the new query's processors start from nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from fluvial.io.client import Consumer, TopicPartition, TopicSpec
from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.io.serdes import SerdeError
from fluvial.runtime.app import App, clients_for
from fluvial.runtime.config import StreamsConfig
from fluvial.runtime.query import StoreQuery
from fluvial.sql import ast, planner, udfs
from fluvial.sql.catalog import DataSource
from fluvial.sql.compiler import DroppedRecord, RowReader
from fluvial.sql.engine import Engine, Result, constant
from fluvial.sql.errors import SqlAnalysisError, SqlExecutionError, at
from fluvial.sql.formats import KeySerde
from fluvial.sql.parser import parse
from fluvial.sql.planner import QueryPlan, plan_transient
from fluvial.sql.runner import DEFAULT_ON_ERROR

log = logging.getLogger(__name__)

READY_WAIT_S = 10.0  # how long a statement that (re)starts the App waits for its tasks


@dataclass(frozen=True)
class Executed:
    """One statement's result and the command id ksqlDB's REST API reports for it."""

    statement: ast.Statement
    result: Result
    command_id: str
    sequence: int


@dataclass(frozen=True)
class PullResult:
    query_id: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type)
    rows: list[list[Any]]


class SqlService:
    def __init__(self, *, broker: Any = None, properties: dict[str, Any] | None = None,
                 functions: udfs.FunctionRegistry | None = None, **settings: Any) -> None:
        """``functions``: the Python functions its SQL may call; ``properties`` are
        ksqlDB's (``ksql.schema.registry.url`` for AVRO, ...); ``settings`` are ``App``'s
        (``application_id``, ``bootstrap_servers``, ...)."""
        settings.setdefault("application_id", "fluvial-sql-server")
        settings.setdefault("on_error", DEFAULT_ON_ERROR)
        self._settings = settings
        self.application_id = str(settings["application_id"])
        self._broker = broker
        self.clients = clients_for(StreamsConfig.create(**settings), broker)
        self._producer = self.clients.producer({})
        self.engine = Engine(on_insert=self._insert, properties=properties,
                             functions=functions)
        self.app: App | None = None
        self.commands: dict[str, str] = {}  # command id -> status message
        self.push_queries: dict[str, PushQuery] = {}  # query id -> the running push query
        self._lock = threading.Lock()
        self._pull_count = 0

    def _insert(self, topic: str, key: bytes | None, value: bytes | None,
                timestamp: int) -> None:
        self._producer.produce(topic, key, value, timestamp)
        self._producer.flush(30.0)

    # -- statements -------------------------------------------------------------------------

    def execute(self, text: str) -> list[Executed]:
        """Run each statement of ``text``; the first failure raises (earlier ones stand).
        Queries (SELECT) are refused here, as ksqlDB's /ksql endpoint does."""
        with self._lock:
            done: list[Executed] = []
            statements = parse(text)
            for statement, own_text in zip(statements, _texts(text, statements), strict=True):
                if isinstance(statement, ast.Query):
                    raise SqlExecutionError(at(statement.pos, "The following statement types "
                                               "should be issued to the websocket endpoint "
                                               "'/query': SELECT"))
                queries_before = set(self.engine.queries)
                result = self.engine.run(statement, own_text)
                self._create_topics()
                if set(self.engine.queries) != queries_before:
                    self._restart()
                command_id = _command_id(statement)
                self.commands[command_id] = result.message
                done.append(Executed(statement, result, command_id, len(self.commands) - 1))
            return done

    def _create_topics(self) -> None:
        topics = {s.topic: s.partitions for s in self.engine.sources.values()}
        self.clients.admin().create_topics([TopicSpec(t, n) for t, n in sorted(topics.items())])

    def _restart(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None
        if self.engine.queries:
            self.app = App(self.engine.topology(), broker=self._broker,
                           **self._settings).start()
            _wait_for_tasks(self.app, READY_WAIT_S)

    # -- pull queries -----------------------------------------------------------------------

    def pull(self, query: ast.Query) -> PullResult:
        """``SELECT ... FROM table WHERE key = literal``, read from the state store of the
        aggregating query that writes the table."""
        source = self.engine.source(query.source, query.source_pos)
        persistent = self.engine.queries.get(source.query_id or "")
        aggregation = persistent.plan.aggregation if persistent else None
        if source.kind != "TABLE" or persistent is None or aggregation is None \
                or source.window is not None:
            raise SqlExecutionError(at(query.pos, f"Pull queries are supported on tables made "
                                                  f"by CREATE TABLE AS SELECT ... GROUP BY "
                                                  f"(not windowed); {source.name} is not one"))
        if query.joins or query.group_by or query.window or query.having:
            raise SqlAnalysisError(at(query.pos, "Pull queries take only SELECT, FROM, WHERE "
                                                 "key = value and LIMIT"))
        names = _selected(query, source)
        with udfs.using(self.engine.functions):
            key = _key_of(query.where, source)
        app = self.app
        assert app is not None  # a persistent query runs, so the app does
        store = app.query(f"{persistent.id}-Aggregate-Aggregate-Materialize")
        partition = _partition_of(key, persistent.plan, store)
        view = store.local_views().get(partition)
        if view is None:
            raise SqlExecutionError(at(query.pos, f"Partition {partition} of {source.name} is "
                                                  f"not running on this server right now (its "
                                                  f"query is starting or restoring); retry"))
        state = view.get(key)
        rows = []
        if state is not None:
            value = persistent.plan.projection.value_of(
                planner.aggregate_row(key, state, aggregation.calls, None))
            full = dict(zip((c.name for c in source.schema.key), key, strict=True)) | value
            rows.append([full[name] for name in names])
        types = {c.name: str(c.type) for c in source.schema.columns}
        with self._lock:
            self._pull_count += 1
            query_id = f"query_{self._pull_count}"
        return PullResult(query_id, tuple((n, types[n]) for n in names), rows)

    # -- push queries -----------------------------------------------------------------------

    def push(self, query: ast.Query, text: str, properties: dict[str, Any]) -> PushQuery:
        """``SELECT ... FROM stream [WHERE ...] EMIT CHANGES [LIMIT n]``: a consumer of the
        stream's topic (from its end, or its start with ``auto.offset.reset=earliest``),
        running until ``end``."""
        source = self.engine.source(query.source, query.source_pos, "Source ")
        with udfs.using(self.engine.functions):
            plan = plan_transient(query, source)
        earliest = str(properties.get("auto.offset.reset", "latest")).lower() == "earliest"
        consumer = self.clients.consumer(None, {})
        try:
            start = []
            for partition in range(source.partitions):
                tp = TopicPartition(source.topic, partition)
                low, high = consumer.watermarks(tp, 30.0)
                start.append((tp, low if earliest else high))
            consumer.assign(start)
        except BaseException:
            consumer.close()
            raise
        with self._lock:
            self._pull_count += 1
            push = PushQuery(f"transient_{source.name}_{self._pull_count}", text, plan,
                             consumer, query.limit)
            self.push_queries[push.query_id] = push
        return push

    def end(self, push: PushQuery) -> None:
        """Stop a push query (its client left, or it reached LIMIT) and close its consumer."""
        with self._lock:
            self.push_queries.pop(push.query_id, None)
        push.close()

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None
        self._producer.flush(30.0)


def _wait_for_tasks(app: App, timeout_s: float) -> None:
    """Wait (up to ``timeout_s``) until the app runs tasks with their state restored, so a
    pull query right after a CREATE TABLE AS SELECT finds its store; an instance that gets
    no partitions (others hold them all) just waits the time out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and app.error is None:
        thread = app.stream_thread
        if thread is not None and thread.tasks and not thread.restoring:
            return
        time.sleep(0.05)


def _partition_of(key: tuple[Any, ...], plan: QueryPlan, store: StoreQuery) -> int:
    """The partition of the aggregate's task that holds ``key``. Grouped by the source's own
    key, records are not repartitioned: the key is where its producer put it (murmur2 of its
    bytes in the source's key format, Kafka's default partitioner). Otherwise fluvial's
    repartition topic put it by the store's key serde, which ``store.partition_of`` hashes."""
    assert plan.aggregation is not None
    if plan.aggregation.by_source_key and plan.join is None:
        data = KeySerde(plan.source.formats.key, plan.source.schema.key).serialize(key)
        if data is None:
            raise SqlExecutionError(f"a pull query's key may not be NULL: {key}")
        return partition_for_key(data, plan.source.partitions)
    return store.partition_of(key)


def _selected(query: ast.Query, source: DataSource) -> list[str]:
    """The column names a pull query asks for: ``*`` or plain columns of the table."""
    names: list[str] = []
    for item in query.items:
        if item.expr is None:
            names += [c.name for c in source.schema.columns]
        elif isinstance(item.expr, ast.ColumnRef) and source.schema.find(item.expr.name):
            names.append(item.expr.name)
        else:
            raise SqlAnalysisError(at(item.pos, "Pull queries select * or columns of the "
                                                "table, not expressions"))
    return names


def _key_of(where: ast.Expr | None, source: DataSource) -> tuple[Any, ...]:
    key_columns = source.schema.key
    if isinstance(where, ast.Comparison) and where.op == "=" and len(key_columns) == 1:
        column, value = where.left, where.right
        if isinstance(value, ast.ColumnRef):
            column, value = value, column
        if isinstance(column, ast.ColumnRef) and column.name == key_columns[0].name:
            return (constant(value, key_columns[0].type),)
    raise SqlAnalysisError(at(getattr(where, "pos", None),
                              f"Pull queries on {source.name} need WHERE "
                              f"{key_columns[0].name} = <value> (one key column)"))


def _texts(text: str, statements: list[ast.Statement]) -> list[str]:
    """Each statement's own text (up to where the next begins), from their positions."""
    line_starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    starts = []
    for statement in statements:
        line, column = getattr(statement, "pos", (0, 0))
        if line < 1:
            return [text.strip()] * len(statements)  # a position unknown: the whole text
        starts.append(line_starts[line - 1] + column - 1)
    ends = [*starts[1:], len(text)]
    return [text[start:end].strip() for start, end in zip(starts, ends, strict=True)]


def _command_id(statement: ast.Statement) -> str:
    """ksqlDB's ``<type>/<name>/<action>`` command id."""
    name = getattr(statement, "name", None) or getattr(statement, "target", None) or ""
    kind = str(getattr(statement, "kind", "")).lower() or "stream"
    action = {"Drop": "drop", "CreateSource": "create", "CreateAs": "create"}.get(
        type(statement).__name__, "execute")
    return f"{kind}/`{name}`/{action}"


class PushQuery:
    """A running push query: ``poll()`` gives the rows that arrived, until ``done``."""

    def __init__(self, query_id: str, statement: str, plan: QueryPlan, consumer: Consumer,
                 limit: int | None) -> None:
        self.query_id = query_id
        self.statement = statement
        self.columns = tuple((c.name, str(c.type)) for c in plan.projection.schema.columns)
        self._plan = plan
        self._reader = RowReader(plan.source)
        self._consumer = consumer
        self._left = limit

    @property
    def done(self) -> bool:
        """True once LIMIT rows have been given."""
        return self._left is not None and self._left <= 0

    def poll(self, timeout: float) -> list[list[Any]]:
        """The rows of the records that arrived within ``timeout`` (none past LIMIT); records
        the source cannot read are skipped, as the persistent queries skip them."""
        rows: list[list[Any]] = []
        where, projection = self._plan.where, self._plan.projection
        for message in self._consumer.poll_batch(500, timeout):
            if self.done:
                break
            try:
                _, row, _ = self._reader.decode(message.key(), message.value(),
                                                message.timestamp()[1])
            except (DroppedRecord, SerdeError) as exc:
                log.warning("push query %s skips the record at %s[%d]@%d: %s", self.query_id,
                            message.topic(), message.partition(), message.offset(), exc)
                continue
            if row is None or (where is not None and where(row) is not True):
                continue
            rows.append(list(projection.value_of(row).values()))
            if self._left is not None:
                self._left -= 1
        return rows

    def close(self) -> None:
        self._consumer.close()
