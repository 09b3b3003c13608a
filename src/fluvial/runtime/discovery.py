"""Who is in the application, what each instance runs, and where it answers: the one view
that interactive queries route by and standby replicas are placed from.

Kafka Streams carries this in the assignment's user data. librdkafka cannot (no custom
assignor; under KIP-848 the broker assigns), and the admin API's DescribeConsumerGroups
aborts the whole process inside librdkafka when a broker drops the connection mid-request
(librdkafka issue 4605; seen in a chaos run with a broker killed). So every instance
publishes its own facts to the compacted topic ``<application_id>-instances``, keyed by its
group member id: the partitions it holds, the tasks it keeps standbys of, its HTTP address
(if it serves one) and its state directory's host token. It publishes when they change and
every HEARTBEAT_S, and a tombstone when it stops. Every instance reads the topic with a free
reader, in a background thread; an entry not renewed within STALE_S (a killed instance) drops
out.

The view can be a moment behind a rebalance; that is safe: a queried instance answers only
from a task it runs (never a restoring one) and otherwise says "moving", and a standby placed
from an old view is moved at the next placement.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from fluvial.io.client import Consumer, GroupMember, Producer, TopicPartition, TopicSpec
from fluvial.runtime.standby import HOST_MARK, host_token

if TYPE_CHECKING:
    from fluvial.runtime.app import App

log = logging.getLogger("fluvial.discovery")

STEP_S = 0.2  # how often the topic is read and this instance's facts checked
HEARTBEAT_S = 2.0  # an unchanged entry is published again this often
STALE_S = 10.0  # an entry not seen again for this long is a dead instance's


def instances_topic(application_id: str) -> str:
    return f"{application_id}-instances"


@dataclass(frozen=True)
class _Entry:
    address: str | None
    host: str
    partitions: tuple[TopicPartition, ...]
    standbys: tuple[str, ...]  # task ids it keeps standby copies of
    seen: float  # monotonic time this reader last saw it published


class Directory:
    """The application's instances as they publish themselves, kept current in a thread."""

    def __init__(self, app: App, address: str | None = None, token: str | None = None) -> None:
        self._app = app
        self.address = address  # this instance's HTTP address, once it serves one
        self.token = token  # the bearer token this instance's peers expect too
        self.topic = instances_topic(app.config.application_id)
        self._host = host_token(app.config.state_dir)
        self._clients = app.clients
        self._entries: dict[str, _Entry] = {}
        self._published: tuple[str, str | None, tuple[TopicPartition, ...],
                               tuple[str, ...]] | None = None
        self._next_heartbeat = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None
        self._reader: Consumer | None = None

    # -- answers (any thread) -------------------------------------------------------------

    @property
    def member_id(self) -> str | None:
        return self._app.member_id

    def members(self) -> list[GroupMember]:
        """The live instances (renewed within STALE_S), as group members: ``client_id``
        carries the host token the standby placement reads."""
        now = time.monotonic()
        return [GroupMember(member_id, f"fluvial{HOST_MARK}{e.host}", e.partitions)
                for member_id, e in list(self._entries.items()) if now - e.seen < STALE_S]

    def owner_of(self, tp: TopicPartition) -> tuple[str, str | None] | None:
        """(member id, its address or None) of the live instance holding ``tp``, the most
        recently renewed if two claim it (mid-rebalance); None if none does."""
        now = time.monotonic()
        holders = [(e.seen, member_id, e.address) for member_id, e in list(self._entries.items())
                   if now - e.seen < STALE_S and tp in e.partitions]
        if not holders:
            return None
        _, member_id, address = max(holders)
        return member_id, address

    def standby_addresses(self, task_id: str) -> list[str]:
        """The addresses of the other live instances keeping a standby of ``task_id``."""
        me, now = self.member_id, time.monotonic()
        return sorted({e.address for member_id, e in list(self._entries.items())
                       if member_id != me and e.address is not None and now - e.seen < STALE_S
                       and task_id in e.standbys})

    def peers(self) -> list[str]:
        """The addresses of the other live instances that serve HTTP."""
        me, now = self.member_id, time.monotonic()
        return sorted({e.address for member_id, e in list(self._entries.items())
                       if member_id != me and e.address is not None and now - e.seen < STALE_S})

    # -- keeping current ------------------------------------------------------------------

    def start(self) -> Directory:
        self._thread = threading.Thread(target=self._run, name="fluvial-discovery",
                                        daemon=True)
        self._thread.start()
        return self

    def _open(self) -> None:
        """In the thread: a broker not up yet delays the answers, never the app's start."""
        cfg = self._app.config
        self._clients.admin().create_topics([TopicSpec(self.topic, 1, cfg.replication_factor,
                                                       {"cleanup.policy": "compact"})])
        self._producer = self._clients.producer({})
        self._reader = self._clients.consumer(None, {})
        self._reader.assign([(TopicPartition(self.topic, 0), 0)])

    def _run(self) -> None:
        opened = False
        while not self._stop.is_set():
            try:
                if not opened:
                    self._open()
                    opened = True
                self.step()
            except Exception as exc:  # a broker away: the answers stay as they were
                log.info("instance directory: %s; trying again", exc)
            self._stop.wait(STEP_S)

    def step(self) -> None:
        """Read what the instances published; publish this instance's facts when they
        changed or the heartbeat is due."""
        assert self._reader is not None
        now = time.monotonic()
        for m in self._reader.poll_batch(1000, 0.0):
            key, value = m.key(), m.value()
            if key is None:
                continue
            if value is None:
                self._entries.pop(key.decode(), None)
                continue
            try:
                fields = orjson.loads(value)
                self._entries[key.decode()] = _Entry(
                    fields["address"], fields["host"],
                    tuple(TopicPartition(t, p) for t, p in fields["partitions"]),
                    tuple(fields.get("standbys", ())), now)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s[0] offset %d: not an instance entry (%s); ignored",
                            self.topic, m.offset(), exc)
        me = self.member_id
        thread = self._app.stream_thread
        if me is None or thread is None:
            return
        standbys = tuple(sorted(list(thread.standbys.tasks))) \
            if thread.standbys is not None else ()
        facts = (me, self.address, tuple(sorted(thread.assignment)), standbys)
        if facts != self._published or now >= self._next_heartbeat:
            self._publish(*facts)
            if self._published is not None and self._published[0] != me:
                self._withdraw(self._published[0])  # this process's previous member id
            self._published = facts
            self._next_heartbeat = now + HEARTBEAT_S

    def _publish(self, member_id: str, address: str | None,
                 partitions: tuple[TopicPartition, ...], standbys: tuple[str, ...]) -> None:
        assert self._producer is not None
        value = orjson.dumps({"address": address, "host": self._host,
                              "partitions": [[tp.topic, tp.partition] for tp in partitions],
                              "standbys": list(standbys)})
        self._producer.produce(self.topic, member_id.encode(), value, int(time.time() * 1000))
        self._producer.flush(10.0)

    def _withdraw(self, member_id: str) -> None:
        assert self._producer is not None
        self._producer.produce(self.topic, member_id.encode(), None, int(time.time() * 1000))
        self._producer.flush(10.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(10)
        self._thread = None
        try:
            if self._published is not None and self._producer is not None:
                self._withdraw(self._published[0])
        except Exception as exc:  # leaving anyway: peers drop us after STALE_S
            log.info("instance directory: could not withdraw this instance: %s", exc)
        if self._reader is not None:
            self._reader.close()
        if self._producer is not None:
            self._producer.close()
