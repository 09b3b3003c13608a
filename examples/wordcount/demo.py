"""``make demo``: WordCount on the embedded broker, with nothing to install.

Feeds a sample text into TextLinesTopic, runs the WordCount app, prints each count as it
changes on WordsWithCountsTopic, and ends with the top words.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time

from examples.wordcount.app import INPUT, OUTPUT, build, split_words
from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients
from fluvial.io.serdes import Int64Serde
from fluvial.runtime.app import App

TEXT = """\
Highly scalable streaming microservices with Kafka Streams
Kafka Streams is a library, not a framework: embed it in any application
Kafka is the shared, replicated backbone of every streaming microservice
State lives in local stores backed by changelog topics in Kafka
Scale out by starting more instances of the same application
"""


def main() -> int:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 3)
    broker.create_topic(OUTPUT, 3)
    lines = [line for line in TEXT.splitlines() if line.strip()]
    expected = collections.Counter(w for line in lines for w in split_words(line))

    reader = EmbeddedClients(broker).consumer("wordcount-demo-reader", {})
    seen: dict[str, int] = {}
    longs = Int64Serde()

    def on_partitions(_: object) -> None:
        pass

    reader.subscribe([OUTPUT], on_partitions, on_partitions, on_partitions)
    with tempfile.TemporaryDirectory() as state_dir:
        app = App(build(), "wordcount-demo", broker=broker, state_dir=state_dir,
                  commit_interval_ms=200)
        app.start()
        print(f"WordCount on the embedded broker; feeding {len(lines)} lines into {INPUT}\n")
        for line in lines:
            broker.append(INPUT, None, line.encode(), int(time.time() * 1000))
        deadline = time.monotonic() + 30
        while seen != dict(expected) and time.monotonic() < deadline:
            for m in reader.poll_batch(1000, 0.2):
                word, count = m.key().decode(), longs.deserialize(m.value())
                seen[word] = count
                print(f"  {OUTPUT}: {word:>14} -> {count}")
        app.close()
        reader.close()
        if app.error is not None:
            print(f"the app failed: {app.error}", file=sys.stderr)
            return 1
    if seen != dict(expected):
        print("counts did not converge in time", file=sys.stderr)
        return 1
    top = ", ".join(f"{w} {c}" for w, c in expected.most_common(5))
    print(f"\nDone: {sum(expected.values())} words, {len(expected)} distinct; top: {top}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: the clean-ups ran on the way out; no traceback
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
