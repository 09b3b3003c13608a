"""Schema Registry formats: Avro, JSON Schema and Protobuf serdes in the Confluent wire format.

Needs the ``registry`` extra (``pip install 'fluvial[registry]'``). See docs/schema-registry.md.
"""

from fluvial.errors import RegistryUnavailableError
from fluvial.schema_registry.serdes import (
    AvroSerde,
    JsonSchemaSerde,
    ProtobufSerde,
    RecordNameStrategy,
    Registry,
    RegistrySerde,
    SubjectNameStrategy,
    TopicNameStrategy,
    TopicRecordNameStrategy,
    registry_client,
)
from fluvial.schema_registry.wire import frame, schema_id_of

__all__ = ["AvroSerde", "JsonSchemaSerde", "ProtobufSerde", "RecordNameStrategy", "Registry",
           "RegistrySerde", "RegistryUnavailableError", "SubjectNameStrategy",
           "TopicNameStrategy", "TopicRecordNameStrategy", "frame", "registry_client",
           "schema_id_of"]
