"""The command topic: the SQL catalog as a log every server of one service reads, as ksqlDB's.

Each statement that changes the catalog (CREATE, DROP, INSERT INTO ... SELECT) is written to
``_confluent-ksql-<service id>_command_topic`` (one partition, kept forever) before it is
acknowledged; its offset is ksqlDB's ``commandSequenceNumber``. Every server reads the topic
from the beginning in a thread of its own and applies each command in the log's order, the
server that wrote it too: so all of them hold the same catalog and run the same queries, and a
server started later (or restarted) rebuilds both from the log.

A record that is not a command (not JSON, no statement) is skipped with one warning naming
topic and offset: the log is shared, and one bad record must not stop every server.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from fluvial.errors import FluvialError
from fluvial.io.client import Clients, Consumer, Message, TopicPartition, TopicSpec

log = logging.getLogger(__name__)

POLL_S = 0.2  # how long the follower waits for new commands before looking again
RETRY_S = 1.0  # how long it waits after the broker failed it


def command_topic(service_id: str) -> str:
    """ksqlDB's name: ``_confluent-ksql-default__command_topic`` for service id ``default_``."""
    return f"_confluent-ksql-{service_id}_command_topic"


@dataclass(frozen=True)
class Command:
    """One record of the topic: the statement's text, and the id of the request that wrote
    it (so the writing server finds its own outcome among the others')."""

    statement: str
    request: str

    def encode(self) -> bytes:
        return orjson.dumps({"statement": self.statement, "request": self.request})

    @staticmethod
    def decode(value: bytes | None) -> Command:
        """The command in ``value``; ``ValueError`` saying why when it is none."""
        if value is None:
            raise ValueError("no value")
        try:
            fields = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc})") from None
        if not isinstance(fields, dict) or not isinstance(fields.get("statement"), str):
            raise ValueError('not a JSON object with a "statement" string')
        return Command(fields["statement"], str(fields.get("request", "")))


#: ``apply(offset, command)``: the statement applied to the catalog; its outcome (a result, or
#: the exception it failed with) goes back to the server that wrote it
Apply = Callable[[int, Command], Any]


class CommandTopic:
    """Writes commands and follows the topic, applying each in order with ``apply`` and
    calling ``settle`` after each batch (the running queries follow the catalog there)."""

    def __init__(self, clients: Clients, topic: str, replication: int, apply: Apply,
                 settle: Callable[[], None]) -> None:
        self.topic = topic
        self._tp = TopicPartition(topic, 0)
        self._clients = clients
        self._replication = replication
        self._apply = apply
        self._settle = settle
        self._producer = clients.producer({})
        self._reader: Consumer | None = None
        self._probe: Consumer | None = None  # reads the end offset for callers (never polled)
        self._probe_lock = threading.Lock()
        self._changed = threading.Condition()
        self._position = 0  # the next offset to apply: every one before it is applied
        self._waiting: set[str] = set()  # requests of this server not applied yet
        self._outcomes: dict[str, tuple[int, Any]] = {}  # request -> (offset, outcome)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float) -> CommandTopic:
        """Create the topic if it is missing, then apply all it holds (the catalog and the
        queries come back) before returning; then keep following it."""
        self._clients.admin().create_topics([TopicSpec(
            self.topic, 1, self._replication,
            {"cleanup.policy": "delete", "retention.ms": "-1"})])
        self._reader = self._clients.consumer(None, {})
        self._probe = self._clients.consumer(None, {})
        low, _ = self._probe.watermarks(self._tp, timeout)
        self._position = low
        self._reader.assign([(self._tp, low)])
        self._thread = threading.Thread(target=self._run, name="fluvial-sql-commands",
                                        daemon=True)
        self._thread.start()
        self.catch_up(timeout)
        return self

    @property
    def position(self) -> int:
        return self._position

    def catch_up(self, timeout: float) -> None:
        """Wait until every command the topic holds now is applied here: a statement then
        sees the catalog as of the latest acknowledged statement of any server."""
        assert self._probe is not None
        with self._probe_lock:
            _, end = self._probe.watermarks(self._tp, timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: self._position >= end or self._stop.is_set(),
                                          timeout):
                raise FluvialError(f"{self.topic}: commands up to offset {end - 1} not applied "
                                   f"on this server within {timeout:g}s (applied up to "
                                   f"{self._position - 1}); retry")

    def submit(self, statement: str, key: str, timeout: float) -> tuple[int, Any]:
        """Write ``statement`` and wait until this server applied it: (its offset, outcome)."""
        request = uuid.uuid4().hex
        with self._changed:
            self._waiting.add(request)
        try:
            self._producer.produce(self.topic, key.encode(), Command(statement, request).encode(),
                                   int(time.time() * 1000), partition=0)
            self._producer.flush(timeout)
            with self._changed:
                if not self._changed.wait_for(lambda: request in self._outcomes, timeout):
                    raise FluvialError(f"{self.topic}: the command for {key} was written but "
                                       f"not applied on this server within {timeout:g}s")
                return self._outcomes.pop(request)
        finally:
            with self._changed:
                self._waiting.discard(request)
                self._outcomes.pop(request, None)

    def _run(self) -> None:
        assert self._reader is not None
        while not self._stop.is_set():
            try:
                messages = self._reader.poll_batch(500, POLL_S)
            except Exception as exc:  # a broker away: the catalog stays as it is meanwhile
                log.warning("%s: reading failed (%s); trying again", self.topic, exc)
                self._stop.wait(RETRY_S)
                continue
            if not messages:
                continue
            outcomes = [(m, self._outcome(m)) for m in messages]
            try:
                self._settle()
            except Exception as exc:  # the queries did not (re)start: said, and retried next batch
                log.error("%s: the queries did not start after offset %d: %s", self.topic,
                          messages[-1].offset(), exc)
            with self._changed:
                for m, (request, outcome) in outcomes:
                    if request in self._waiting:
                        self._outcomes[request] = (m.offset(), outcome)
                self._position = messages[-1].offset() + 1
                self._changed.notify_all()

    def _outcome(self, m: Message) -> tuple[str, Any]:
        try:
            command = Command.decode(m.value())
        except ValueError as exc:
            log.warning("%s offset %d: not a command (%s); skipped", self.topic, m.offset(), exc)
            return "", None
        try:
            return command.request, self._apply(m.offset(), command)
        except Exception as exc:  # failed here as on every server: skipped, the writer is told
            log.warning("%s offset %d: %s; skipped", self.topic, m.offset(), exc)
            return command.request, exc

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._changed:
            self._changed.notify_all()
        for consumer in (self._reader, self._probe):
            if consumer is not None:
                consumer.close()
        self._producer.close()
