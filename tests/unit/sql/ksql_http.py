"""A small client of ksqlDB's REST API for the tests of `fluvial sql-server` (urllib and
http.client: the wire format is what is tested, not a client library's reading of it)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection, HTTPResponse
from typing import Any

from fluvial.server.ksql import KSQL_JSON

HEADERS = {"Content-Type": KSQL_JSON, "Accept": KSQL_JSON}
DEADLINE_S = 60.0


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def call(self, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {},
                                         method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    def get(self, path: str) -> Any:
        status, _, text = self.call(path)
        assert status == 200, text
        return json.loads(text)


def ksql(client: Client, text: str, status: int = 200) -> Any:
    body = json.dumps({"ksql": text, "streamsProperties": {}}).encode()
    got, content_type, answer = client.call("/ksql", body, HEADERS)
    assert got == status, answer
    assert content_type.startswith(KSQL_JSON)
    return json.loads(answer)


def pull(client: Client, text: str) -> Any:
    status, _, answer = client.call("/query", json.dumps({"ksql": text}).encode(), HEADERS)
    assert status == 200, answer
    return json.loads(answer)


def pull_until(client: Client, text: str, rows: int) -> Any:
    """Pull until ``rows`` rows come back: the app starts and processes in the background (a
    pull before it holds its partition is refused with a statement_error, then retried)."""
    deadline = time.monotonic() + DEADLINE_S
    answer: Any = None
    while time.monotonic() < deadline:
        status, _, text_ = client.call("/query", json.dumps({"ksql": text}).encode(), HEADERS)
        answer = json.loads(text_)
        if status == 200 and len(answer) == rows + 1:
            return answer
        time.sleep(0.2)  # polling for a condition, with a deadline
    raise AssertionError(f"no {rows} row(s) in {DEADLINE_S}s; last answer: {answer}")


def open_stream(client: Client, body: dict[str, Any]) -> tuple[HTTPConnection, HTTPResponse]:
    """A push query's response, to read line by line as rows arrive."""
    connection = HTTPConnection("127.0.0.1", client.port, timeout=DEADLINE_S)
    connection.request("POST", "/query-stream", json.dumps(body).encode())
    response = connection.getresponse()
    assert response.status == 200, response.read()
    return connection, response


def running_pushes(client: Client) -> list[str]:
    return [q["queryString"] for q in ksql(client, "SHOW QUERIES;")[0]["queries"]
            if q["queryType"] == "PUSH"]
