"""ksqlDB's REST API over fluvial's SQL engine: ``POST /ksql``, ``POST /query``,
``POST /query-stream`` (pull and push queries), ``GET /info``, ``/healthcheck``, ``/status``.

Bodies and content types are ksqlDB's (``application/vnd.ksql.v1+json``; plain
``application/json`` is accepted too), so its clients work unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fluvial.errors import FluvialError
from fluvial.runtime.query import LOCAL_HEADER
from fluvial.sql import ast
from fluvial.sql.catalog import DataSource
from fluvial.sql.errors import SqlError
from fluvial.sql.parser import parse
from fluvial.sql.service import Executed, PullResult, PushQuery, SqlService

KSQL_JSON = "application/vnd.ksql.v1+json"
DELIMITED = "application/vnd.ksqlapi.delimited.v1"
VERSION = "7.0.0-fluvial"
STATEMENT_ERROR = 40001
BAD_REQUEST = 40000
SERVER_ERROR = 50000
POLL_S = 0.5  # how long a push query waits for rows before looking again

log = logging.getLogger(__name__)


def make_app(api: _Api) -> web.Application:
    app = web.Application()
    app.add_routes([web.post("/ksql", api.ksql), web.post("/query", api.query),
                    web.post("/query-stream", api.query_stream), web.get("/info", api.info),
                    web.get("/healthcheck", api.healthcheck), web.get("/status", api.status)])
    return app


class _Api:
    def __init__(self, service: SqlService) -> None:
        self.service = service
        self.stopping = False  # set when the server stops: push queries end

    async def ksql(self, request: web.Request) -> web.Response:
        body = await _body(request)
        text = body["ksql"]
        try:
            executed = await asyncio.get_running_loop().run_in_executor(
                None, self.service.execute, text)
        except FluvialError as exc:
            return _error(400, STATEMENT_ERROR, str(exc), text)
        return _ksql_json([self._entity(e) for e in executed])

    def _entity(self, executed: Executed) -> dict[str, Any]:
        statement, result = executed.statement, executed.result
        base: dict[str, Any] = {"statementText": result.statement, "warnings": []}
        engine = self.service.engine
        if isinstance(statement, ast.Show) and statement.what == "QUERIES":
            pushes = [{"id": q.query_id, "queryString": q.statement, "sinks": [],
                       "queryType": "PUSH", "state": "RUNNING"}
                      for q in list(self.service.push_queries.values())]
            return {"@type": "queries", **base,
                    "queries": [_query_info(q.id, q.statement, q.sink)
                                for q in list(engine.queries.values())] + pushes}
        if isinstance(statement, ast.Show) and statement.what == "FUNCTIONS":
            return {"@type": "function_names", **base,
                    "functions": [{"name": name, "type": kind, "category": category}
                                  for name, kind, category in result.rows]}
        if isinstance(statement, ast.DescribeFunction):
            kind, _where, about, rows = engine.function_info(statement.name)
            return {"@type": "describe_function", **base, "name": statement.name,
                    "description": about, "type": kind,
                    "functions": [{"argumentTypes": args.split(", ") if args else [],
                                   "returnType": returns, "description": about, "path": path}
                                  for args, returns, path in rows]}
        if isinstance(statement, ast.Show):
            kind = statement.what[:-1]
            sources = list(engine.sources.values())  # a snapshot: commands apply meanwhile
            listed = [_listed(s) for s in sorted(sources, key=lambda s: s.name)
                      if s.kind == kind]
            what = statement.what.lower()
            return {"@type": what, what: listed, **base}
        if isinstance(statement, ast.Describe):
            return {"@type": "sourceDescription", **base,
                    "sourceDescription": self._description(engine.source(statement.name),
                                                           statement.extended)}
        return {"@type": "currentStatus", **base, "commandId": executed.command_id,
                "commandStatus": {"status": "SUCCESS", "message": result.message},
                "commandSequenceNumber": executed.sequence}

    def _description(self, source: DataSource, extended: bool) -> dict[str, Any]:
        queries = list(self.service.engine.queries.values())  # commands apply meanwhile
        fields = [{"name": c.name, "schema": {"type": str(c.type), "fields": None,
                                               "memberSchema": None},
                   **({"type": "KEY"} if c in source.schema.key else {})}
                  for c in source.schema.columns]
        return {"name": source.name, "type": source.kind, "topic": source.topic,
                "keyFormat": source.formats.key, "valueFormat": source.formats.value,
                "windowType": source.window.kind if source.window else None,
                "partitions": source.partitions, "replication": 1, "fields": fields,
                "statement": source.statement, "extended": extended, "timestamp": "",
                "readQueries": [_query_info(q.id, q.statement, q.sink) for q in queries
                                if source.name in q.plan.reads],
                "writeQueries": [_query_info(q.id, q.statement, q.sink) for q in queries
                                 if q.sink == source.name],
                "statistics": "", "errorStats": ""}

    async def query(self, request: web.Request) -> web.StreamResponse:
        """ksqlDB's /query: a JSON array, a header then ``{"row": {"columns": [...]}}``; a
        push query's array streams (chunked) until LIMIT or the client goes."""
        body = await _body(request, "ksql", "streamsProperties")
        answer = await self._start(body["ksql"], body.get("streamsProperties") or {},
                                   local=LOCAL_HEADER in request.headers)
        if isinstance(answer, web.Response):
            return answer
        schema = ", ".join(f"`{name}` {type_}" for name, type_ in answer.columns)
        header = {"header": {"queryId": answer.query_id, "schema": schema}}
        if isinstance(answer, PullResult):
            return _ksql_json([header, *({"row": {"columns": r}} for r in answer.rows)])
        return await self._stream(answer, request, _Format(
            KSQL_JSON, "[" + _dumps(header),
            lambda row: ",\n" + _dumps({"row": {"columns": row}}),
            ",\n" + _dumps({"finalMessage": "Limit Reached"}) + "]\n",
            lambda error: ",\n" + _dumps({"errorMessage": error}) + "]\n"))

    async def query_stream(self, request: web.Request) -> web.StreamResponse:
        """ksqlDB's /query-stream (HTTP/1.1 chunked): a metadata object, then each row as a
        JSON array; newline-delimited, or one JSON array when ``application/json`` is asked."""
        body = await _body(request, "sql", "properties")
        answer = await self._start(body["sql"], body.get("properties") or {})
        if isinstance(answer, web.Response):
            return answer
        header = {"queryId": answer.query_id, "columnNames": [n for n, _ in answer.columns],
                  "columnTypes": [t for _, t in answer.columns]}
        as_array = "application/json" in request.headers.get("Accept", "")
        if isinstance(answer, PullResult):
            if as_array:
                return web.Response(text=_dumps([header, *answer.rows]),
                                    content_type="application/json")
            return web.Response(text="".join(_dumps(line) + "\n"
                                             for line in [header, *answer.rows]),
                                content_type=DELIMITED)
        if as_array:
            return await self._stream(answer, request, _Format(
                "application/json", "[" + _dumps(header), lambda row: ",\n" + _dumps(row),
                "]\n", lambda error: ",\n" + _dumps(error) + "]\n"))
        return await self._stream(answer, request, _Format(
            DELIMITED, _dumps(header) + "\n", lambda row: _dumps(row) + "\n", "",
            lambda error: _dumps(error) + "\n"))

    async def _start(self, text: str, properties: dict[str, Any],
                     local: bool = False) -> PullResult | PushQuery | web.Response:
        """The query of ``text`` answered (pull) or started (push), or the error to send;
        ``local``: a pull another server forwarded, answered from this server's tasks only."""
        loop = asyncio.get_running_loop()
        try:
            statements = parse(text)
            if len(statements) != 1 or not isinstance(statements[0], ast.Query):
                return _error(400, STATEMENT_ERROR, "this endpoint takes one SELECT "
                                                    "statement", text)
            query = statements[0]
            if query.emit == "CHANGES":
                return await loop.run_in_executor(None, self.service.push, query, text.strip(),
                                                  properties)
            return await loop.run_in_executor(None, self.service.pull, query, text, local)
        except (SqlError, FluvialError, KeyError) as exc:
            return _error(400, STATEMENT_ERROR, str(exc), text)

    async def _stream(self, push: PushQuery, request: web.Request,
                      form: _Format) -> web.StreamResponse:
        """Write the push query's rows as they arrive until LIMIT, a failure (an error entry
        ends the stream), the client leaving or the server stopping."""
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(headers={"Content-Type": form.content_type})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await response.write(form.header.encode())
            while not push.done:
                if self.stopping or request.transport is None \
                        or request.transport.is_closing():
                    return response
                try:
                    rows = await loop.run_in_executor(None, push.poll, POLL_S)
                except Exception as exc:  # any failure: the client is told, then the stream ends
                    log.warning("push query %s failed: %s", push.query_id, exc)
                    await response.write(form.error(
                        {"@type": "generic_error", "error_code": SERVER_ERROR,
                         "message": f"push query {push.query_id} failed: {exc}"}).encode())
                    await response.write_eof()
                    return response
                for row in rows:
                    await response.write(form.row(row).encode())
            await response.write(form.limit.encode())
            await response.write_eof()
        except ConnectionError:
            pass  # the client left mid-write
        finally:
            await loop.run_in_executor(None, self.service.end, push)
        return response

    async def info(self, _request: web.Request) -> web.Response:
        return _ksql_json({"KsqlServerInfo": {
            "version": VERSION, "kafkaClusterId": "", "serverStatus": "RUNNING",
            "ksqlServiceId": self.service.application_id}})

    async def healthcheck(self, _request: web.Request) -> web.Response:
        app = self.service.app
        healthy = app is None or app.error is None
        return _ksql_json({"isHealthy": healthy, "details": {
            "metastore": {"isHealthy": True}, "kafka": {"isHealthy": healthy}}},
            status=200 if healthy else 503)

    async def status(self, _request: web.Request) -> web.Response:
        return _ksql_json({"commandStatuses": {
            command: "SUCCESS" for command in list(self.service.commands)}})


async def _body(request: web.Request, statement: str = "ksql",
                properties: str = "streamsProperties") -> dict[str, Any]:
    """The request's JSON object, with the statement under ``statement`` (/query-stream also
    takes it as ``ksql``) and an optional ``properties`` object; anything else answers
    ksqlDB's bad-request error."""
    try:
        body = await request.json(loads=json.loads)
    except ValueError as exc:
        raise _http_error(f"Malformed JSON in the request body: {exc}") from None
    if isinstance(body, dict) and statement not in body and "ksql" in body:
        body[statement] = body["ksql"]
    if not isinstance(body, dict) or not isinstance(body.get(statement), str):
        raise _http_error(f"The request body must be a JSON object with a \"{statement}\" "
                          f"string")
    if not isinstance(body.get(properties) or {}, dict):
        raise _http_error(f"\"{properties}\" must be a JSON object of property names to "
                          f"values")
    return body


@dataclass(frozen=True)
class _Format:
    """How one endpoint writes a push query: content type, what opens it, each row, what
    ends it at LIMIT, and the error entry that ends it on a failure."""

    content_type: str
    header: str
    row: Callable[[list[Any]], str]
    limit: str
    error: Callable[[dict[str, Any]], str]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _http_error(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"@type": "generic_error",
                                               "error_code": BAD_REQUEST, "message": message}),
                              content_type=KSQL_JSON)


def _error(status: int, code: int, message: str, statement: str) -> web.Response:
    return _ksql_json({"@type": "statement_error", "error_code": code, "message": message,
                       "statementText": statement, "entities": []}, status=status)


def _ksql_json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, default=str), status=status,
                        content_type=KSQL_JSON)


def _listed(source: DataSource) -> dict[str, Any]:
    return {"type": source.kind, "name": source.name, "topic": source.topic,
            "keyFormat": source.formats.key, "valueFormat": source.formats.value,
            "isWindowed": source.window is not None}


def _query_info(query_id: str, statement: str, sink: str) -> dict[str, Any]:
    return {"id": query_id, "queryString": statement, "sinks": [sink],
            "queryType": "PERSISTENT", "state": "RUNNING"}


class KsqlServer:
    """The REST API served from a thread of its own (the caller keeps the main thread)."""

    def __init__(self, service: SqlService, host: str = "127.0.0.1", port: int = 8088) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._api = _Api(service)
        self._runner = web.AppRunner(make_app(self._api), access_log=None)
        self._thread: threading.Thread | None = None

    def start(self) -> KsqlServer:
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]  # the one the OS picked, when 0 was asked for
        self.service.serve_at(self.host, self.port)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fluvial-ksql", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._api.stopping = True
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self.service.close()
