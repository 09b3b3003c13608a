"""``python -m bench.nexmark``: generate events (to Kafka or a file), measure the generator,
and run the smoke check of q0-q5, q7, q8 against their references."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from bench.nexmark.check import check
from bench.nexmark.generator import BID, Generator, GeneratorConfig
from bench.nexmark.queries import QUERIES
from bench.nexmark.sink import produce, union_value, write_jsonl
from bench.nexmark.stateful import STATEFUL_QUERIES, check_query


def _generator(args: argparse.Namespace) -> Generator:
    return Generator(GeneratorConfig(seed=args.seed, events_per_second=args.rate))


def cmd_generate(args: argparse.Namespace) -> int:
    events = _generator(args).events(args.start, args.events)
    started = time.perf_counter()
    if args.out:
        written = {str(args.out): write_jsonl(events, args.out)}
    else:
        written = produce(events, args.bootstrap_servers, args.prefix,
                          per_type=args.topics in ("per-type", "both"),
                          union=args.topics in ("union", "both"))
    seconds = time.perf_counter() - started
    for target, count in written.items():
        print(f"{target}: {count:,} records")
    print(f"{args.events:,} events in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    """Events/s of generation alone, and with the union JSON encoding (CPU time)."""
    generator, dumps = _generator(args), orjson.dumps
    for _ in generator.events(0, 50_000):  # fills the one-time cache of channel URLs
        pass
    cpu = time.process_time()
    for _ in generator.events(0, args.events):
        pass
    bare = time.process_time() - cpu
    cpu = time.process_time()
    size = sum(len(dumps(union_value(k, e))) for k, e in generator.events(0, args.events))
    encoded = time.process_time() - cpu
    print(f"generate: {args.events / bare:,.0f} events/s (CPU)")
    print(f"generate + encode (union JSON): {args.events / encoded:,.0f} events/s (CPU), "
          f"{size / args.events:.0f} bytes/event")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    """Each query in the TestDriver on ``--events`` events, checked against its reference."""
    import fluvial

    events = list(_generator(args).events(0, args.events))
    bids = [e for k, e in events if k == BID]
    failed = 0
    names = args.queries.split(",")
    for name in (n for n in names if n in STATEFUL_QUERIES):
        stateful = STATEFUL_QUERIES[name]
        config = GeneratorConfig(seed=args.seed, events_per_second=args.window_rate)
        started = time.perf_counter()
        result = check_query(stateful, list(Generator(config).events(0, args.events)))
        failed += not result.ok
        print(f"{name} {stateful.title}: {result.summary()} ({args.events:,} events at "
              f"{args.window_rate}/s in {time.perf_counter() - started:.2f} s, TestDriver)")
    for name in (n for n in names if n not in STATEFUL_QUERIES):
        query = QUERIES[name]
        driver = fluvial.TestDriver(query.topology("bids", "out"))
        source = driver.input_topic("bids")
        started = time.perf_counter()
        for bid in bids:
            source.pipe(bid, key=str(bid["auction"]), timestamp=bid["dateTime"])
        seconds = time.perf_counter() - started
        result = check(driver.output_topic("out").read_key_values(), query.reference(bids))
        failed += not result.ok
        print(f"{name} {query.title}: {result.summary()} "
              f"({len(bids):,} bids in {seconds:.2f} s, TestDriver)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nexmark", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("generate", "write events to Kafka or to a JSON-lines file"),
                        ("speed", "measure the generator's events/s"),
                        ("smoke", "the queries in the TestDriver against their references")):
        sub = commands.add_parser(name, help=help_)
        sub.add_argument("--events", type=int, default=100_000)
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--rate", type=int, default=10_000,
                         help="event-time rate, events/s (spacing of dateTime, not a throttle)")
    generate = commands.choices["generate"]
    generate.add_argument("--start", type=int, default=0, help="first event number")
    target = generate.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="a JSON-lines file (union layout)")
    target.add_argument("--bootstrap-servers")
    generate.add_argument("--prefix", default="nexmark", help="topics <prefix>-bid ...")
    generate.add_argument("--topics", choices=("per-type", "union", "both"), default="both")
    smoke = commands.choices["smoke"]
    smoke.add_argument("--queries", default=",".join(sorted({*QUERIES, *STATEFUL_QUERIES})))
    smoke.add_argument("--window-rate", type=int, default=100,
                       help="event-time rate for q3-q8, low enough that 10 s windows close")
    args = parser.parse_args(argv)
    handler = {"generate": cmd_generate, "speed": cmd_speed, "smoke": cmd_smoke}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
