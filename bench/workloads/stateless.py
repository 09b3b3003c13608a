"""(1) Stateless: JSON decode, filter, map, JSON encode.

Input: key = record index (decimal), value = a payment as JSON (~140 bytes). Records with
``amount >= 50`` (about 58 %) pass; each becomes a smaller JSON object with the amount in EUR.
Output key = input key, so the tracker matches every output to its input without decoding.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from bench.workloads import WITH_SQL, Input, Tracker, Workload, register

RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05}  # same table in BenchApp.java
MIN_AMOUNT = 50.0
BIG_EUR = 100.0
_CURRENCIES = sorted(RATES)
_COUNTRIES = ["DE", "FR", "NL", "GB", "US", "CH", "IT", "ES", "PL", "SE"]
_TAGS = ["web", "app", "pos", "promo", "repeat", "gift", "express", "intl"]

# The same work in ksqlDB's SQL. Back-quoted names keep their case, so the output's JSON
# fields are the DSL's; ksqlDB cannot name an alias twice in one SELECT, so the rounded
# amount is computed again for `big`.
_EUR = ("ROUND(AMOUNT * CASE " + " ".join(f"WHEN CURRENCY = '{c}' THEN {r}E0"
                                          for c, r in RATES.items()) + " END, 2)")
SQL = f"""
CREATE STREAM PAYMENTS (K STRING KEY, ID BIGINT, `user` STRING, AMOUNT DOUBLE,
                        CURRENCY STRING, COUNTRY STRING)
  WITH (KAFKA_TOPIC='{{input}}', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON',
        PARTITIONS={{partitions}});
CREATE STREAM PAYMENTS_EUR WITH (KAFKA_TOPIC='{{output}}', VALUE_FORMAT='JSON') AS
  SELECT K, ID AS `id`, `user`, {_EUR} AS `amount_eur`, {_EUR} >= {BIG_EUR}E0 AS `big`,
         COUNTRY AS `country`
  FROM PAYMENTS WHERE AMOUNT >= {MIN_AMOUNT}E0;
"""


def keep(value: dict[str, Any]) -> bool:
    return value["amount"] >= MIN_AMOUNT


def transform(value: dict[str, Any]) -> dict[str, Any]:
    eur = round(value["amount"] * RATES[value["currency"]], 2)
    return {"id": value["id"], "user": value["user"], "amount_eur": eur,
            "big": eur >= BIG_EUR, "country": value["country"]}


class StatelessTracker(Tracker):
    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[int, int | None] = {}
        self._done: set[int] = set()

    def expect(self, record: Input, ts: int | None) -> None:
        if record.meta:  # passes the filter
            with self.lock:
                self._pending[record.index] = ts

    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        index = int(key or b"-1")
        with self.lock:
            try:
                ts = self._pending.pop(index)
            except KeyError:
                if index in self._done:
                    self.duplicates += 1
                else:
                    self.bad.append(f"unexpected output key {key!r}")
                return
            self._done.add(index)
            if ts is not None:
                self.latencies.append(append_ms - ts)

    def pending(self) -> int:
        return len(self._pending)

    def expected_outputs(self) -> int:
        return len(self._pending) + len(self._done)


@register
class Stateless(Workload):
    name = "stateless"
    title = "(1) stateless: JSON decode, filter, map, encode"
    systems = WITH_SQL

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        out = []
        for i in range(start, start + count):
            value = {
                "id": i,
                "user": f"u{rng.randrange(10000):05d}",
                "amount": round(rng.uniform(0.0, 120.0), 2),
                "currency": rng.choice(_CURRENCIES),
                "country": rng.choice(_COUNTRIES),
                "tags": rng.sample(_TAGS, 2),
                "note": "payment",
            }
            out.append(Input(i, str(i).encode(), orjson.dumps(value), i % partitions,
                             keep(value)))
        return out

    def tracker(self) -> Tracker:
        return StatelessTracker()

    # -- the systems --------------------------------------------------------------------------

    def fluvial_topology(self) -> Any:
        import os

        import fluvial
        from fluvial import serdes

        builder = fluvial.StreamsBuilder()
        (builder.stream(os.environ["BENCH_INPUT"], value_serde=serdes.Json())
            .filter(lambda _k, v: keep(v))
            .map_values(transform)
            .to(os.environ["BENCH_OUTPUT"], value_serde=serdes.Json()))
        return builder.build()

    def sql_script(self, input_topic: str, output_topic: str, partitions: int,
                   app_id: str) -> str:
        return SQL.format(input=input_topic, output=output_topic, partitions=partitions)

    def ceiling_loop(self, args: Any) -> Any:
        from bench.systems.ceiling import CeilingLoop

        loads, dumps = orjson.loads, orjson.dumps

        class Loop(CeilingLoop):
            def process(self, msgs: list[Any]) -> None:
                out = self.args.output
                produce = self.producer.produce
                for m in msgs:
                    v = loads(m.value())
                    if v["amount"] >= MIN_AMOUNT:
                        try:
                            produce(out, dumps(transform(v)), m.key())
                        except BufferError:
                            self.produce(out, m.key(), dumps(transform(v)))

        return Loop(args)

    def quix_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        sdf = app.dataframe(app.topic(input_topic, value_deserializer="json"))
        sdf = sdf.filter(keep).apply(transform)
        sdf.to_topic(app.topic(output_topic, value_serializer="json"))
        return sdf

    def faust_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        source = app.topic(input_topic, key_serializer="raw", value_serializer="json")
        sink = app.topic(output_topic, key_serializer="raw", value_serializer="json")

        @app.agent(source)
        async def stateless(stream: Any) -> None:
            async for key, value in stream.items():
                if keep(value):
                    await sink.send(key=key, value=transform(value))

        return stateless


def fluvial_topology() -> Any:
    """For ``fluvial run bench.workloads.stateless:fluvial_topology``."""
    return Stateless().fluvial_topology()
