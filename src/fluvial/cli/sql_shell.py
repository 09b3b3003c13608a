"""``fluvial sql``'s interactive shell: statements typed (or piped in) one at a time, run
in this process on a ``SqlService`` or sent to a ``fluvial sql-server`` over its REST API.

A statement ends with ``;`` (lines before that are one multi-line statement); results print
as aligned tables, a failure as one line (``line L:C: ...``) and the shell goes on; a push
query (``EMIT CHANGES``) prints its rows as they arrive until its LIMIT or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit

from fluvial.cli.sql import format_result
from fluvial.errors import FluvialError
from fluvial.sql import ast
from fluvial.sql.engine import Result
from fluvial.sql.parser import parse
from fluvial.sql.service import SqlService, statement_texts

PROMPT = "fluvial> "
CONTINUATION = "       > "
POLL_S = 0.5  # how long a local push query waits for rows before looking again
HTTP_TIMEOUT_S = 60.0
MIN_WIDTH = 10  # a streamed column's width (its rows come before their widths are known)
HELP = """\
Statements end with ';' and may span lines:
  CREATE STREAM|TABLE ... ; CREATE STREAM|TABLE ... AS SELECT ... ; INSERT INTO ... ;
  DROP ... ; TERMINATE <query id> ; SHOW STREAMS|TABLES|QUERIES|FUNCTIONS ;
  DESCRIBE [EXTENDED] <source> ; DESCRIBE FUNCTION <name> ;
  SELECT ... FROM <table> WHERE <key> = <value> ;       a pull query: the key's row
  SELECT ... FROM <stream> EMIT CHANGES [LIMIT n] ;     a push query: rows as they arrive,
                                                        until LIMIT or Ctrl-C
Shell commands: help, exit, quit (or Ctrl-D). Ctrl-C clears the line being typed."""
_COMMANDS = {"help", "exit", "quit"}
_KEYWORD_TEXT = """
    CREATE STREAM TABLE SOURCE OR REPLACE IF NOT EXISTS AS SELECT FROM WHERE GROUP BY HAVING
    PARTITION WINDOW TUMBLING HOPPING SESSION SIZE ADVANCE RETENTION GRACE PERIOD EMIT
    CHANGES FINAL LIMIT INSERT INTO VALUES DROP DELETE TOPIC TERMINATE ALL SHOW LIST STREAMS
    TABLES QUERIES FUNCTIONS DESCRIBE EXTENDED FUNCTION JOIN LEFT RIGHT FULL OUTER INNER
    WITHIN ON AND IN IS NULL LIKE BETWEEN CASE WHEN THEN ELSE END CAST DISTINCT KEY PRIMARY
    WITH KAFKA_TOPIC KEY_FORMAT VALUE_FORMAT FORMAT PARTITIONS REPLICAS TIMESTAMP
    ROWTIME WINDOWSTART WINDOWEND SECONDS MINUTES HOURS DAYS HELP EXIT QUIT
"""
KEYWORDS = sorted(_KEYWORD_TEXT.split())  # what Tab completes


class PushRows(Protocol):
    """A running push query: its columns, then batches of rows until it ends."""

    columns: list[str]

    def batches(self) -> Iterator[list[list[Any]]]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where statements run: this process (``Local``) or a server (``Remote``)."""

    def statement(self, text: str) -> Result: ...

    def pull(self, text: str) -> Result: ...

    def push(self, text: str) -> PushRows: ...

    def close(self) -> None: ...


class Local:
    """Statements run on a ``SqlService`` in this process; its persistent queries run in its
    ``App`` in the background while the shell lives (and resume from the command topic when
    a shell or server with the same application id starts again)."""

    def __init__(self, service: SqlService) -> None:
        self.service = service

    def statement(self, text: str) -> Result:
        [done] = self.service.execute(text)
        return done.result

    def pull(self, text: str) -> Result:
        answer = self.service.pull(_query(text), text)
        return Result(text, f"{len(answer.rows)} row(s)", tuple(n for n, _ in answer.columns),
                      [tuple(_show(v) for v in row) for row in answer.rows])

    def push(self, text: str) -> PushRows:
        return _LocalPush(self.service, self.service.push(_query(text), text, {}))

    def close(self) -> None:
        self.service.close()


class _LocalPush:
    def __init__(self, service: SqlService, push: Any) -> None:
        self._service = service
        self._push = push
        self.columns = [name for name, _ in push.columns]

    def batches(self) -> Iterator[list[list[Any]]]:
        while not self._push.done:
            yield self._push.poll(POLL_S)

    def close(self) -> None:
        self._service.end(self._push)


class Remote:
    """Statements sent to ``fluvial sql-server`` (or ksqlDB) at ``url``: ``/ksql`` for
    statements, ``/query-stream`` for pull and push queries."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise FluvialError(f"--server takes http://HOST:PORT, got {url!r}")
        self.url = f"http://{parts.hostname}:{parts.port or 8088}"
        self._host, self._port = parts.hostname, parts.port or 8088
        self._post("/info", None)  # fails here, once, when no server answers

    def _post(self, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={
            "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise FluvialError(_message(exc.read())) from None
        except OSError as exc:
            raise FluvialError(f"no answer from {self.url}{path}: {exc}") from None

    def statement(self, text: str) -> Result:
        [entity] = self._post("/ksql", {"ksql": text, "streamsProperties": {}})
        return _result(text, entity)

    def pull(self, text: str) -> Result:
        header, *rows = self._post("/query-stream", {"sql": text, "properties": {}})
        return Result(text, f"{len(rows)} row(s)", tuple(header["columnNames"]),
                      [tuple(_show(v) for v in row) for row in rows])

    def push(self, text: str) -> PushRows:
        connection = HTTPConnection(self._host, self._port, timeout=None)
        try:
            connection.request("POST", "/query-stream",
                               json.dumps({"sql": text, "properties": {}}).encode(),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                raise FluvialError(_message(response.read()))
            return _RemotePush(connection, response)
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        pass


class _RemotePush:
    def __init__(self, connection: HTTPConnection, response: HTTPResponse) -> None:
        self._connection = connection
        self._response = response
        self.columns = list(json.loads(response.readline())["columnNames"])

    def batches(self) -> Iterator[list[list[Any]]]:
        while line := self._response.readline():
            row = json.loads(line)
            if isinstance(row, dict):  # the error entry that ends a failed stream
                raise FluvialError(str(row.get("message", row)))
            yield [row]

    def close(self) -> None:
        self._connection.close()  # the server sees the client go and ends the query


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or "no message"


def _result(text: str, entity: dict[str, Any]) -> Result:
    """A /ksql entity as the engine's ``Result`` would show it."""
    kind = entity.get("@type")
    if kind in ("streams", "tables"):
        sources = entity[kind]
        header = (f"{kind[:-1].title()} Name", "Kafka Topic", "Key Format", "Value Format",
                  "Windowed")
        return Result(text, f"{len(sources)} {kind}", header,
                      [(s["name"], s["topic"], s["keyFormat"], s["valueFormat"],
                        s["isWindowed"]) for s in sources])
    if kind == "queries":
        queries = entity["queries"]
        return Result(text, f"{len(queries)} queries", ("Query ID", "Sink", "Query String"),
                      [(q["id"], ", ".join(q["sinks"]), q["queryString"]) for q in queries])
    if kind == "function_names":
        functions = entity["functions"]
        return Result(text, f"{len(functions)} functions", ("Function Name", "Type",
                                                            "Category"),
                      [(f["name"], f["type"], f["category"]) for f in functions])
    if kind == "sourceDescription":
        source = entity["sourceDescription"]
        rows = [(f["name"], f["schema"]["type"] + ("   (key)" if f.get("type") == "KEY"
                                                   else "")) for f in source["fields"]]
        return Result(text, f"Name: {source['name']} ({source['type']}), topic "
                            f"{source['topic']}, key format {source['keyFormat']}, value "
                            f"format {source['valueFormat']}", ("Field", "Type"), rows)
    if kind == "describe_function":
        overloads: list[tuple[Any, ...]] = [(", ".join(f["argumentTypes"]), f["returnType"],
                                             f["path"]) for f in entity["functions"]]
        return Result(text, f"Name: {entity['name']} ({entity['type']})"
                            + (f": {entity['description']}" if entity["description"] else ""),
                      ("Arguments", "Returns", "Implementation"), overloads)
    return Result(text, str(entity.get("commandStatus", {}).get("message", kind)))


def _query(text: str) -> ast.Query:
    [query] = parse(text)
    assert isinstance(query, ast.Query)
    return query


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def complete(text: str) -> bool:
    """Whether ``text`` is ready to run: a shell command, or statements whose last one ends
    with ``;`` (not one inside a quoted string or identifier, or a comment)."""
    stripped = text.strip()
    if stripped.rstrip(";").strip().lower() in _COMMANDS:
        return True
    ended = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"`":
            close = text.find(char, i + 1)
            while close != -1 and text[close + 1:close + 2] == char:  # '' inside '...'
                close = text.find(char, close + 2)
            if close == -1:
                return False  # a string or quoted name still open
            i, ended = close + 1, False
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline == -1 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close == -1:
                return False
            i = close + 2
        else:
            if not char.isspace():
                ended = char == ";"
            i += 1
    return ended


class Shell:
    """Reads statements from ``lines`` (one read per statement; multi-line ones included),
    runs them on ``backend``, writes what they give to ``out``."""

    def __init__(self, backend: Backend, out: TextIO) -> None:
        self.backend = backend
        self.out = out
        self.failures = 0

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def run(self, reads: Iterable[str]) -> None:
        """Run each text ``reads`` gives until it ends, ``exit`` or ``quit``."""
        for text in reads:
            command = text.strip().rstrip(";").strip().lower()
            if command in ("exit", "quit"):
                return
            if command == "help":
                self.say(HELP)
            elif command:
                self.execute(text)

    def execute(self, text: str) -> None:
        """Run every statement of ``text`` in order; a failure is one line and ends the
        text's statements (those before it stand)."""
        try:
            statements = parse(text)
            for statement, own in zip(statements, statement_texts(text, statements),
                                      strict=True):
                if isinstance(statement, ast.Query) and statement.emit == "CHANGES":
                    self.stream(own)
                elif isinstance(statement, ast.Query):
                    self.say(format_result(self.backend.pull(own)))
                else:
                    self.say(format_result(self.backend.statement(own)))
        except FluvialError as exc:
            self.failures += 1
            self.say(f"error: {exc}")
        except Exception as exc:  # a fault of fluvial's own: said, and the shell goes on
            self.failures += 1
            self.say(f"error: {type(exc).__name__}: {exc}")
        except KeyboardInterrupt:  # Ctrl-C while a statement waits: the shell goes on
            self.failures += 1
            self.say("interrupted: the statement's outcome is unknown (SHOW tells)")

    def stream(self, text: str) -> None:
        """A push query's rows as they arrive, until its LIMIT or Ctrl-C (which ends the
        query, not the shell)."""
        push = self.backend.push(text)
        try:
            widths = [max(len(name), MIN_WIDTH) for name in push.columns]
            self.say(_row(push.columns, widths))
            self.say("-+-".join("-" * w for w in widths))
            count = 0
            for batch in push.batches():
                for row in batch:
                    self.say(_row([_show(v) for v in row], widths))
                    count += 1
            self.say(f"Limit reached: {count} row(s)")
        except KeyboardInterrupt:
            self.say("Query terminated")
        finally:
            push.close()


def _row(cells: list[str], widths: list[int]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def piped(stream: TextIO) -> Iterator[str]:
    """Statements read from a pipe or file: lines gathered until a statement ends."""
    buffer: list[str] = []
    for line in stream:
        buffer.append(line)
        text = "".join(buffer)
        if complete(text):
            yield text
            buffer = []
    if "".join(buffer).strip():
        yield "".join(buffer)  # the last statement without its ';': the parser says so


def history_path() -> Path:
    """``$XDG_STATE_HOME/fluvial/sql_history`` where XDG_STATE_HOME is set, else
    ``~/.fluvial_sql_history``."""
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return Path(state) / "fluvial" / "sql_history"
    return Path.home() / ".fluvial_sql_history"


def typed(say: Callable[[str], None]) -> Iterator[str]:
    """Statements typed at a terminal, with line editing, history and keyword completion:
    Enter runs a complete statement and starts a new line in an unfinished one; Ctrl-C
    clears the input, Ctrl-D on an empty line leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if complete(buffer.text) or not buffer.text.strip():
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(path)), multiline=True, key_bindings=bindings,
        completer=WordCompleter(KEYWORDS, ignore_case=True), complete_while_typing=False,
        prompt_continuation=lambda width, line, wrap: CONTINUATION)
    say("fluvial SQL shell: statements end with ';'; 'help' lists them; 'exit' or Ctrl-D "
        "leaves.")
    while True:
        try:
            yield session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
