"""The ceiling: a hand-written confluent-kafka consume → work → produce loop, no framework.

At-least-once like the frameworks: every ``commit_interval_ms`` it lets the workload flush
what it holds back (changed counts), waits until the broker acknowledged every produced
record, and only then commits the consumed offsets.

    python -m bench.systems.ceiling WORKLOAD BOOTSTRAP APP_ID INPUT OUTPUT COMMIT_MS STATE_DIR
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer


@dataclass(frozen=True)
class Args:
    workload: str
    bootstrap: str
    app_id: str
    input: str
    output: str
    commit_ms: int
    state_dir: str

    @classmethod
    def parse(cls, argv: list[str]) -> Args:
        if len(argv) != 7:
            raise SystemExit(__doc__)
        w, b, a, i, o, c, s = argv
        return cls(w, b, a, i, o, int(c), s)


class CeilingLoop:
    batch = 5000  # as fluvial's max_poll_records

    def __init__(self, args: Args) -> None:
        self.args = args
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": args.app_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            # fluvial's setting (see fluvial.io.kafka): with librdkafka's default (1000 ms) this
            # loop idles on fetches and runs at a third of its speed; a ceiling must not
            "fetch.queue.backoff.ms": 10,
        })
        self.producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
        })
        self._stop = False

    # -- for workloads ----------------------------------------------------------------------

    def topics(self) -> list[str]:
        return [self.args.input]

    def process(self, msgs: list[Message]) -> None:
        raise NotImplementedError

    def before_commit(self) -> None:
        """Produce what was held back (e.g. changed counts) before the commit."""

    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key)
                return
            except BufferError:
                self.producer.poll(0.05)

    # -- the loop ---------------------------------------------------------------------------

    def commit(self) -> None:
        self.before_commit()
        remaining = self.producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} record(s) not acknowledged in 30 s")
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.consumer.subscribe(self.topics())
        interval = self.args.commit_ms / 1000.0
        next_commit = time.monotonic() + interval
        try:
            while not self._stop:
                # Block for the first record only, then take whatever else is already
                # fetched: full batches under load, no waiting for a batch to fill when idle.
                first = self.consumer.poll(0.1)
                msgs = [first, *self.consumer.consume(self.batch - 1, 0)] if first else []
                if msgs:
                    for m in msgs:
                        err = m.error()
                        if err is not None:
                            raise KafkaException(err)
                    self.process(msgs)
                    self.producer.poll(0)
                if time.monotonic() >= next_commit:
                    self.commit()
                    next_commit = time.monotonic() + interval
            self.commit()
        finally:
            self.consumer.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True


def main(argv: list[str]) -> None:
    from bench import workloads

    args = Args.parse(argv)
    workloads.get(args.workload).ceiling_loop(args).run()


if __name__ == "__main__":
    main(sys.argv[1:])
