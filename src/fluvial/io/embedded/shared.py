"""The embedded broker of a data directory, shared with other processes on this machine.

One process owns a data directory's broker (``fluvial run --embedded DIR``): it holds
``DIR/broker.lock`` and serves the broker to others over HTTP on a loopback port it writes
to ``DIR/broker.json``. ``fluvial produce`` / ``fluvial consume`` on the same directory
``connect``: to the owner when there is one, or they open the directory themselves (and own
it until they exit). Two owners never write one directory.

The protocol is four JSON calls (keys and values base64), enough to feed a topic and read
one; it is for trying apps from a shell, not a Kafka replacement.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Protocol

from fluvial.errors import ConfigError, FluvialError
from fluvial.io.client import Message, TopicPartition
from fluvial.io.embedded.broker import EmbeddedBroker
from fluvial.io.embedded.message import EmbeddedMessage

LOCK_FILE = "broker.lock"
ADDRESS_FILE = "broker.json"
_MAX_WAIT_S = 5.0  # the longest one read call may wait for records


class BrokerInUseError(ConfigError):
    """Another process owns the embedded broker of this data directory."""


class SharedBroker(Protocol):
    """What the shell verbs need of a broker, local or in another process."""

    def create_topic(self, name: str, partitions: int = -1) -> bool: ...
    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]: ...
    def append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int = 0,
               headers: Any = None, partition: int | None = None) -> Any: ...
    def read(self, tp: TopicPartition, offset: int, max_records: int,
             timeout: float = 0.0) -> Sequence[Message]: ...


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class OwnedBroker:
    """This process's broker on ``data_dir``, served to other processes until ``close``."""

    def __init__(self, data_dir: Path, lock: IO[str]) -> None:
        self.data_dir = data_dir
        self.broker = EmbeddedBroker(data_dir=data_dir)
        self._lock = lock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.broker))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fluvial-embedded-broker", daemon=True)
        self._thread.start()
        _write_json(data_dir / ADDRESS_FILE, {"url": self.url, "pid": os.getpid()})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / ADDRESS_FILE).unlink()
        self.broker.close()
        self._lock.close()  # drops the flock

    def __enter__(self) -> OwnedBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def own(data_dir: str | os.PathLike[str], wait_s: float = 10.0) -> OwnedBroker:
    """Open and serve ``data_dir``'s broker; ``BrokerInUseError`` if another process still
    owns it after ``wait_s`` (a ``fluvial produce`` that got there first owns it briefly)."""
    root = Path(data_dir).resolve()
    deadline = time.monotonic() + wait_s
    while (lock := _try_lock(root)) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # an flock has no wait with a timeout
    if lock is None:
        raise BrokerInUseError(
            f"the embedded broker in {root} is in use by another process "
            f"(pid {_owner_pid(root) or 'unknown'}); stop it, or use another directory")
    return OwnedBroker(root, lock)


def connect(data_dir: str | os.PathLike[str],
            wait_s: float = 10.0) -> tuple[SharedBroker, OwnedBroker | None]:
    """``data_dir``'s broker: the owner's, reached over HTTP, or opened here when nobody owns
    it (then the ``OwnedBroker`` is returned too, for the caller to close).

    An owner that holds the lock but has not published its address yet is starting (or
    stopping): wait for either, up to ``wait_s`` (seen: ``fluvial produce`` right after
    ``fluvial run --embedded ... &``)."""
    root = Path(data_dir).resolve()
    deadline = time.monotonic() + wait_s
    while True:
        lock = _try_lock(root)
        if lock is not None:
            owned = OwnedBroker(root, lock)
            return owned.broker, owned
        try:
            url = json.loads((root / ADDRESS_FILE).read_text())["url"]
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise BrokerInUseError(f"the embedded broker in {root} is starting or "
                                       f"stopping in another process; try again") from None
            time.sleep(0.1)  # an flock has no wait with a timeout
            continue
        return RemoteBroker(url), None


def _try_lock(root: Path) -> IO[str] | None:
    root.mkdir(parents=True, exist_ok=True)
    handle = (root / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _owner_pid(root: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return int(json.loads((root / ADDRESS_FILE).read_text())["pid"])
    return None


def _write_json(path: Path, obj: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


# -- the owner's side ---------------------------------------------------------------------

def _handler_for(broker: EmbeddedBroker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                self._reply(200, _serve(broker, self.path, body))
            except FluvialError as exc:
                self._reply(400, {"error": str(exc)})
            except (ValueError, KeyError, TypeError) as exc:
                self._reply(400, {"error": f"bad request to {self.path}: {exc!r}"})

        def _reply(self, status: int, obj: object) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per produce call would drown the app's own log

    return Handler


def _serve(broker: EmbeddedBroker, path: str, body: dict[str, Any]) -> object:
    if path == "/create_topic":
        return {"created": broker.create_topic(body["name"], int(body["partitions"]))}
    if path == "/partition_counts":
        return broker.partition_counts(body["topics"])
    if path == "/append":
        msg = broker.append(body["topic"], _unb64(body["key"]), _unb64(body["value"]),
                            int(body["timestamp"]), None, body["partition"])
        return {"partition": msg.partition(), "offset": msg.offset()}
    if path == "/read":
        msgs = broker.read(TopicPartition(body["topic"], int(body["partition"])),
                           int(body["offset"]), int(body["max_records"]),
                           min(float(body["timeout"]), _MAX_WAIT_S))
        return [{"offset": m.offset(), "key": _b64(m.key()), "value": _b64(m.value()),
                 "timestamp": m.timestamp()[1]} for m in msgs]
    raise ValueError(f"no such call {path}")


# -- the other processes' side ------------------------------------------------------------

class RemoteBroker:
    """The owner's broker, over HTTP on loopback."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise FluvialError(json.loads(exc.read()).get("error", str(exc))) from None
        except OSError as exc:
            raise FluvialError(f"the embedded broker at {self.url} did not answer: "
                               f"{exc}") from None

    def create_topic(self, name: str, partitions: int = -1) -> bool:
        return bool(self._call("/create_topic", {"name": name, "partitions": partitions})
                    ["created"])

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        return dict(self._call("/partition_counts", {"topics": list(topics)}))

    def append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int = 0,
               headers: Any = None, partition: int | None = None) -> Any:
        return self._call("/append", {"topic": topic, "key": _b64(key), "value": _b64(value),
                                      "timestamp": timestamp, "partition": partition})

    def read(self, tp: TopicPartition, offset: int, max_records: int,
             timeout: float = 0.0) -> list[EmbeddedMessage]:
        rows = self._call("/read", {"topic": tp.topic, "partition": tp.partition,
                                    "offset": offset, "max_records": max_records,
                                    "timeout": timeout}, timeout=timeout + 30)
        return [EmbeddedMessage(tp.topic, tp.partition, r["offset"], _unb64(r["key"]),
                                _unb64(r["value"]), r["timestamp"], None) for r in rows]
