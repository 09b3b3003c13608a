"""``python -m bench``: run the benchmarks and write bench/results/<run>/.

    python -m bench                      # every system x workload, default sizes
    python -m bench --scale 0.25         # smaller (or --records N for every workload)
    python -m bench --smoke              # a few hundred records: does every runner work?
    python -m bench --systems fluvial-1w,ceiling --workloads stateless
    python -m bench --profile            # also py-spy profiles of fluvial (profile-notes.md)

A local Kafka broker is started with tools.kafka_cluster.KafkaCluster (or pass --bootstrap).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCRATCH = RESULTS / "tmp"  # ignored by git: logs, state, smoke runs

log = logging.getLogger("bench")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    with contextlib.suppress(AttributeError, OSError):
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    return info


def base_versions() -> dict[str, str]:
    import confluent_kafka
    from tools.kafka_cluster import kafka_version

    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "confluent-kafka (driver)": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka (broker)": kafka_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes; results go under bench/results/tmp/")
    ap.add_argument("--scale", type=float, default=1.0, help="x default records per workload")
    ap.add_argument("--records", type=int, help="throughput records for every workload")
    ap.add_argument("--systems", help="comma-separated: fluvial-1w,fluvial-2w,fluvial-sql,"
                                      "ceiling,quix,"
                                      "faust,java (default: all)")
    ap.add_argument("--workloads", help="comma-separated (default: all)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--commit-ms", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=2000, help="latency phase records/s")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--latency-drain-timeout", type=float, default=60.0,
                    help="s to wait for the latency phase's outputs after its last input")
    ap.add_argument("--throughput-cap", type=float, default=120.0,
                    help="s after which a throughput run is measured by committed offsets")
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    ap.add_argument("--out", type=Path, help="results dir (default bench/results/<timestamp>)")
    ap.add_argument("--profile", action="store_true",
                    help="also profile fluvial (1 worker) with py-spy on each workload")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of every case; figures are medians (--smoke: 1)")
    ap.add_argument("--note", action="append", default=[], help="a note stored with the run")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench import workloads
    from bench.driver import Settings
    from bench.repeats import merge
    from bench.runners import all_runners

    settings = Settings(scale=args.scale, records=args.records, partitions=args.partitions,
                        commit_ms=args.commit_ms, rate=args.rate,
                        latency_seconds=args.latency_seconds, seed=args.seed,
                        latency_drain_timeout=args.latency_drain_timeout,
                        throughput_cap=args.throughput_cap)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if args.smoke:
        settings = replace(settings, records=args.records or 300, rate=200,
                           latency_seconds=1.0, warmup=8)
        args.repeat = 1
    run_id = time.strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    out = args.out or ((SCRATCH if args.smoke else RESULTS) / run_id)
    out.mkdir(parents=True, exist_ok=True)
    work = SCRATCH / f"work-{run_id}"
    work.mkdir(parents=True, exist_ok=True)

    runners = all_runners(sys.executable, REPO)
    if args.systems:
        wanted = args.systems.split(",")
        unknown = set(wanted) - {r.key for r in runners}
        if unknown:
            raise SystemExit(f"unknown system(s) {sorted(unknown)}; "
                             f"known: {[r.key for r in runners]}")
        runners = [r for r in runners if r.key in wanted]
    wl = [workloads.get(w) for w in (args.workloads.split(",") if args.workloads
                                     else workloads.names())]

    doc: dict[str, Any] = {
        "run_id": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": args.smoke, "machine": machine_info(), "versions": base_versions(),
        "settings": {**settings.as_dict(), "repeat": args.repeat}, "notes": list(args.note),
        "load_avg_start": os.getloadavg(), "systems": {}, "workloads": {}, "cases": [],
    }
    for w in wl:
        doc["workloads"][w.name] = {"title": w.title, "unit": w.unit,
                                    "records": settings.records_for(w)}
    available = []
    for r in runners:
        why = r.unavailable()
        doc["systems"][r.key] = {"name": r.name, "settings": r.settings(),
                                 "versions": r.versions() if why is None else {},
                                 "unavailable": why}
        if why is None:
            available.append(r)
        else:
            log.warning("%s unavailable: %s", r.key, why)

    cluster = None
    bootstrap = args.bootstrap
    t0 = time.monotonic()
    try:
        if bootstrap is None:
            from tools.kafka_cluster import KafkaCluster

            cluster = KafkaCluster(nodes=1, name=f"bench-{os.getpid()}", heap="1g",
                                   full_jit=True)
            cluster.start()
            bootstrap = cluster.bootstrap_servers
            log.info("kafka broker at %s (%.1f s)", bootstrap, cluster.start_seconds or 0)
        doc["bootstrap"] = bootstrap
        if cluster is not None and not args.smoke:
            _warm_broker(settings, bootstrap, work, run_id)
        for w in wl:
            runs: dict[str, list[dict[str, Any]]] = {}
            for round_no in range(1, args.repeat + 1):
                for r in runners:
                    res = _run_one(r, w, available, doc, settings, bootstrap, work, run_id,
                                   round_no if args.repeat > 1 else 0)
                    runs.setdefault(r.key, []).append(res)
                    if res["status"] in ("unavailable", "unsupported"):
                        continue
                    log.info("   %s", _summary(res))
            doc["cases"] += [merge(rs) for rs in runs.values()]
            _write(out, doc)  # partial results survive an interrupted run
        if args.profile:
            from bench.profile import profile_fluvial

            doc["profile"] = profile_fluvial(wl, settings, bootstrap, work, out, run_id)
    finally:
        if cluster is not None:
            cluster.stop(graceful=False)
            shutil.rmtree(cluster.run_dir, ignore_errors=True)  # the broker's data and logs
        doc["duration_s"] = round(time.monotonic() - t0, 1)
        doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        doc["load_avg_end"] = os.getloadavg()
        _write(out, doc)
    from bench.report import write_report

    write_report(doc, out)
    log.info("results in %s", out.relative_to(REPO) if out.is_relative_to(REPO) else out)
    if not args.smoke:
        shutil.rmtree(work / "state", ignore_errors=True)
    bad = [c for c in doc["cases"] if c["status"] not in ("ok", "unsupported", "unavailable")]
    return 1 if bad and args.smoke else 0


def _run_one(r: Any, w: Any, available: list[Any], doc: dict[str, Any], settings: Any,
             bootstrap: str, work: Path, run_id: str, round_no: int) -> dict[str, Any]:
    from bench.driver import run_case

    base = {"system": r.key, "system_name": r.name, "workload": w.name, "unit": w.unit}
    if r not in available:
        return {**base, "status": "unavailable", "error": doc["systems"][r.key]["unavailable"]}
    if not r.supports(w):
        return {**base, "status": "unsupported"}
    log.info("── %s x %s%s", r.key, w.name, f" (round {round_no})" if round_no else "")
    label = f"-r{round_no}" if round_no else ""
    try:
        if hasattr(w, "run_case"):  # a workload with its own case (the Nexmark event queries)
            return w.run_case(r, settings, bootstrap, work, run_id, label)
        return run_case(r, w, settings, bootstrap, work, run_id, label)
    except Exception as exc:
        return {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5)}


def _warm_broker(settings: Any, bootstrap: str, work: Path, run_id: str) -> None:
    """One discarded ceiling run on the stateless workload before anything is measured.

    A fresh broker JVM spends its first half minute compiling its hot paths (its C2 threads
    took 60 % of a core), which otherwise falls on whichever case runs first.
    """
    from bench import workloads
    from bench.driver import run_case
    from bench.runners.ceiling import CeilingRunner

    log.info("── warming the broker up (a discarded ceiling x stateless run)")
    res = run_case(CeilingRunner(sys.executable, REPO), workloads.get("stateless"), settings,
                   bootstrap, work, run_id, "-warmup")
    log.info("   (discarded) %s", _summary(res))


def _summary(res: dict[str, Any]) -> str:
    if res["status"] != "ok":
        return f"{res['status']}: {res.get('error', '')}"
    lat = res.get("latency", {})
    return (f"{res['throughput']:,.0f} {res['unit']}/s, p50 {lat.get('p50_ms')} ms, "
            f"p99 {lat.get('p99_ms')} ms, RSS {res.get('peak_rss_mb')} MB, "
            f"CPU {res.get('cpu_s_per_m')} s/M, startup {res.get('startup_s')} s")


def _write(out: Path, doc: dict[str, Any]) -> None:
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(out / "results.json")


if __name__ == "__main__":
    sys.exit(main())
