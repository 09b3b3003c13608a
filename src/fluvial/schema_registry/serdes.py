"""Avro, JSON Schema and Protobuf serdes on a schema registry, in the Confluent wire format.

The encoding, the registry protocol and its caches are confluent-kafka's own
(``confluent_kafka.schema_registry``, over fastavro, jsonschema and protobuf); what this module
adds is what a streams app needs around them:

- the subject follows the topic the serde is used on (``for_topic``, called by the DSL for a
  stream's, a table's and a sink's topic), so ``builder.stream("t", value_serde=AvroSerde(...))``
  registers under ``t-value`` and ``.to("out")`` under ``out-value``;
- every failure is a :class:`SerdeError` in one line naming the subject or schema id and why, so
  the error policy (stop, skip, dead letter) handles the record with its location, except a
  registry that does not answer: :class:`RegistryUnavailableError` stops the app whatever the
  policy, since skipping would drop good records.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fluvial.errors import ConfigError, RegistryUnavailableError
from fluvial.io.serdes import SerdeError
from fluvial.schema_registry.wire import schema_id_of

try:
    from confluent_kafka.schema_registry import (
        SchemaRegistryClient,
        SchemaRegistryError,
        record_subject_name_strategy,
        topic_record_subject_name_strategy,
        topic_subject_name_strategy,
    )
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from httpx2 import TransportError  # the registry client's HTTP stack
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"fluvial's schema registry serdes need confluent-kafka's schema registry "
                      f"extras ({exc}): pip install 'fluvial[registry]'") from exc

#: ``(context, record name) -> subject``; the context is None for a serde used on no topic
SubjectNameStrategy = Callable[[SerializationContext | None, str | None], str | None]

#: ``<topic>-key`` / ``<topic>-value`` (the default): one schema lineage per topic
TopicNameStrategy: SubjectNameStrategy = topic_subject_name_strategy
#: the record's full name: one lineage per record type, whatever the topic
RecordNameStrategy: SubjectNameStrategy = record_subject_name_strategy
#: ``<topic>-<record name>``: several record types on one topic, each with its lineage
TopicRecordNameStrategy: SubjectNameStrategy = topic_record_subject_name_strategy

#: the strategies that name a subject after the topic, by the names used here
_NEEDS_TOPIC = {TopicNameStrategy: "TopicNameStrategy",
                TopicRecordNameStrategy: "TopicRecordNameStrategy"}

Registry = str | Mapping[str, Any] | SchemaRegistryClient


def _no_subject(ctx: SerializationContext | None, record_name: str | None) -> None:
    """Readers find the writer's schema by the id in the record and need no subject (one would
    only serve the registry's data-contract rules and latest-version readers, not used here)."""
    return None


_READER_CONF: dict[str, Any] = {"subject.name.strategy": _no_subject}


def registry_client(registry: Registry) -> SchemaRegistryClient:
    """A registry client from a URL or a confluent-kafka client config (``{"url": ...,
    "basic.auth.user.info": ...}``); a client passes through, so serdes can share its cache."""
    if isinstance(registry, SchemaRegistryClient):
        return registry
    if isinstance(registry, str):
        return SchemaRegistryClient({"url": registry})
    if isinstance(registry, Mapping):
        return SchemaRegistryClient(dict(registry))
    raise ConfigError(f"a schema registry is a URL, a client config dict or a "
                      f"SchemaRegistryClient, not a {type(registry).__name__}")


def _schema_json(owner: str, schema: str | None) -> dict[str, Any]:
    """The schema's JSON object, for its record name ({} for none, or for a schema that is not
    an object, such as ``"string"``)."""
    if schema is None:
        return {}
    try:
        parsed = json.loads(schema)
    except ValueError as exc:
        raise ConfigError(f"{owner}: the schema is not JSON: {exc}") from None
    return parsed if isinstance(parsed, dict) else {}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class RegistrySerde:
    """What the three formats share: the registry, the subject, the caches and the errors."""

    format_name: ClassVar[str] = ""
    schema_noun: ClassVar[str] = ""  # "Avro schema", "JSON Schema", ...

    def __init__(self, registry: Registry, *,
                 subject_strategy: SubjectNameStrategy = TopicNameStrategy,
                 auto_register: bool = True, use_latest: bool = False,
                 topic: str | None = None, is_key: bool = False) -> None:
        if auto_register and use_latest:
            raise ConfigError(f"{type(self).__name__}: auto_register=True and use_latest=True "
                              f"contradict each other (write with the schema given, registering "
                              f"it, or with the subject's latest registered one): choose one")
        self.registry = registry_client(registry)
        self.subject_strategy = subject_strategy
        self.auto_register = auto_register
        self.use_latest = use_latest
        self.topic = topic
        self.is_key = is_key
        self._bound: dict[tuple[str, bool], RegistrySerde] = {}  # shared by every binding
        self._ctx = self._make_context()
        self._writer: Callable[[Any, SerializationContext | None], bytes | None] | None = None
        self._reader: Callable[[bytes, SerializationContext | None], Any] | None = None

    # -- binding to a topic ---------------------------------------------------------------

    def for_topic(self, topic: str, is_key: bool) -> RegistrySerde:
        """This serde writing ``topic``'s keys or values: its subject is named after them.

        One binding per topic and side, shared, so each keeps its registry lookups cached.
        """
        if (self.topic, self.is_key) == (topic, is_key):
            return self
        bound = self._bound.get((topic, is_key))
        if bound is None:
            bound = copy.copy(self)
            bound.topic, bound.is_key = topic, is_key
            bound._ctx = bound._make_context()
            bound._writer = bound._reader = None
            self._bound[(topic, is_key)] = bound
        return bound

    def _make_context(self) -> SerializationContext | None:
        """What confluent-kafka's serdes are told of the record (made once per binding)."""
        if self.topic is None:
            return None
        return SerializationContext(self.topic, MessageField.KEY if self.is_key
                                    else MessageField.VALUE)

    def subject(self, value: Any = None) -> str:
        """The subject a value is written under (for messages; the serializer names its own)."""
        try:
            return str(self.subject_strategy(self._ctx, self._record_name(value)))
        except Exception as exc:  # a strategy that needs what it was not given
            return f"<no subject: {_one_line(exc)}>"

    # -- the format's part ----------------------------------------------------------------

    def _record_name(self, value: Any) -> str | None:
        raise NotImplementedError

    def _make_writer(self, conf: dict[str, Any]) -> Callable[..., bytes | None]:
        raise NotImplementedError

    def _make_reader(self) -> Callable[..., Any]:
        raise NotImplementedError

    def _check_can_write(self, schema: str | None) -> None:
        if schema is None and not self.use_latest:
            raise SerdeError(f"{type(self).__name__} has no schema to write with: pass one, or "
                             f"auto_register=False, use_latest=True to write with the "
                             f"subject's latest")

    def _writer_conf(self) -> dict[str, Any]:
        return {"auto.register.schemas": self.auto_register,
                "use.latest.version": self.use_latest,
                "subject.name.strategy": self.subject_strategy}

    # -- Serde ----------------------------------------------------------------------------

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if self.topic is None and self.subject_strategy in _NEEDS_TOPIC:
            raise SerdeError(f"{self.format_name} serde has no topic to name its subject after "
                             f"({_NEEDS_TOPIC[self.subject_strategy]}): use it as a stream's, "
                             f"table's or sink's serde, or pass topic=...")
        try:
            if self._writer is None:
                self._writer = self._make_writer(self._writer_conf())
            return self._writer(value, self._ctx)
        except SerdeError:
            raise
        except SchemaRegistryError as exc:
            raise SerdeError(self._refusal(exc, value)) from None
        except TransportError as exc:
            raise self._unavailable(exc) from None
        except Exception as exc:
            raise SerdeError(f"{self.format_name} serde cannot write {_short(value)} under "
                             f"subject {self.subject(value)!r}: {_one_line(exc)}") from None

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        schema_id = schema_id_of(data)
        try:
            if self._reader is None:
                self._reader = self._make_reader()
            return self._reader(data, self._ctx)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SerdeError(f"schema id {schema_id} is not in the schema registry at "
                                 f"{self._url()}: {_one_line(exc.error_message)}") from None
            raise SerdeError(f"the schema registry at {self._url()} answered HTTP "
                             f"{exc.http_status_code} for schema id {schema_id}: "
                             f"{_one_line(exc.error_message)}") from None
        except TransportError as exc:
            raise self._unavailable(exc) from None
        except Exception as exc:
            raise SerdeError(f"{self.format_name} record of schema id {schema_id} cannot be "
                             f"read: {type(exc).__name__}: {_one_line(exc)}") from None

    # -- errors ---------------------------------------------------------------------------

    def _url(self) -> str:
        # the client keeps its URLs on its REST client only
        urls = getattr(getattr(self.registry, "_rest_client", None), "base_urls", None)
        return ", ".join(urls) if isinstance(urls, list) else "<unknown URL>"

    def _unavailable(self, exc: Exception) -> RegistryUnavailableError:
        return RegistryUnavailableError(f"the schema registry at {self._url()} did not answer "
                                        f"({type(exc).__name__}: {_one_line(exc)})")

    def _refusal(self, exc: SchemaRegistryError, value: Any) -> str:
        subject, why = self.subject(value), _one_line(exc.error_message)
        status = exc.http_status_code
        if status == 409:
            return (f"the schema registry refused the {self.schema_noun} for subject "
                    f"{subject!r}: incompatible with its registered versions under the "
                    f"subject's compatibility level: {why}")
        if status == 422:
            return (f"the schema registry refused the {self.schema_noun} for subject "
                    f"{subject!r} as invalid: {why}")
        if status == 404 and self.use_latest:
            return (f"subject {subject!r} has no registered version to write with "
                    f"(use_latest=True): {why}")
        if status == 404:
            return (f"subject {subject!r} has no such {self.schema_noun} registered and "
                    f"auto_register is off: register it first: {why}")
        return (f"the schema registry at {self._url()} answered HTTP {status} for subject "
                f"{subject!r}: {why}")


class AvroSerde(RegistrySerde):
    """Avro records (dicts) in the registry's wire format.

    ``schema`` (Avro JSON text) is the writer's schema, registered under the subject unless
    ``auto_register=False``; it is also the reader's schema, so records written with an older
    compatible version are read into its shape (new fields get their defaults). Without it,
    records are read as written, and writing needs ``use_latest=True``.
    """

    format_name = "Avro"
    schema_noun = "Avro schema"

    def __init__(self, registry: Registry, schema: str | None = None, **options: Any) -> None:
        super().__init__(registry, **options)
        self.schema = schema
        parsed = _schema_json("AvroSerde", schema)
        name, namespace = parsed.get("name"), parsed.get("namespace")
        self._name: str | None = None
        if isinstance(name, str):
            self._name = name if "." in name or not namespace else f"{namespace}.{name}"

    def _record_name(self, value: Any) -> str | None:
        return self._name

    def _make_writer(self, conf: dict[str, Any]) -> Callable[..., bytes | None]:
        self._check_can_write(self.schema)
        return AvroSerializer(self.registry, self.schema, conf=conf)

    def _make_reader(self) -> Callable[..., Any]:
        return AvroDeserializer(self.registry, self.schema, conf=_READER_CONF)


class JsonSchemaSerde(RegistrySerde):
    """JSON values checked against a JSON Schema (``schema``, JSON text) when written and read.

    The record name that ``RecordNameStrategy`` uses is the schema's ``title``.
    """

    format_name = "JSON Schema"
    schema_noun = "JSON Schema"

    def __init__(self, registry: Registry, schema: str | None = None, **options: Any) -> None:
        super().__init__(registry, **options)
        self.schema = schema
        title = _schema_json("JsonSchemaSerde", schema).get("title")
        self._title = title if isinstance(title, str) else None

    def _record_name(self, value: Any) -> str | None:
        return self._title

    def _make_writer(self, conf: dict[str, Any]) -> Callable[..., bytes | None]:
        self._check_can_write(self.schema)
        return JSONSerializer(self.schema, self.registry, conf=conf)

    def _make_reader(self) -> Callable[..., Any]:
        return JSONDeserializer(self.schema, schema_registry_client=self.registry,
                                conf=_READER_CONF)


class ProtobufSerde(RegistrySerde):
    """Protobuf messages of ``message_type`` (a generated message class), registered with the
    ``.proto`` files it imports as schema references; the record name is the message's full name.
    """

    format_name = "Protobuf"
    schema_noun = "Protobuf schema"

    def __init__(self, registry: Registry, message_type: type, **options: Any) -> None:
        super().__init__(registry, **options)
        descriptor = getattr(message_type, "DESCRIPTOR", None)
        if descriptor is None:
            raise ConfigError(f"ProtobufSerde needs a generated protobuf message class, not "
                              f"{message_type!r}")
        self.message_type = message_type
        self._name: str = descriptor.full_name

    def _record_name(self, value: Any) -> str | None:
        return self._name

    def _writer_conf(self) -> dict[str, Any]:
        return {**super()._writer_conf(), "use.deprecated.format": False}

    def _make_writer(self, conf: dict[str, Any]) -> Callable[..., bytes | None]:
        return ProtobufSerializer(self.message_type, self.registry, conf=conf)

    def _make_reader(self) -> Callable[..., Any]:
        return ProtobufDeserializer(self.message_type,
                                    {**_READER_CONF, "use.deprecated.format": False},
                                    schema_registry_client=self.registry)
