"""ksqlDB's REST API over fluvial's SQL engine: ``POST /ksql``, ``POST /query``,
``POST /query-stream`` (pull queries), ``GET /info``, ``/healthcheck``, ``/status``.

Bodies and content types are ksqlDB's (``application/vnd.ksql.v1+json``; plain
``application/json`` is accepted too), so its clients work unchanged.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import web

from fluvial.errors import FluvialError
from fluvial.sql import ast
from fluvial.sql.catalog import DataSource
from fluvial.sql.errors import SqlError
from fluvial.sql.parser import parse
from fluvial.sql.service import Executed, PullResult, SqlService

KSQL_JSON = "application/vnd.ksql.v1+json"
DELIMITED = "application/vnd.ksqlapi.delimited.v1"
VERSION = "7.0.0-fluvial"
STATEMENT_ERROR = 40001
BAD_REQUEST = 40000


def make_app(service: SqlService) -> web.Application:
    api = _Api(service)
    app = web.Application()
    app.add_routes([web.post("/ksql", api.ksql), web.post("/query", api.query),
                    web.post("/query-stream", api.query_stream), web.get("/info", api.info),
                    web.get("/healthcheck", api.healthcheck), web.get("/status", api.status)])
    return app


class _Api:
    def __init__(self, service: SqlService) -> None:
        self.service = service

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
            return {"@type": "queries", **base,
                    "queries": [_query_info(q.id, q.statement, q.sink)
                                for q in engine.queries.values()]}
        if isinstance(statement, ast.Show):
            kind = statement.what[:-1]
            listed = [_listed(s) for s in sorted(engine.sources.values(), key=lambda s: s.name)
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
        queries = self.service.engine.queries.values()
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

    async def query(self, request: web.Request) -> web.Response:
        """ksqlDB's /query: a JSON array, a header then ``{"row": {"columns": [...]}}``."""
        body = await _body(request)
        text = body["ksql"]
        pulled = await self._pull(text)
        if isinstance(pulled, web.Response):
            return pulled
        schema = ", ".join(f"`{name}` {type_}" for name, type_ in pulled.columns)
        entries: list[Any] = [{"header": {"queryId": pulled.query_id, "schema": schema}}]
        entries += [{"row": {"columns": row}} for row in pulled.rows]
        return _ksql_json(entries)

    async def query_stream(self, request: web.Request) -> web.StreamResponse:
        """ksqlDB's /query-stream (HTTP/1.1 chunked): a metadata object, then each row as a
        JSON array; newline-delimited, or one JSON array when ``application/json`` is asked."""
        body = await _body(request)
        text = body["sql"] if "sql" in body else body.get("ksql", "")
        pulled = await self._pull(text)
        if isinstance(pulled, web.Response):
            return pulled
        header = {"queryId": pulled.query_id, "columnNames": [n for n, _ in pulled.columns],
                  "columnTypes": [t for _, t in pulled.columns]}
        if "application/json" in request.headers.get("Accept", ""):
            return web.Response(text=json.dumps([header, *pulled.rows], default=str),
                                content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": DELIMITED})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for line in [header, *pulled.rows]:
            await response.write((json.dumps(line, default=str) + "\n").encode())
        await response.write_eof()
        return response

    async def _pull(self, text: str) -> PullResult | web.Response:
        try:
            statements = parse(text)
            if len(statements) != 1 or not isinstance(statements[0], ast.Query):
                return _error(400, STATEMENT_ERROR, "/query takes one SELECT statement",
                              text)
            query = statements[0]
            if query.emit is not None:
                return _error(400, STATEMENT_ERROR, "push queries (EMIT CHANGES) are not "
                                                   "supported by fluvial sql-server yet", text)
            return await asyncio.get_running_loop().run_in_executor(
                None, self.service.pull, query)
        except (SqlError, FluvialError, KeyError) as exc:
            return _error(400, STATEMENT_ERROR, str(exc), text)

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
            command: "SUCCESS" for command in self.service.commands}})


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; anything else answers ksqlDB's bad-request error."""
    try:
        body = await request.json(loads=json.loads)
    except ValueError as exc:
        raise _http_error(f"Malformed JSON in the request body: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("ksql", body.get("sql")), str):
        raise _http_error("The request body must be a JSON object with a \"ksql\" string")
    return body


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
        self._runner = web.AppRunner(make_app(service), access_log=None)
        self._thread: threading.Thread | None = None

    def start(self) -> KsqlServer:
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]  # the one the OS picked, when 0 was asked for
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
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self.service.close()
