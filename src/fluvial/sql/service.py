"""The SQL engine as a long-lived service: statements arrive one request at a time, persistent
queries run in one fluvial ``App``, pull queries read that app's state stores.

The catalog lives in the command topic (``fluvial.sql.commands``): a statement that changes it
is validated on a copy of the catalog, written to the topic, and applied by every server of the
service as it reads the topic, this one too. The engine compiles every running query into one
topology, so a change to the queries restarts the App on the new topology (same application
id on every server: Kafka splits the partitions between them; committed offsets and state
stores carry over; only a new query's processors start from nothing).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from fluvial.errors import FluvialError
from fluvial.io.client import Consumer, TopicPartition, TopicSpec
from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.io.serdes import SerdeError
from fluvial.runtime.app import App, clients_for
from fluvial.runtime.config import StreamsConfig
from fluvial.runtime.query import LOCAL_HEADER, StoreQuery
from fluvial.sql import ast, planner, udfs
from fluvial.sql.catalog import DataSource
from fluvial.sql.commands import Command, CommandTopic, command_topic
from fluvial.sql.compiler import DroppedRecord, RowReader
from fluvial.sql.engine import Engine, PersistentQuery, Result, constant
from fluvial.sql.errors import SqlAnalysisError, SqlExecutionError, at
from fluvial.sql.formats import KeySerde
from fluvial.sql.parser import parse
from fluvial.sql.planner import QueryPlan, plan_transient
from fluvial.sql.runner import DEFAULT_ON_ERROR

log = logging.getLogger(__name__)

READY_WAIT_S = 10.0  # how long a statement that (re)starts the App waits for its tasks
COMMAND_WAIT_S = 60.0  # how long a statement waits for the command topic (written, applied)
FORWARD_TIMEOUT_S = 10.0  # how long a pull query forwarded to the key's server may take
#: the statements that change the catalog: written to the command topic, applied from it
COMMANDS = (ast.CreateSource, ast.CreateAs, ast.InsertSelect, ast.Drop, ast.Terminate)


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
        (``application_id``, ``bootstrap_servers``, ...). The application id is ksqlDB's
        service id: servers that share it share the catalog (the command topic, read here
        before this returns) and the queries' work."""
        settings.setdefault("application_id", "fluvial-sql-server")
        settings.setdefault("on_error", DEFAULT_ON_ERROR)
        self._settings = settings
        self.application_id = str(settings["application_id"])
        self._broker = broker
        config = StreamsConfig.create(**settings)
        self.clients = clients_for(config, broker)
        self._producer = self.clients.producer({})
        self.engine = Engine(on_insert=self._insert, properties=properties,
                             functions=functions)
        self.app: App | None = None
        self._app_queries: dict[str, PersistentQuery] = {}  # what the running App runs
        self.address: str | None = None  # host:port of this server's REST API, once it serves
        self.commands: dict[str, str] = {}  # command id -> status message
        self.push_queries: dict[str, PushQuery] = {}  # query id -> the running push query
        self._lock = threading.RLock()  # the catalog and the App
        self._statements = threading.Lock()  # one statement request at a time
        self._pull_count = 0
        self.command_topic = CommandTopic(self.clients, command_topic(self.application_id),
                                          config.replication_factor, self._apply, self._settle)
        try:
            self.command_topic.start(COMMAND_WAIT_S)
        except BaseException:
            self.close()
            raise

    def _insert(self, topic: str, key: bytes | None, value: bytes | None,
                timestamp: int) -> None:
        self._producer.produce(topic, key, value, timestamp)
        self._producer.flush(30.0)

    # -- statements -------------------------------------------------------------------------

    def execute(self, text: str) -> list[Executed]:
        """Run each statement of ``text``; the first failure raises (earlier ones stand).
        Queries (SELECT) are refused here, as ksqlDB's /ksql endpoint does. A statement that
        changes the catalog is checked here, then written to the command topic and applied
        from it; its sequence number is its offset there (-1 for the others)."""
        with self._statements:
            self.command_topic.catch_up(COMMAND_WAIT_S)
            done: list[Executed] = []
            statements = parse(text)
            for statement, own_text in zip(statements, statement_texts(text, statements),
                                           strict=True):
                if isinstance(statement, ast.Query):
                    raise SqlExecutionError(at(statement.pos, "The following statement types "
                                               "should be issued to the websocket endpoint "
                                               "'/query': SELECT"))
                command_id = _command_id(statement)
                if isinstance(statement, COMMANDS):
                    with self._lock:
                        self.engine.sandbox().run(statement, own_text)  # fails: not written
                    sequence, outcome = self.command_topic.submit(own_text, command_id,
                                                                  COMMAND_WAIT_S)
                    if isinstance(outcome, Exception):
                        raise outcome
                    result = outcome
                else:
                    with self._lock:
                        result = self.engine.run(statement, own_text)
                    sequence = -1
                done.append(Executed(statement, result, command_id, sequence))
            return done

    def _apply(self, offset: int, command: Command) -> Result:
        """A command read from the topic, applied to the catalog (any server wrote it)."""
        statements = parse(command.statement)
        if len(statements) != 1 or not isinstance(statements[0], COMMANDS):
            raise SqlExecutionError(f"not one CREATE, DROP, INSERT INTO ... SELECT or TERMINATE "
                                    f"statement: {command.statement!r}")
        with self._lock:
            result = self.engine.run(statements[0], command.statement)
            self.commands[_command_id(statements[0])] = result.message
            self._create_topics()
        log.debug("%s offset %d applied: %s", self.command_topic.topic, offset, result.message)
        return result

    def _create_topics(self) -> None:
        topics = {s.topic: s.partitions for s in self.engine.sources.values()}
        self.clients.admin().create_topics([TopicSpec(t, n) for t, n in sorted(topics.items())])

    def _settle(self) -> None:
        """After a batch of commands: restart the App when its queries changed."""
        with self._lock:
            queries = self.engine.queries
            same = queries.keys() == self._app_queries.keys() and \
                all(queries[q] is self._app_queries[q] for q in queries)
            if same and (self.app is None) == (not queries):
                return  # the App runs these very queries (or none runs, as none are)
            if self.app is not None:
                self.app.close()
                self.app = None
            self._app_queries = dict(self.engine.queries)
            if self.engine.queries:
                self.app = App(self.engine.topology(), broker=self._broker,
                               **self._settings).start()
                if self.address is not None:
                    self.app.serve_queries(self.address, None)
                _wait_for_tasks(self.app, READY_WAIT_S)

    def serve_at(self, host: str, port: int) -> None:
        """Where this server's REST API answers: the App publishes it in its instance
        directory, so the other servers forward pull queries for keys held here."""
        if host in ("", "0.0.0.0", "::"):
            host = socket.getfqdn()
        with self._lock:
            self.address = f"{host}:{port}"
            if self.app is not None:
                self.app.serve_queries(self.address, None)

    # -- pull queries -----------------------------------------------------------------------

    def pull(self, query: ast.Query, text: str = "", local: bool = False) -> PullResult:
        """``SELECT ... FROM table WHERE key = literal``, read from the state store of the
        aggregating query that writes the table: here, when this server runs the key's
        partition, else forwarded to the server that does (``local``: never forwarded)."""
        self.command_topic.catch_up(COMMAND_WAIT_S)
        with self._lock:
            source = self.engine.source(query.source, query.source_pos)
            persistent = self.engine.queries.get(source.query_id or "")
            aggregation = persistent.plan.aggregation if persistent else None
            if source.kind != "TABLE" or persistent is None or aggregation is None \
                    or source.window is not None:
                raise SqlExecutionError(at(query.pos, f"Pull queries are supported on tables "
                                                      f"made by CREATE TABLE AS SELECT ... "
                                                      f"GROUP BY (not windowed); {source.name} "
                                                      f"is not one"))
            if query.joins or query.group_by or query.window or query.having:
                raise SqlAnalysisError(at(query.pos, "Pull queries take only SELECT, FROM, "
                                                     "WHERE key = value and LIMIT"))
            names = _selected(query, source)
            with udfs.using(self.engine.functions):
                key = _key_of(query.where, source)
            app = self.app
            if app is None:
                raise SqlExecutionError(at(query.pos, f"The queries of this server are "
                                                      f"starting; {source.name} answers once "
                                                      f"they run; retry"))
            store = app.query(f"{persistent.id}-Aggregate-Aggregate-Materialize")
            partition = _partition_of(key, persistent.plan, store)
            view = store.local_views().get(partition)
            types = {c.name: str(c.type) for c in source.schema.columns}
            columns = tuple((n, types[n]) for n in names)
            self._pull_count += 1
            query_id = f"query_{self._pull_count}"
            if view is not None:
                state = view.get(key)
                rows = []
                if state is not None:
                    value = persistent.plan.projection.value_of(
                        planner.aggregate_row(key, state, aggregation.calls, None))
                    full = dict(zip((c.name for c in source.schema.key), key, strict=True)) \
                        | value
                    rows.append([full[name] for name in names])
                return PullResult(query_id, columns, rows)
        owner = None if local or self.address is None else store.owner_address(partition)
        if owner is None or owner == self.address:
            raise SqlExecutionError(at(query.pos, f"Partition {partition} of {source.name} is "
                                                  f"not running on this server or any other "
                                                  f"known right now (its query is starting, "
                                                  f"restoring or moving); retry"))
        return PullResult(query_id, columns, _forward(owner, text))

    # -- push queries -----------------------------------------------------------------------

    def push(self, query: ast.Query, text: str, properties: dict[str, Any]) -> PushQuery:
        """``SELECT ... FROM stream [WHERE ...] EMIT CHANGES [LIMIT n]``: a consumer of the
        stream's topic (from its end, or its start with ``auto.offset.reset=earliest``),
        running until ``end``."""
        self.command_topic.catch_up(COMMAND_WAIT_S)
        with self._lock:
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
        """Stop following the command topic, then the queries (committing what they did)."""
        self.command_topic.close()
        with self._lock:
            if self.app is not None:
                self.app.close()
                self.app = None
        self._producer.flush(30.0)


def _forward(address: str, text: str) -> list[list[Any]]:
    """The rows of a pull query answered by the server at ``address`` from its own tasks
    (``LOCAL_HEADER``: it never forwards again)."""
    request = urllib.request.Request(
        f"http://{address}/query", data=json.dumps({"ksql": text}).encode(),
        headers={"Content-Type": "application/json", LOCAL_HEADER: "1"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise FluvialError(f"pull query forwarded to {address}: {message}") from None
    except OSError as exc:
        raise FluvialError(f"pull query forwarded to {address}: no answer ({exc}); "
                           f"retry") from None
    return [entry["row"]["columns"] for entry in answer[1:]]


def _wait_for_tasks(app: App, timeout_s: float) -> None:
    """Wait (up to ``timeout_s``) until the app's group has assigned it its partitions and
    their tasks run with state restored, so a pull query right after a CREATE TABLE AS SELECT
    finds its store; an instance assigned nothing (the others hold it all) is ready too."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and app.error is None:
        thread = app.stream_thread
        if thread is not None and thread.rebalances and not thread.restoring \
                and (thread.tasks or not thread.assignment):
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


def statement_texts(text: str, statements: list[ast.Statement]) -> list[str]:
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
    if isinstance(statement, ast.Terminate):
        return f"terminate/{statement.query_id}/execute"
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
