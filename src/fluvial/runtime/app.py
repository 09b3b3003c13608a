"""App: runs a topology inside any Python process, on Kafka or on the embedded broker."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from fluvial.errors import ConfigError
from fluvial.io.client import Clients, GroupMember
from fluvial.runtime import state_lock, topics
from fluvial.runtime.banner import banner
from fluvial.runtime.config import StreamsConfig
from fluvial.runtime.discovery import Directory
from fluvial.runtime.global_stores import GlobalStores
from fluvial.runtime.instance import InstanceSlot, claim_slot
from fluvial.runtime.query import StoreQuery
from fluvial.runtime.stream_thread import StreamThread
from fluvial.state.store import ReadOnlyView
from fluvial.topology.topology import Topology

log = logging.getLogger("fluvial.app")

MEMBER_CHECK_S = 0.2  # how often the loop notes its member id for other threads
_default_broker: Any = None
_default_lock = threading.Lock()


def embedded_broker() -> Any:
    """The process-wide embedded broker that apps without ``bootstrap_servers`` share."""
    global _default_broker
    from fluvial.io.embedded import EmbeddedBroker

    with _default_lock:
        if _default_broker is None:
            _default_broker = EmbeddedBroker()
        return _default_broker


def clients_for(config: StreamsConfig, broker: Any = None) -> Clients:
    if config.bootstrap_servers is None:
        from fluvial.io.embedded import EmbeddedClients

        return EmbeddedClients(broker if broker is not None else embedded_broker())
    from fluvial.io.kafka import KafkaClients
    from fluvial.io.per_kind import PerKindClients

    servers = config.bootstrap_servers
    return PerKindClients(KafkaClients(servers, config.kafka_config),
                          KafkaClients(servers, config.client_config("admin")),
                          config.consumer_config, config.producer_config)


class App:
    """One instance of a streams application.

    Instances with the same ``application_id`` share the work through Kafka's consumer group;
    start more (``fluvial run --workers N``, or on other machines) to scale out.
    """

    def __init__(self, topology: Topology, application_id: str | None = None, *,
                 broker: Any = None, **settings: Any) -> None:
        if not isinstance(topology, Topology):
            raise ConfigError(f"App needs a Topology (builder.build()), got "
                              f"{type(topology).__name__}")
        self.topology = topology
        self.config = StreamsConfig.create(application_id=application_id, **settings)
        self.clients = clients_for(self.config, broker)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._active = threading.Event()  # the processing loop is running
        self.error: BaseException | None = None
        self.stream_thread: StreamThread | None = None
        self.global_stores: GlobalStores | None = None
        self.instance: InstanceSlot | None = None
        self.http_port: int | None = None  # set by the AppServer serving this app
        # the application's instances and what each runs: routes app.query, places standbys
        self.directory: Directory | None = None
        # this member's id in the group as the loop last saw it: other threads read this, never
        # the consumer (librdkafka's member id call, made beside a poll, can deadlock on the GIL)
        self.member_id: str | None = None
        self._next_member_check = 0.0

    # -- running --------------------------------------------------------------------------

    def _setup(self) -> StreamThread:
        self._preflight()
        state_lock.acquire(self._state_root)
        try:
            thread = self._setup_topics_and_thread()
        except BaseException:
            state_lock.release(self._state_root)
            raise
        return thread

    @property
    def _state_root(self) -> Path:
        return self.config.state_dir / self.config.application_id

    def _preflight(self) -> None:
        """On a real cluster: a broker answers and accepts us, or one clear error, quickly."""
        if self.config.bootstrap_servers is not None:
            from fluvial.io.kafka_check import check_cluster, security_settings

            kinds = {kind: self.config.client_config(kind)
                     for kind in ("admin", "consumer", "producer")}
            unsecured = [k for k, c in kinds.items() if not security_settings(c)]
            if unsecured and len(unsecured) < len(kinds):
                log.warning("%s client(s) get no security settings (security.protocol, sasl.*, "
                            "ssl.*) while the others do; put them in kafka_config for every "
                            "client", " and ".join(unsecured))
            check_cluster(self.config.bootstrap_servers, list(kinds.values()),
                          self.config.connect_timeout_ms / 1000, self._stop)
            if self._stop.is_set():  # SIGINT/SIGTERM while waiting: nothing started yet
                raise KeyboardInterrupt

    def _broker_name(self) -> str:
        if self.config.bootstrap_servers is not None:
            return self.config.bootstrap_servers
        data_dir = getattr(getattr(self.clients, "broker", None), "data_dir", None)
        return f"embedded, data in {data_dir}" if data_dir else "embedded, in-process"

    def _setup_topics_and_thread(self) -> StreamThread:
        cfg = self.config
        admin = self.clients.admin()
        dead_letter = cfg.error_policy.topic(cfg.application_id) if cfg.on_error.value == \
            "dead_letter" else None
        plan = topics.plan(self.topology, cfg.application_id, admin, cfg.replication_factor,
                           dead_letter, create_missing=cfg.bootstrap_servers is None)
        topics.ensure(admin, plan)
        if self.topology.global_stores:
            self.global_stores = GlobalStores(self.topology.global_stores, self.clients,
                                              cfg.state_dir / cfg.application_id / "global",
                                              cfg.error_policy, cfg.application_id)
            self.global_stores.bootstrap()
        self.instance = claim_slot(cfg.state_dir / cfg.application_id)
        if cfg.num_standby_replicas > 0:
            self._directory()
        thread = StreamThread(self.topology, cfg, self.clients, plan,
                              global_stores=self.global_stores.stores
                              if self.global_stores is not None else None,
                              instance=self.instance, members=self._members)
        thread.subscribe()
        return thread

    def _loop(self) -> None:
        thread = self.stream_thread
        assert thread is not None
        clean = False
        try:
            self._active.set()
            self._started.set()
            while not self._stop.is_set():
                thread.run_once()
                self._note_member_id(thread)
                if self.global_stores is not None:
                    self.global_stores.poll()
            clean = True
        except BaseException as exc:
            self.error = exc
            log.error("application %s stopped: %s", self.config.application_id, exc)
            raise
        finally:
            self._stop.set()  # readiness reports the shutdown from here on
            try:
                thread.close(clean=clean)
            finally:
                self._active.clear()
                if self.global_stores is not None:
                    self.global_stores.close()
                if self.instance is not None:
                    self.instance.release()
                self.stop_serving_queries()
                state_lock.release(self._state_root)

    def _directory(self) -> Directory:
        if self.directory is None:
            self.directory = Directory(self).start()
        return self.directory

    def _members(self) -> list[GroupMember]:
        return self.directory.members() if self.directory is not None else []

    def serve_queries(self, address: str, token: str | None) -> None:
        """Publish this instance's HTTP address in the directory: the others route
        interactive queries for its tasks here, and their dashboards gather this instance's
        view from here (the AppServer calls this)."""
        directory = self._directory()
        directory.address, directory.token = address, token

    def stop_serving_queries(self) -> None:
        if self.directory is not None:
            self.directory.close()
            self.directory = None

    def _note_member_id(self, thread: StreamThread) -> None:
        now = time.monotonic()
        if now >= self._next_member_check:
            self._next_member_check = now + MEMBER_CHECK_S
            self.member_id = thread.consumer.member_id()

    def run(self) -> None:
        """Run in this thread until ``close()``, SIGTERM or SIGINT; re-raise a fatal error."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # from the start: a SIGTERM while the app sets up (a restore) stops it cleanly too
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.stream_thread = self._setup()
            self._announce()
            self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _announce(self) -> None:
        """The start-up banner, once the app is set up."""
        log.info(banner(self.config, self.topology, self._broker_name(), self.http_port))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Finish the batch in hand, commit it, close the tasks (checkpointing their state)
        and leave the group."""
        log.info("signal %d: finishing the batch, committing, leaving the group", signum)
        self._stop.set()

    def start(self) -> App:
        """Run in a background thread; returns once the app has subscribed."""
        self.stream_thread = self._setup()
        self._thread = threading.Thread(target=self._run_background,
                                        name=f"fluvial-{self.config.application_id}",
                                        daemon=True)
        self._announce()
        self._thread.start()
        self._started.wait(30)
        return self

    def _run_background(self) -> None:
        with contextlib.suppress(BaseException):  # kept in self.error for the caller
            self._loop()

    def close(self, timeout: float = 60.0) -> None:
        """Commit what was processed, checkpoint state, leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._active.is_set()

    @property
    def closing(self) -> bool:
        return self._stop.is_set()

    # -- state ----------------------------------------------------------------------------

    def store(self, name: str) -> LocalStoreView:
        """The named store across the tasks this instance holds now."""
        if name not in self.topology.stores:
            raise KeyError(f"no store {name!r}; stores: {', '.join(sorted(self.topology.stores))}")
        return LocalStoreView(self, name)

    def query(self, name: str, replica: str = "active") -> StoreQuery:
        """The named store across the whole application: a key is read where its task runs
        (here, or over HTTP on the instance that owns it), or with ``replica="any"`` /
        ``"standby"`` from a standby copy too; see docs/interactive-queries.md."""
        if name not in self.topology.stores:
            raise KeyError(f"no store {name!r}; stores: {', '.join(sorted(self.topology.stores))}")
        return StoreQuery(self, name, replica)

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalStoreView:
    """A store by name across the tasks this instance holds now (or the global store)."""

    def __init__(self, app: App, name: str) -> None:
        self._app = app
        self.name = name

    def _views(self) -> list[ReadOnlyView]:
        app = self._app
        if app.global_stores is not None and self.name in app.global_stores.stores:
            stores = [app.global_stores.stores[self.name]]
        else:
            thread = app.stream_thread
            stores = thread.stores_named(self.name) if thread is not None else []
        return [ReadOnlyView(store) for store in stores]

    def get(self, key: Any) -> Any:
        for view in self._views():
            value = view.get(key)
            if value is not None:
                return value
        return None

    def all(self) -> Iterator[tuple[Any, Any]]:
        for view in self._views():
            yield from view.all()

    def to_dict(self) -> dict[Any, Any]:
        return dict(self.all())
