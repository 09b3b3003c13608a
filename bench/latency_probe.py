"""A direct latency probe: fluvial in-process, records at a fixed rate, no harness around it.

    python -m bench.latency_probe BOOTSTRAP [--rate 2000] [--seconds 10] [--protocol consumer]

Latency = the output's broker append time (LogAppendTime topic) - the create time the input
carries in its value. It exists to tell fluvial's own tail latency apart from effects of the
harness (subprocesses, SIGSTOP/SIGCONT phases, samplers).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import fluvial
from fluvial.runtime.app import App

PARTITIONS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--protocol", choices=["consumer", "classic"], default="consumer")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    source, sink = f"probe-{run}-in", f"probe-{run}-out"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics([
            NewTopic(source, PARTITIONS, 1),
            NewTopic(sink, PARTITIONS, 1, config={"message.timestamp.type": "LogAppendTime"}),
    ]).values():
        future.result()
    builder = fluvial.StreamsBuilder()
    builder.stream(source).filter(lambda _k, v: v["n"] >= 0).to(sink)

    latencies: list[int] = []
    done = threading.Event()
    reader = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"probe-{run}"})
    reader.assign([TopicPartition(sink, p, 0) for p in range(PARTITIONS)])

    def read() -> None:
        while not done.is_set():
            for m in reader.consume(1000, 0.1):
                if m.error() is None:
                    latencies.append(m.timestamp()[1] - orjson.loads(m.value())["t"])

    with tempfile.TemporaryDirectory() as state_dir, App(
            builder.build(), f"probe-{run}", bootstrap_servers=args.bootstrap,
            group_protocol=args.protocol, state_dir=state_dir):
        thread = threading.Thread(target=read)
        thread.start()
        producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})
        total = int(args.rate * args.seconds)
        start = time.monotonic()
        for n in range(total):
            producer.produce(source, key=str(n).encode(),
                             value=orjson.dumps({"n": n, "t": int(time.time() * 1000)}))
            producer.poll(0)
            ahead = start + (n + 1) / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the input, not synchronisation
        producer.flush()
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        thread.join()
    reader.close()
    ordered = sorted(latencies)
    if not ordered:
        raise SystemExit("no outputs arrived")
    def pick(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    print(f"{len(ordered)} of {total} records: p50 {pick(0.5)} ms, p99 {pick(0.99)} ms, "
          f"max {ordered[-1]} ms ({args.protocol} protocol, {args.rate}/s)")


if __name__ == "__main__":
    main()
