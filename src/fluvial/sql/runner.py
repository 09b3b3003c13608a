"""Persistent queries of a SQL script running as a fluvial ``App`` (embedded broker or Kafka).

The script's statements run first: its sources' topics and its queries' sink topics are
created (with the PARTITIONS given, else one), INSERT INTO ... VALUES records are produced,
and every persistent query is compiled into one topology that the returned ``App`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fluvial.io.client import TopicSpec
from fluvial.runtime.app import App
from fluvial.sql.engine import Engine, Result
from fluvial.sql.udfs import FunctionRegistry

#: ksqlDB's answer to a record it cannot read: log it and go on (its processing log)
DEFAULT_ON_ERROR = "skip"


def prepare(script: str, *, broker: Any = None, properties: dict[str, Any] | None = None,
            functions: FunctionRegistry | None = None,
            **settings: Any) -> tuple[App, Sequence[Result]]:
    """Run ``script``'s statements and build the app of its queries (not started yet).

    ``functions``: the Python functions (UDFs, UDAFs, UDTFs) the script may call;
    ``properties`` are ksqlDB's (``ksql.schema.registry.url`` for AVRO, ...); ``settings``
    are ``App``'s (``application_id``, ``bootstrap_servers``, ...)."""
    inserts: list[tuple[str, bytes | None, bytes | None, int]] = []
    engine = Engine(on_insert=lambda *record: inserts.append(record), properties=properties,
                    functions=functions)
    results = engine.execute(script)
    settings.setdefault("on_error", DEFAULT_ON_ERROR)
    app = App(engine.topology(), broker=broker, **settings)
    topics = {s.topic: s.partitions for s in engine.sources.values()}
    app.clients.admin().create_topics([TopicSpec(t, n) for t, n in sorted(topics.items())])
    if inserts:
        producer = app.clients.producer({})
        for topic, key, value, timestamp in inserts:
            producer.produce(topic, key, value, timestamp)
        producer.flush(30.0)
    return app, results
