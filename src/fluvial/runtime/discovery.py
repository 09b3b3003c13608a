"""Which instance owns which task, and at which HTTP address: interactive queries' routing.

Kafka Streams carries each instance's ``application.server`` in the assignment's user data.
librdkafka cannot (no custom assignor; under KIP-848 the broker assigns), so fluvial splits
the two facts: every instance that serves HTTP publishes ``member id -> host:port`` to the
compacted topic ``<application_id>-instances`` (again whenever its member id or the group's
assignment changes, a tombstone when it stops), and every instance reads that topic with a
free reader and the group's assignment through the admin API (cached, refreshed every few
seconds). Both can be stale for a moment during a rebalance; that is safe because the
instance asked answers only from a task it runs (never a restoring one) and otherwise says
"moving".
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from fluvial.io.client import Consumer, GroupMember, Producer, TopicPartition, TopicSpec

if TYPE_CHECKING:
    from fluvial.runtime.app import App

log = logging.getLogger("fluvial.discovery")

REFRESH_S = 2.0  # how often the group's assignment is read again
STEP_S = 0.2  # how often the instances topic is read and the member id checked
DESCRIBE_TIMEOUT_S = 5.0


def instances_topic(application_id: str) -> str:
    return f"{application_id}-instances"


class Directory:
    """Member id -> address, and the group's assignment, kept current in a background thread."""

    def __init__(self, app: App, address: str, token: str | None = None) -> None:
        self._app = app
        self.address = address
        self.token = token  # the bearer token this instance's peers expect too
        self.topic = instances_topic(app.config.application_id)
        self._clients = app.clients
        self._admin = app.clients.admin()
        self._addresses: dict[str, str] = {}
        self._members: list[GroupMember] = []
        self._published: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_refresh = 0.0
        self._producer: Producer | None = None
        self._reader: Consumer | None = None

    # -- answers (any thread) -------------------------------------------------------------

    @property
    def member_id(self) -> str | None:
        return self._app.member_id

    def owner_of(self, tp: TopicPartition) -> tuple[str, str | None] | None:
        """(member id, its address or None) of the member holding ``tp``; None if nobody
        holds it as far as the last description of the group says."""
        for member in self._members:
            if tp in member.partitions:
                return member.member_id, self._addresses.get(member.member_id)
        return None

    def peers(self) -> list[str]:
        """The addresses of the group's other members (those that serve HTTP)."""
        me = self.member_id
        return sorted({self._addresses[m.member_id] for m in self._members
                       if m.member_id != me and m.member_id in self._addresses})

    # -- keeping current ------------------------------------------------------------------

    def start(self) -> Directory:
        self._thread = threading.Thread(target=self._run, name="fluvial-discovery",
                                        daemon=True)
        self._thread.start()
        return self

    def _open(self) -> None:
        """In the thread: a broker not up yet delays the answers, never the app's start."""
        cfg = self._app.config
        self._admin.create_topics([TopicSpec(self.topic, 1, cfg.replication_factor,
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
        """Read new addresses; re-read the assignment when due or when this member's id
        changed; publish this instance's address when it is missing or the group moved."""
        assert self._reader is not None
        for m in self._reader.poll_batch(1000, 0.0):
            key, value = m.key(), m.value()
            if key is None:
                continue
            if value is None:
                self._addresses.pop(key.decode(), None)
            else:
                self._addresses[key.decode()] = value.decode()
        me = self.member_id
        now = time.monotonic()
        if me != self._published or now >= self._next_refresh:
            self._next_refresh = now + REFRESH_S
            members = self._admin.group_members(self._app.config.application_id,
                                                DESCRIBE_TIMEOUT_S)
            moved = members != self._members
            self._members = members
            if me is not None and (me != self._published or moved
                                   or self._addresses.get(me) != self.address):
                self._publish(me, self.address)

    def _publish(self, member_id: str, address: str | None) -> None:
        assert self._producer is not None
        self._producer.produce(self.topic, member_id.encode(),
                               address.encode() if address is not None else None,
                               int(time.time() * 1000))
        self._producer.flush(10.0)
        self._published = member_id if address is not None else None
        if address is not None:
            self._addresses[member_id] = address

    def close(self) -> None:
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(10)
        self._thread = None
        try:
            if self._published is not None:
                self._publish(self._published, None)
        except Exception as exc:  # leaving anyway: peers drop us once the group does
            log.info("instance directory: could not withdraw the address: %s", exc)
        if self._reader is not None:
            self._reader.close()
        if self._producer is not None:
            self._producer.close()
