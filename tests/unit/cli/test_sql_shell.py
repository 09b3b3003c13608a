"""`fluvial sql`, the shell: statements piped in (no terminal), typed at a real
pseudo-terminal (prompt, multi-line input, Ctrl-C ending a push query), and sent to a
running `fluvial sql-server`. Every wait is on output, with a deadline."""

from __future__ import annotations

import io
import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from tests.unit.docs.doc_blocks import expected_output, shell_blocks
from tests.unit.sql.ksql_http import Client, ksql

from fluvial.cli.sql_shell import Remote, Shell, complete, piped
from fluvial.io.embedded import EmbeddedBroker
from fluvial.server.ksql import KsqlServer
from fluvial.sql.service import SqlService

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
DEADLINE_S = 60.0
CREATE = ("CREATE STREAM clicks (user VARCHAR KEY, n INT)\n"
          "  WITH (kafka_topic='clicks', value_format='JSON', partitions=1);\n")


def shell_command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fluvial", "sql", "--embedded", str(tmp_path / "data"),
            "--state-dir", str(tmp_path / "state"), "--commit-interval-ms", "100", *args]


def produce(tmp_path: Path, topic: str, *lines: str) -> None:
    """Records appended by `fluvial produce` to the broker the shell owns (over its HTTP)."""
    done = subprocess.run([sys.executable, "-m", "fluvial", "produce", "--embedded",
                           str(tmp_path / "data"), topic, "--key-separator", ":"],
                          input="\n".join(lines) + "\n", text=True, capture_output=True,
                          env=ENV, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr


class Lines:
    """A process's output lines, read by a thread; ``expect`` waits for one matching."""

    def __init__(self, stream: Iterable[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Iterable[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str) -> str:
        deadline = time.monotonic() + DEADLINE_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; output: {self.seen}")


def test_complete_ends_at_a_semicolon_outside_strings_and_comments() -> None:
    assert complete("SHOW STREAMS;")
    assert complete("SELECT *\nFROM s\nEMIT CHANGES;  -- done\n")
    assert not complete("SELECT * FROM s")
    assert not complete("INSERT INTO s VALUES ('a;")
    assert complete("INSERT INTO s VALUES ('it''s;');")
    assert not complete("SHOW STREAMS /* ; */")
    assert complete("SHOW STREAMS; -- a comment")
    assert complete("exit") and complete("help") and complete("quit;")


def test_piped_statements_run_and_a_bad_one_does_not_stop_the_shell(tmp_path: Path) -> None:
    script = (CREATE + "INSERT INTO clicks (user, n) VALUES ('ann', 2);\n"
              "CREATE STREAM big AS SELECT user, n * 10 AS m\n  FROM clicks;\n"
              "SELEC oops;\n"
              "SHOW STREAMS;\n"
              "DESCRIBE big;\n")
    done = subprocess.run(shell_command(tmp_path), input=script, text=True,
                          capture_output=True, env=ENV, timeout=DEADLINE_S)
    assert done.returncode == 1, done.stderr  # a statement failed: a script's caller knows
    lines = done.stdout.splitlines()
    assert lines[:3] == ["Stream created", "Inserted 1 row", "Created query with ID CSAS_BIG_0"]
    [error] = [line for line in lines if line.startswith("error:")]
    assert error.startswith("error: line 1:1: syntax error at 'SELEC': expected ")
    start = lines.index("2 streams")
    assert lines[start:start + 4] == [
        "2 streams",
        "Stream Name | Kafka Topic | Key Format | Value Format | Windowed",
        "------------+-------------+------------+--------------+---------",
        "BIG         | BIG         | KAFKA      | JSON         | False"]
    assert lines[start + 4] == "CLICKS      | clicks      | KAFKA      | JSON         | False"
    assert "M     | INTEGER" in lines


def test_piped_push_query_streams_rows_until_its_limit(tmp_path: Path) -> None:
    proc = subprocess.Popen(shell_command(tmp_path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV)
    assert proc.stdin is not None and proc.stdout is not None
    out = Lines(proc.stdout)
    try:
        proc.stdin.write(CREATE + "CREATE STREAM big AS SELECT user, n * 10 AS m FROM clicks;"
                                  "\nSELECT user, m FROM big\n  EMIT CHANGES LIMIT 2;\n")
        proc.stdin.flush()
        out.expect("^Created query with ID CSAS_BIG_0$")
        assert out.expect(r"^USER\s") == "USER       | M"
        produce(tmp_path, "clicks", 'ann:{"N": 2}', 'bob:{"N": 3}', 'cy:{"N": 4}')
        assert out.expect("^ann") == "ann        | 20"
        assert out.expect("^bob") == "bob        | 30"
        out.expect(r"^Limit reached: 2 row\(s\)$")
        proc.stdin.write("SHOW QUERIES;\n")  # the shell goes on after the push query
        proc.stdin.close()
        out.expect("^1 queries$")
        assert proc.wait(DEADLINE_S) == 0
    finally:
        proc.kill()
        proc.wait()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")


class Terminal:
    """``fluvial sql`` on a pseudo-terminal: keys written to it, its screen output read."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal is its controlling one
            os.execvpe(argv[0], argv, env)
        self.text = ""
        self._chunks: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the child closed the terminal
                data = b""
            if not data:
                self._chunks.put(None)
                return
            self._chunks.put(data.decode(errors="replace"))

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, text: str) -> None:
        """Wait until ``text`` is on the screen (escape sequences removed) after what
        earlier calls waited for."""
        deadline = time.monotonic() + DEADLINE_S
        while text not in self.text:
            try:
                chunk = self._chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                chunk = None
            if chunk is None:
                raise AssertionError(f"{text!r} not shown; the screen: {self.text[-2000:]!r}")
            self.text += _ANSI.sub("", chunk).replace("\r", "")
        self.text = self.text[self.text.index(text) + len(text):]

    def wait(self) -> int:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)  # polling for the exit, with a deadline
        raise AssertionError("the shell did not exit")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def test_terminal_prompt_multiline_statement_and_ctrl_c_ends_a_push_query(
        tmp_path: Path) -> None:
    env = {**ENV, "TERM": "xterm", "HOME": str(tmp_path), "XDG_STATE_HOME": "",
           "PROMPT_TOOLKIT_NO_CPR": "1"}  # the pty answers no cursor-position requests
    terminal = Terminal(shell_command(tmp_path), env)
    try:
        terminal.expect("fluvial>")
        terminal.type("CREATE STREAM clicks (user VARCHAR KEY, n INT)\r")
        terminal.expect("\n       >")  # the statement goes on: a continuation line
        terminal.type("WITH (kafka_topic='clicks', value_format='JSON', partitions=1);\r")
        terminal.expect("Stream created")
        terminal.expect("fluvial>")
        terminal.type("SELECT * FROM clicks EMIT CHANGES;\r")
        terminal.expect("---")  # under the header: the query is running
        produce(tmp_path, "clicks", 'ann:{"N": 7}')
        terminal.expect("ann        | 7")
        terminal.type("\x03")  # Ctrl-C: the query ends, the shell stays
        terminal.expect("Query terminated")
        terminal.expect("fluvial>")
        terminal.type("SHOW STREAMS;\r")
        terminal.expect("CLICKS")
        terminal.type("exit\r")
        assert terminal.wait() == 0
    finally:
        terminal.kill()
    history = (tmp_path / ".fluvial_sql_history").read_text()
    assert "+CREATE STREAM clicks (user VARCHAR KEY, n INT)\n+WITH (kafka_topic" in history


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KsqlServer]:
    service = SqlService(broker=EmbeddedBroker(), application_id="sql-shell-test",
                         state_dir=str(tmp_path / "state"), commit_interval_ms=100)
    started = KsqlServer(service, port=0).start()
    try:
        yield started
    finally:
        started.stop()


class Screen(io.StringIO):
    """The shell's output, written by its thread; ``expect`` waits for a line."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            written = super().write(text)
            self._changed.notify_all()
        return written

    def expect(self, line: str) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: line in self.getvalue().splitlines(),
                                          DEADLINE_S):
                raise AssertionError(f"no line {line!r}; output: {self.getvalue()!r}")


def test_shell_against_a_running_sql_server(server: KsqlServer) -> None:
    screen = Screen()
    shell = Shell(Remote(f"http://127.0.0.1:{server.port}"), screen)
    script = io.StringIO(CREATE + "CREATE TABLE totals AS SELECT user, SUM(n) AS s\n"
                         "  FROM clicks GROUP BY user;\nSHOW TABLES;\nDESCRIBE totals;\n"
                         "DROP STREAM nothing;\nSELECT user, n FROM clicks EMIT CHANGES LIMIT 1;"
                         "\nSHOW QUERIES;\n")
    thread = threading.Thread(target=shell.run, args=(piped(script),), daemon=True)
    thread.start()
    screen.expect("USER       | N")  # the push query runs: now a row for it
    ksql(Client(server.port), "INSERT INTO clicks (user, n) VALUES ('ann', 4);")
    screen.expect("ann        | 4")
    screen.expect("1 queries")
    thread.join(DEADLINE_S)
    lines = screen.getvalue().splitlines()
    assert lines[:2] == ["Stream created", "Created query with ID CTAS_TOTALS_0"]
    assert lines[2:5] == [
        "1 tables",
        "Table Name | Kafka Topic | Key Format | Value Format | Windowed",
        "-----------+-------------+------------+--------------+---------"]
    assert lines[5].startswith("TOTALS     | TOTALS      | KAFKA      | JSON")
    assert "USER  | STRING   (key)" in lines and "S     | INTEGER" in lines
    assert "error: line 1:1: Stream NOTHING does not exist." in lines  # the server's words
    assert shell.failures == 1


def test_the_sql_page_shell_walkthrough_prints_what_it_says(tmp_path: Path) -> None:
    script = shell_blocks(REPO / "docs" / "sql.md")["sql"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, text=True,
                          capture_output=True, env={**ENV, "PATH": path}, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected_output(script), done.stderr
