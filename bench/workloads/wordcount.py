"""(2) WordCount: split lines into words, repartition by word, count per word.

Input: key = line index (decimal), value = a line of 4-8 words drawn (Zipf-like) from a
2,000-word vocabulary. Output: key = word, value = its running count as a Kafka Long
(8 bytes, big-endian). Systems with a record cache (Kafka Streams, fluvial) emit only the
latest count per word at each commit; the others emit every count. Either way the run is
complete when every word's output has reached its expected total, and the latency of an
output ``(word, n)`` is measured against the n-th occurrence of that word in the input.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

from bench.workloads import WITH_SQL, Input, Tracker, Workload, int64, register

VOCABULARY = 2000
_WORD = re.compile(r"\W+")

# The same work in ksqlDB's SQL: an aggregating query takes no table function, so the words
# are a stream of their own (a topic: one more hop than the DSL's flat_map_values), then
# counted (GROUP BY: a repartition by word, as the DSL).
# SPLIT on ' ' gives split_words' words: the generated lines are lower-case words joined by
# single spaces.
SQL = """
CREATE STREAM LINES (K STRING KEY, LINE STRING)
  WITH (KAFKA_TOPIC='{input}', KEY_FORMAT='KAFKA', VALUE_FORMAT='KAFKA',
        PARTITIONS={partitions});
CREATE STREAM WORDS WITH (KAFKA_TOPIC='{app_id}-words', VALUE_FORMAT='DELIMITED') AS
  SELECT K, EXPLODE(SPLIT(LINE, ' ')) AS WORD FROM LINES;
CREATE TABLE WORD_COUNTS WITH (KAFKA_TOPIC='{output}', VALUE_FORMAT='KAFKA') AS
  SELECT WORD, COUNT(*) AS N FROM WORDS GROUP BY WORD;
"""


def split_words(line: str) -> list[str]:
    return [w for w in _WORD.split(line.lower()) if w]


def _vocabulary() -> tuple[list[str], list[float]]:
    rng = random.Random(20240905)  # fixed: the same words in every run
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** 0.9
                                           for rank in range(VOCABULARY)))
    return ordered, cumulative


class WordCountTracker(Tracker):
    def __init__(self) -> None:
        super().__init__()
        self._expected: dict[str, int] = {}
        self._max: dict[str, int] = {}
        self._occurrences: dict[str, list[int | None]] = {}
        self._incomplete: set[str] = set()

    def expect(self, record: Input, ts: int | None) -> None:
        with self.lock:
            for word in record.meta:
                self._expected[word] = self._expected.get(word, 0) + 1
                self._occurrences.setdefault(word, []).append(ts)
                self._incomplete.add(word)

    def unit(self, key: bytes | None) -> str:
        """What an output key counts (a word here; a key's window for windowed counts)."""
        return (key or b"").decode()

    def _seen(self, key: bytes | None, value: bytes | None, append_ms: int) -> None:
        word = self.unit(key)
        if value is None or len(value) != 8:
            self.bad.append(f"{word}: value {value!r} is not a Long")
            return
        count = int.from_bytes(value, "big", signed=True)
        with self.lock:
            expected = self._expected.get(word, 0)
            if count > expected:
                self.bad.append(f"{word}: count {count} > expected {expected}")
                return
            if count <= self._max.get(word, 0):
                self.duplicates += 1
                return
            self._max[word] = count
            ts = self._occurrences[word][count - 1]
            if ts is not None:
                self.latencies.append(append_ms - ts)
            if count == expected:
                self._incomplete.discard(word)

    def pending(self) -> int:
        return len(self._incomplete)

    def expected_outputs(self) -> int:
        return len(self._expected)  # at least the final count of every word


@register
class WordCount(Workload):
    name = "wordcount"
    title = "(2) WordCount: repartition + count"
    systems = WITH_SQL
    unit = "lines"
    default_records = 50_000  # about 300,000 words

    def __init__(self) -> None:
        self._words, self._cumulative = _vocabulary()

    def generate(self, rng: random.Random, start: int, count: int,
                 partitions: int) -> list[Input]:
        out = []
        for i in range(start, start + count):
            words = rng.choices(self._words, cum_weights=self._cumulative,
                                k=rng.randint(4, 8))
            line = " ".join(words)
            out.append(Input(i, str(i).encode(), line.encode(), i % partitions, words))
        return out

    def tracker(self) -> Tracker:
        return WordCountTracker()

    # -- the systems --------------------------------------------------------------------------

    def fluvial_topology(self) -> Any:
        import os

        import fluvial
        from fluvial import serdes

        builder = fluvial.StreamsBuilder()
        (builder.stream(os.environ["BENCH_INPUT"], value_serde=serdes.String())
            .flat_map_values(split_words)
            .group_by(lambda _key, word: word,  # as BenchApp.java: String serdes
                      fluvial.Grouped("words", key_serde="string", value_serde="string"))
            .count(materialized="counts")
            .to_stream()
            .to(os.environ["BENCH_OUTPUT"], value_serde=serdes.Int64()))
        return builder.build()

    def sql_script(self, input_topic: str, output_topic: str, partitions: int,
                   app_id: str) -> str:
        return SQL.format(input=input_topic, output=output_topic, partitions=partitions,
                          app_id=app_id)

    def ceiling_loop(self, args: Any) -> Any:
        """The same work by hand: lines → words → repartition topic (keyed by word) →
        counts in a dict → at each commit, every changed count to the output and to a
        changelog topic (as a cached, logged store would)."""
        from bench.systems.ceiling import CeilingLoop

        class Loop(CeilingLoop):
            def __init__(self, a: Any) -> None:
                super().__init__(a)
                self.repartition = f"{a.app_id}-words-repartition"
                self.changelog = f"{a.app_id}-counts-changelog"
                self.counts: dict[bytes, int] = {}
                self.dirty: set[bytes] = set()

            def topics(self) -> list[str]:
                return [self.args.input, self.repartition]

            def process(self, msgs: list[Any]) -> None:
                produce = self.producer.produce
                rep, source = self.repartition, self.args.input
                counts, dirty = self.counts, self.dirty
                for m in msgs:
                    if m.topic() == source:
                        for word in split_words(m.value().decode()):
                            w = word.encode()
                            try:
                                produce(rep, w, w)
                            except BufferError:
                                self.produce(rep, w, w)
                    else:
                        w = m.key()
                        counts[w] = counts.get(w, 0) + 1
                        dirty.add(w)

            def before_commit(self) -> None:
                out, log, counts = self.args.output, self.changelog, self.counts
                for w in self.dirty:
                    v = int64(counts[w])
                    self.produce(out, w, v)
                    self.produce(log, w, v)
                self.dirty.clear()

        loop = Loop(args)
        _create_topics(args.bootstrap, [loop.repartition, loop.changelog], args.input)
        return loop

    def quix_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        from quixstreams.models.serializers import Serializer

        class Long(Serializer):
            def __call__(self, value: Any, ctx: Any) -> bytes:
                return int64(value)

        def count(_word: str, state: Any) -> int:
            n: int = state.get("n", 0) + 1
            state.set("n", n)
            return n

        sdf = app.dataframe(app.topic(input_topic, value_deserializer="str"))
        sdf = sdf.apply(split_words, expand=True)
        sdf = sdf.group_by(lambda word: word, name="words", key_serializer="str",
                           value_serializer="str", key_deserializer="str",
                           value_deserializer="str")
        sdf = sdf.apply(count, stateful=True)
        sdf.to_topic(app.topic(output_topic, key_serializer="str", value_serializer=Long()))
        return sdf

    def faust_build(self, app: Any, input_topic: str, output_topic: str) -> Any:
        source = app.topic(input_topic, key_serializer="raw", value_serializer="raw")
        words = app.topic(f"{app.conf.id}-words-repartition", key_serializer="raw",
                          value_serializer="raw", internal=True)
        sink = app.topic(output_topic, key_serializer="raw", value_serializer="raw")
        counts = app.Table("counts", default=int, key_type=str, value_type=int)

        @app.agent(source)
        async def split(stream: Any) -> None:
            async for line in stream:
                for word in split_words(line.decode()):
                    w = word.encode()
                    await words.send(key=w, value=w)

        @app.agent(words)
        async def count(stream: Any) -> None:
            async for w in stream:
                word = w.decode()
                n = counts[word] + 1
                counts[word] = n
                await sink.send(key=w, value=int64(n))

        return split, count


def _create_topics(bootstrap: str, names: list[str], like: str) -> None:
    """Create the ceiling's internal topics with as many partitions as its input."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(like, timeout=30).topics[like].partitions)
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for name, future in futures.items():
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"cannot create {name}: {exc}") from exc


def fluvial_topology() -> Any:
    """For ``fluvial run bench.workloads.wordcount:fluvial_topology``."""
    return WordCount().fluvial_topology()
