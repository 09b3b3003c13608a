"""Where the scoring operator gets its model: fixed at build time, or from a models topic.

Models as data: a compacted topic holds model files, keyed by model name. It is read as a
global table (every instance holds every model, loaded before processing starts, followed
between batches), so publishing a file swaps the model live, no restart; publishing an old
file rolls back; a tombstone (``None``) withdraws the model.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from fluvial.dsl.options import Materialized
from fluvial.io.client import Clients, TopicSpec
from fluvial.ml.model import (
    Model,
    ModelError,
    ModelInfo,
    load_model,
    model_type,
    read_envelope,
)
from fluvial.processing.processor import ProcessorContext

if TYPE_CHECKING:
    from fluvial.dsl.builder import StreamsBuilder

log = logging.getLogger("fluvial.ml")

#: largest model file published uncompressed; bigger ones are gzipped (Kafka's default
#: message limit is 1 MB)
COMPRESS_ABOVE = 512 * 1024
MODELS_TOPIC_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(16 * 1024 * 1024)}


class ModelReader(Protocol):
    def current(self) -> Model | None:
        """The model to use for the batch about to run (called once per batch)."""
        ...


class ModelSource(Protocol):
    """Gives each scoring processor a reader when the processor starts."""

    def reader(self, context: ProcessorContext) -> ModelReader: ...


class FixedModel:
    """A model given at build time; it never changes."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def reader(self, context: ProcessorContext) -> FixedModel:
        return self

    def current(self) -> Model:
        return self.model

    def __repr__(self) -> str:
        return f"FixedModel({self.model.name!r} {self.model.version!r})"


class ModelCache:
    """Loaded models by the sha256 of their file, so that the tasks of a process share one
    copy and a rollback to a recent version loads nothing. Files of a type that must be
    compiled first can be compiled in the background (``build``)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._models: OrderedDict[str, Model] = OrderedDict()
        self._builds: dict[str, Future[None]] = {}
        self._builder: ThreadPoolExecutor | None = None
        self.loads = 0

    def get(self, data: bytes) -> Model:
        digest = hashlib.sha256(data).hexdigest()
        model = self._models.get(digest)
        if model is None:
            model = load_model(data)
            self.loads += 1
            self._models[digest] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(digest)
        return model

    def ready(self, data: bytes) -> bool:
        """Whether ``get(data)`` is quick: loaded already, or a type with nothing to compile
        (or compiled already). A file that does not parse is "ready": ``get`` says why."""
        if hashlib.sha256(data).hexdigest() in self._models:
            return True
        try:
            info, payload = read_envelope(data)
            return model_type(info).ready(info, payload)
        except ModelError:
            return True

    def build(self, data: bytes) -> Future[None]:
        """Compile ``data``'s model on a background thread (one compile at a time); the
        future fails with the reason if it cannot be."""
        digest = hashlib.sha256(data).hexdigest()
        future = self._builds.get(digest)
        if future is None or (future.done() and future.exception() is not None):
            if self._builder is None:
                self._builder = ThreadPoolExecutor(1, thread_name_prefix="fluvial-model-build")
            future = self._builder.submit(_build, data)
            self._builds[digest] = future
        return future


def _build(data: bytes) -> None:
    info, payload = read_envelope(data)
    kind = model_type(info)
    if kind.build is not None:
        kind.build(info, payload)


class ModelTopic:
    """A models topic read as a global table: ``ModelTopic(builder, "models")``, then
    ``.model("airline-delay")`` is a source for ``fluvial.ml.score``.

    Create it once per builder and topic. Its store (``<topic>-models`` unless named) is kept
    in memory: a few model files.
    """

    def __init__(self, builder: StreamsBuilder, topic: str, store: str | None = None,
                 cache_size: int = 4) -> None:
        self.topic = topic
        self.store = store or f"{topic}-models"
        builder.global_table(topic, key_serde="string", value_serde="bytes",
                             materialized=Materialized(self.store, persistent=False))
        self.cache = ModelCache(cache_size)

    def model(self, name: str) -> TopicModel:
        return TopicModel(self, name)


class TopicModel:
    """The model published under ``name`` on a ``ModelTopic``."""

    def __init__(self, topic: ModelTopic, name: str) -> None:
        self.topic = topic
        self.name = name

    def reader(self, context: ProcessorContext) -> TopicModelReader:
        return TopicModelReader(context.get_store(self.topic.store), self.name,
                                self.topic.cache, self.topic.topic)

    def __repr__(self) -> str:
        return f"TopicModel({self.topic.topic!r}, {self.name!r})"


class TopicModelReader:
    """Looks the model up once per batch; loads a new file once, through the cache.

    A file that does not load is logged and counted in ``load_errors``; the model in use
    stays (a bad publish never stops scoring). A file that must be compiled first is compiled
    in the background while the model in use keeps scoring, and swapped in at the first batch
    after; with no model in use yet, the batch waits for it. A tombstone withdraws the model.
    """

    def __init__(self, store: Any, name: str, cache: ModelCache, topic: str) -> None:
        self._store = store
        self._name = name
        self._cache = cache
        self._topic = topic
        self._raw: bytes | None = None
        self._model: Model | None = None
        self._building: Future[None] | None = None
        self.load_errors = 0

    def current(self) -> Model | None:
        entry = self._store.get(self._name)
        raw = None if entry is None else entry[0]  # global stores keep (value, timestamp)
        if raw is self._raw or (raw is not None and raw == self._raw):
            if self._building is not None and self._building.done():
                self._swap_built()
            return self._model
        self._raw = raw
        self._building = None
        if raw is None:
            if self._model is not None:
                log.warning("model %r withdrawn from topic %r (tombstone)", self._name,
                            self._topic)
            self._model = None
            return None
        if self._model is not None and not self._cache.ready(raw):
            log.info("model %r: compiling a new version off the scoring path; %s scores "
                     "meanwhile", self._name, self._model.version)
            self._building = self._cache.build(raw)
            return self._model
        self._load(raw)
        return self._model

    def _swap_built(self) -> None:
        assert self._building is not None and self._raw is not None
        failed = self._building.exception()
        self._building = None
        if failed is not None:
            self._failed(failed)
        else:
            self._load(self._raw)

    def _load(self, raw: bytes) -> None:
        try:
            model = self._cache.get(raw)
        except Exception as exc:
            self._failed(exc)
            return
        if self._model is not None and model is not self._model:
            log.info("model %r: version %s replaces %s", self._name, model.version,
                     self._model.version)
        self._model = model

    def _failed(self, exc: BaseException) -> None:
        self.load_errors += 1
        log.error("model %r on topic %r does not load (%s); still using %s", self._name,
                  self._topic, exc, "none" if self._model is None else repr(self._model.version))


def as_source(model: Model | ModelSource) -> ModelSource:
    if isinstance(model, Model):
        return FixedModel(model)
    if hasattr(model, "reader"):
        return model
    raise TypeError(f"expected a Model or a model source (ModelTopic.model(name)), got "
                    f"{type(model).__name__}")


# -- publishing ---------------------------------------------------------------------------


def _clients(target: Any) -> Clients:
    if isinstance(target, str):
        from fluvial.io.kafka import KafkaClients

        return KafkaClients(target)
    from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients

    if isinstance(target, EmbeddedBroker):
        return EmbeddedClients(target)
    clients = getattr(target, "clients", None)  # an App
    if clients is not None and hasattr(clients, "producer"):
        return clients
    if hasattr(target, "producer") and hasattr(target, "admin"):
        return target
    raise TypeError(f"publish_model needs bootstrap servers, Clients, an EmbeddedBroker, an "
                    f"App or a TestDriver; got {type(target).__name__}")


def ensure_models_topic(target: Any, topic: str, replication: int = -1) -> None:
    """Create the models topic (1 partition, compacted, 16 MiB messages) if it is missing."""
    _clients(target).admin().create_topics(
        [TopicSpec(topic, 1, replication, dict(MODELS_TOPIC_CONFIG))])


def publish_model(target: Any, topic: str, model_file: bytes, *, name: str | None = None,
                  create_topic: bool = True, timeout: float = 30.0) -> ModelInfo:
    """Publish a model file to a models topic, keyed by ``name`` (default: the file's).

    ``target``: bootstrap servers (``"host:9092"``), a ``Clients``, an ``EmbeddedBroker``,
    an ``App`` (its cluster) or a ``TestDriver`` (piped in). The file is checked first (a
    file that does not parse is refused here, not in the apps). Republishing an older file
    is a rollback. Returns the file's metadata.
    """
    info, _ = read_envelope(model_file)
    key = name or info.name
    value = model_file if len(model_file) <= COMPRESS_ABOVE or model_file[:2] == b"\x1f\x8b" \
        else gzip.compress(model_file, mtime=0)
    from fluvial.testing.driver import TestDriver

    if isinstance(target, TestDriver):
        target.input_topic(topic, key_serde="string", value_serde="bytes").pipe(value, key=key)
        return info
    clients = _clients(target)
    if create_topic:
        ensure_models_topic(clients, topic)
    producer = clients.producer({"message.max.bytes": 16 * 1024 * 1024 + 4096})
    try:
        producer.produce(topic, key.encode(), value, _now_ms())
        producer.flush(timeout)
    finally:
        producer.close()
    return info


def withdraw_model(target: Any, topic: str, name: str, timeout: float = 30.0) -> None:
    """Publish a tombstone: apps scoring with ``name`` stop (their error policy applies)."""
    from fluvial.testing.driver import TestDriver

    if isinstance(target, TestDriver):
        target.input_topic(topic, key_serde="string", value_serde="bytes").pipe(None, key=name)
        return
    producer = _clients(target).producer({})
    try:
        producer.produce(topic, name.encode(), None, _now_ms())
        producer.flush(timeout)
    finally:
        producer.close()


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


__all__ = ["FixedModel", "ModelCache", "ModelError", "ModelReader", "ModelSource",
           "ModelTopic", "TopicModel", "TopicModelReader", "as_source", "ensure_models_topic",
           "publish_model", "withdraw_model"]
