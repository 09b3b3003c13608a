"""Turn results.json into results.md (tables, ratios against issue 5's targets) and results.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Issue 5's (and 12's) targets, as (workload, fluvial system, peer, metric, minimum ratio).
# "throughput": fluvial ÷ peer records/s must be ≥ the ratio;
# "p99": peer p99 ÷ fluvial p99 must be ≥ the ratio (fluvial no worse).
TARGETS: list[tuple[str | None, str, str, str, float]] = [
    (None, "fluvial-1w", "quix", "throughput", 3.0),
    (None, "fluvial-1w", "faust", "throughput", 3.0),
    ("stateless", "fluvial-1w", "java", "throughput", 1.0),
    ("wordcount", "fluvial-1w", "java", "throughput", 1.0),
    ("stateless", "fluvial-1w", "ceiling", "throughput", 0.8),
    (None, "fluvial-1w", "java", "p99", 1.0),
    # issue 14: Nexmark, fluvial at or above Java Kafka Streams on every query (Quix: above)
    *[(f"nexmark-q{q}", "fluvial-1w", "java", "throughput", 1.0) for q in (0, 1, 2, 3, 4, 5, 7, 8)],
    # issue 12: the same workload in fluvial's SQL within 80 % of its DSL
    *[(w, "fluvial-sql", "fluvial-1w", "throughput", 0.8)
      for w in ("stateless", "wordcount", "windowed")],
]


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:,.{digits}f}"
    return str(v)


def _cases(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["system"], c["workload"]): c for c in doc["cases"]}


def _measured(c: dict[str, Any] | None) -> bool:
    return bool(c) and c.get("status") in ("ok", "partial") and c.get("throughput") is not None


def ratios(doc: dict[str, Any], fluvial: str = "fluvial-1w") -> list[dict[str, Any]]:
    cases = _cases(doc)
    rows = []
    for workload in doc["workloads"]:
        for only, ours, peer, metric, target in TARGETS:
            ours = fluvial if ours == "fluvial-1w" else ours
            if (only is not None and only != workload) or peer not in doc["systems"] \
                    or ours not in doc["systems"]:
                continue  # another workload's target, or a system this run left out
            a, b = cases.get((ours, workload)), cases.get((peer, workload))
            row = {"workload": workload, "fluvial": ours, "peer": peer, "metric": metric,
                   "target": target, "ratio": None, "met": None}
            if not _measured(a) or not _measured(b):
                row["why"] = (f"{ours}: {a.get('status') if a else 'not run'}"
                              if not _measured(a) else
                              f"{peer}: {b.get('status') if b else 'not run'}")
                rows.append(row)
                continue
            if metric == "throughput":
                ratio = a["throughput"] / b["throughput"]
            elif not (a or {}).get("latency") or not (b or {}).get("latency"):
                continue  # a workload without a latency phase (the Nexmark event queries)
            else:
                pa, pb = a["latency"]["p99_ms"], b["latency"]["p99_ms"]
                ratio = (pb / pa) if pa else None
            row["ratio"] = round(ratio, 2) if ratio is not None else None
            row["met"] = ratio is not None and ratio >= target
            rows.append(row)
    return rows


# Batched airline scoring against per-record scoring (issue 5: ≥ 10x, and ≥ 10x the talk's
# design, which is fluvial's per-record map_values): fluvial batched ÷ each system per record.
BATCH_TARGETS: list[tuple[str, str, float | None]] = [
    ("fluvial-1w", "the talk's design (fluvial, model in a per-record map_values)", 10.0),
    ("ceiling", "bare confluent-kafka, one model call per record", 10.0),
    ("quix", "Quix Streams, per record", None),
    ("faust", "Faust, per record", None),
]


def batch_ratios(doc: dict[str, Any], fluvial: str = "fluvial-1w") -> list[dict[str, Any]]:
    """records/s of ``fluvial`` on ``airline`` ÷ each system on ``airline-per-record``."""
    if "airline" not in doc["workloads"] or "airline-per-record" not in doc["workloads"]:
        return []
    cases = _cases(doc)
    a = cases.get((fluvial, "airline"))
    rows = []
    for peer, what, target in BATCH_TARGETS:
        b = cases.get((peer, "airline-per-record"))
        row: dict[str, Any] = {"fluvial": fluvial, "peer": peer, "what": what,
                               "target": target, "ratio": None, "met": None}
        if _measured(a) and _measured(b):
            row["ratio"] = round(a["throughput"] / b["throughput"], 2)
            row["met"] = None if target is None else row["ratio"] >= target
        else:
            row["why"] = "not measured"
        rows.append(row)
    return rows


# Scoring backends (issue 15): each backend's airline workloads against the talk's design
# (fluvial's map_values calling LightGBM per record, ``airline-per-record``), same run.
# (backend, batched workload, per-record workload, batched target, per-record target)
BACKENDS: list[tuple[str, str, str, float | None, float | None]] = [
    ("LightGBM", "airline", "airline-per-record", 10.0, None),
    ("compiled trees", "airline-compiled", "airline-per-record-compiled", 10.0, 3.0),
    ("ONNX Runtime", "airline-onnx", "airline-per-record-onnx", 10.0, None),
]
TALKS_DESIGN = ("fluvial-1w", "airline-per-record")


def backend_ratios(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per backend: fluvial's and the ceiling's records/s and CPU s/M, batched and per record,
    and fluvial's records/s ÷ the talk's design."""
    cases = _cases(doc)
    talk = cases.get(TALKS_DESIGN)
    rows = []
    for backend, batched, per_record, batch_target, record_target in BACKENDS:
        if batched not in doc["workloads"] and per_record not in doc["workloads"]:
            continue
        row: dict[str, Any] = {"backend": backend, "batched": batched, "per_record": per_record}
        for mode, workload, target in (("batched", batched, batch_target),
                                       ("per_record", per_record, record_target)):
            ours, ceiling = cases.get(("fluvial-1w", workload)), cases.get(("ceiling", workload))
            row[f"{mode}_rps"] = ours.get("throughput") if _measured(ours) else None
            row[f"{mode}_cpu_s_per_m"] = ours.get("cpu_s_per_m") if _measured(ours) else None
            row[f"{mode}_ceiling_rps"] = ceiling.get("throughput") if _measured(ceiling) \
                else None
            ratio = (round(ours["throughput"] / talk["throughput"], 2)
                     if _measured(ours) and _measured(talk) else None)
            row[f"{mode}_vs_talk"] = ratio
            row[f"{mode}_target"] = target
            row[f"{mode}_met"] = None if target is None or ratio is None else ratio >= target
        rows.append(row)
    return rows


def _backend_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "Scoring backends (fluvial 1 worker; ratio = records/s ÷ the talk's design, "
             "fluvial's `map_values` calling LightGBM per record, `airline-per-record`):", "",
             "| backend | batched rec/s | CPU s/M | ÷ talk | target | ceiling rec/s | "
             "per record rec/s | CPU s/M | ÷ talk | target | ceiling rec/s |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        cells = [r["backend"]]
        for mode in ("batched", "per_record"):
            met = {True: "yes", False: "**no**", None: ""}[r[f"{mode}_met"]]
            target = f"≥ {r[f'{mode}_target']} {met}" if r[f"{mode}_target"] else "-"
            cells += [_fmt(r[f"{mode}_rps"]), _fmt(r[f"{mode}_cpu_s_per_m"], 1),
                      _fmt(r[f"{mode}_vs_talk"], 2), target, _fmt(r[f"{mode}_ceiling_rps"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# Flink's published Nexmark throughput per core (the nexmark/nexmark project's README),
# events/s; theirs exclude Kafka I/O, ours include it.
FLINK_PER_CORE = {"nexmark-q0": 155_000, "nexmark-q1": 158_000, "nexmark-q2": 175_000,
                  "nexmark-q4": 34_000, "nexmark-q5": 22_000, "nexmark-q7": 12_000}


def nexmark_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per Nexmark query: fluvial (1 worker), Java Kafka Streams and Quix, their ratios, and
    fluvial's events per CPU-second against Flink's per-core figure."""
    cases = _cases(doc)
    rows = []
    for name in (w for w in doc["workloads"] if w.startswith("nexmark-")):
        row: dict[str, Any] = {"workload": name}
        for key in ("fluvial-1w", "java", "quix", "ceiling"):
            c = cases.get((key, name))
            row[key] = {"status": c.get("status") if c else "not run",
                        "rps": c.get("throughput") if _measured(c) and c else None,
                        "eps": (c.get("events_per_s") or c.get("throughput"))
                        if _measured(c) and c else None,
                        "cpu": c.get("cpu_s_per_m") if _measured(c) and c else None,
                        "check": (c or {}).get("check")}
        ours = row["fluvial-1w"]
        for peer in ("java", "quix"):
            theirs = row[peer]
            row[f"vs_{peer}"] = (round(ours["rps"] / theirs["rps"], 2)
                                 if ours["rps"] and theirs["rps"] else None)
            row[f"cpu_vs_{peer}"] = (round(theirs["cpu"] / ours["cpu"], 2)
                                     if ours["cpu"] and theirs["cpu"] else None)
        # events per CPU-second (q0-q2: the bids are the input)
        c = cases.get(("fluvial-1w", name))
        events_per_cpu_s = None
        if _measured(c) and c and c.get("cpu_s"):
            events = c.get("records") if "events_per_s" in c else c.get("processed")
            events_per_cpu_s = round(events / c["cpu_s"]) if events else None
        row["events_per_cpu_s"] = events_per_cpu_s
        row["flink_per_core"] = FLINK_PER_CORE.get(name)
        rows.append(row)
    return rows


def _nexmark_table(rows: list[dict[str, Any]]) -> list[str]:
    def sys_cells(r: dict[str, Any], key: str) -> list[str]:
        v = r[key]
        if v["rps"] is None:
            return [v["status"], "-"]
        return [_fmt(v["rps"]), _fmt(v["cpu"], 1)]

    lines = ["## Nexmark (issue 14)", "",
             "records/s: the records the query reads in the timed phase (q0-q2: bids; q3: "
             "auctions, its people loaded first; q4: bids, its auctions loaded first; q5, q7: "
             "bids; q8: people and auctions) ÷ seconds until the system's group committed them "
             "all. CPU s/M: per million such records. Every output checked against the "
             "plain-Python reference (a wrong output is a failed case, no figure).", "",
             "| query | fluvial rec/s | CPU s/M | Java rec/s | CPU s/M | Quix rec/s | CPU s/M "
             "| fluvial ÷ Java | Java CPU ÷ fluvial CPU | fluvial ÷ Quix | fluvial events per "
             "CPU-s | Flink per core |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r["workload"], *sys_cells(r, "fluvial-1w"), *sys_cells(r, "java"),
                 *sys_cells(r, "quix"), _fmt(r["vs_java"], 2), _fmt(r["cpu_vs_java"], 2),
                 _fmt(r["vs_quix"], 2), _fmt(r["events_per_cpu_s"]),
                 _fmt(r["flink_per_core"])]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def markdown(doc: dict[str, Any]) -> str:
    m, s, v = doc["machine"], doc["settings"], doc["versions"]
    lines = [f"# Benchmark run {doc['run_id']}", ""]
    if doc.get("smoke"):
        lines += ["**Smoke run** (tiny sizes): checks that every runner works; the numbers "
                  "mean nothing.", ""]
    lines += [
        f"- machine: {m.get('cores')} cores ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gb', '?')} GB RAM, {m.get('platform')}",
        f"- load average at start / end: {_load(doc.get('load_avg_start'))} / "
        f"{_load(doc.get('load_avg_end'))}; took {_fmt(doc.get('duration_s'), 0)} s",
        f"- Kafka broker {v.get('kafka (broker)')} (1 node, local), librdkafka "
        f"{v.get('librdkafka')}, Python {v.get('python')}",
        f"- settings: {s['partitions']} partitions, replication 1, commit interval "
        f"{s['commit_interval_ms']} ms, {s['processing_guarantee']} for every system; "
        f"latency at {s['latency_rate_per_s']:,} records/s for {s['latency_seconds']} s; "
        f"seed {s['seed']}",
    ]
    for note in doc.get("notes", []):
        lines.append(f"- note: {note}")
    lines.append("")
    for name, w in doc["workloads"].items():
        unit = w["unit"]
        lines += [f"## {w['title']}", "",
                  f"{w['records']:,} {unit} per throughput run.", "",
                  f"| system | {unit}/s | p50 ms | p99 ms | peak RSS MB | CPU s / M {unit} "
                  f"| outputs | status |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for c in doc["cases"]:
            if c["workload"] != name:
                continue
            lat = c.get("latency") or {}
            status = c["status"]
            if c.get("error"):
                status += ": " + c["error"].splitlines()[0][:120]
            if c.get("partial"):
                status += ": " + c["partial"]
            if lat and not lat.get("sustained", True):
                status += (f"; latency: {lat['rate_target']:,}/s not sustained "
                           f"({lat.get('pending_at_end'):,} outputs still due "
                           f"{s.get('latency_drain_timeout_s', '?')} s after the last input; "
                           f"p50/p99 over those answered)")
            lines.append(
                f"| {c['system_name']} | {_fmt(c.get('throughput'))} | "
                f"{_fmt(lat.get('p50_ms'))} | {_fmt(lat.get('p99_ms'))} | "
                f"{_fmt(c.get('peak_rss_mb'))} | {_fmt(c.get('cpu_s_per_m'), 1)} | "
                f"{_fmt(c.get('outputs'))} | {status} |")
        lines.append("")
    if doc.get("nexmark"):
        lines += _nexmark_table(doc["nexmark"])
    if doc.get("ratios"):  # none when the run left every peer out
        lines += ["## Against the targets of issues 5 and 12 (fluvial with 1 worker, one process "
                  "like each peer; fluvial's SQL against its DSL)", "",
                  "| workload | metric | fluvial ÷ peer | ratio | target | met |",
                  "|---|---|---|---:|---:|---|"]
    for r in doc.get("ratios", []):
        what = ("records/s" if r["metric"] == "throughput" else "p99 (peer ÷ fluvial)")
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        ratio = _fmt(r["ratio"], 2) if r["ratio"] is not None else f"- ({r.get('why', '')})"
        lines.append(f"| {r['workload']} | {what} | {r['fluvial']} ÷ {r['peer']} | {ratio} | "
                     f"≥ {r['target']} | {met} |")
    if any(r["ratio"] is not None for r in doc.get("ratios_2w", [])):
        lines += ["", "Same ratios for fluvial with 2 workers (two processes, so not like for "
                  "like):", "", "| workload | metric | peer | ratio | target |",
                  "|---|---|---|---:|---:|"]
        for r in doc["ratios_2w"]:
            lines.append(f"| {r['workload']} | {r['metric']} | {r['peer']} | "
                         f"{_fmt(r['ratio'], 2)} | ≥ {r['target']} |")
    if doc.get("batch_ratios"):
        lines += ["", "Batched airline scoring (`airline`, fluvial 1 worker, `fluvial.ml.score`) "
                  "÷ per-record scoring (`airline-per-record`):", "",
                  "| per-record system | ratio | target | met |", "|---|---:|---:|---|"]
        for r in doc["batch_ratios"]:
            met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
            target = f"≥ {r['target']}" if r["target"] is not None else "-"
            lines.append(f"| {r['what']} | {_fmt(r['ratio'], 1)} | {target} | {met} |")
    if doc.get("backend_ratios"):
        lines += _backend_table(doc["backend_ratios"])
    lines += ["", "## Systems", ""]
    for key, sysinfo in doc["systems"].items():
        ver = ", ".join(f"{k} {val}" for k, val in sysinfo.get("versions", {}).items())
        st = ", ".join(f"{k}: {val}" for k, val in sysinfo.get("settings", {}).items())
        line = f"- **{sysinfo['name']}** (`{key}`): {ver or '-'}"
        if st:
            line += f"; {st}"
        if sysinfo.get("unavailable"):
            line += f"; **unavailable**: {sysinfo['unavailable']}"
        lines.append(line)
    lines += ["", "## How to read this", "",
              "- **records/s**: input records (WordCount: lines) / (broker append time of the "
              "last output - the moment the system, paused with SIGSTOP while its whole input "
              "was produced, was resumed). Every input's output was seen before the clock "
              "stopped; a system still busy after the cap is measured by the input offsets "
              "its consumer group committed instead (status partial).",
              "- **p50/p99**: output append time - input create time, at the fixed rate above. "
              "Kafka Streams and fluvial cache WordCount counts until the commit (defaults), "
              "so their WordCount latency is about half the commit interval by design.",
              "- **peak RSS**: summed over the system's process tree (JVM included for Java; "
              "the supervisor process included for fluvial --workers), sampled every 0.2 s "
              "during the throughput phase. **CPU s / M**: user+system CPU seconds of that tree "
              "during the throughput phase per million input records. The broker, the input "
              "producer and the output reader share the machine and are not counted.",
              ""]
    failed = [c for c in doc["cases"] if c["status"] not in ("ok", "partial", "unsupported")]
    if failed:
        lines += ["## Problems", ""]
        for c in failed:
            lines.append(f"- {c['system']} x {c['workload']}: {c['status']}: "
                         f"{c.get('error', '')}")
            if c.get("log_tail"):
                lines += ["", "  ```", *("  " + x for x in c["log_tail"].splitlines()[-12:]),
                          "  ```"]
        lines.append("")
    return "\n".join(lines)


def _load(v: Any) -> str:
    if not v:
        return "?"
    return " ".join(f"{x:.2f}" for x in v)


def chart(doc: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = list(doc["workloads"])
    systems = [k for k in doc["systems"]]
    names = {k: doc["systems"][k]["name"] for k in systems}
    cases = _cases(doc)
    panels = [("throughput", "records (lines) / s", lambda c: c.get("throughput")),
              ("p99 latency (log scale)", "ms (p50 as dot)",
               lambda c: (c.get("latency") or {}).get("p99_ms")),
              ("peak RSS", "MB", lambda c: c.get("peak_rss_mb")),
              ("CPU per million inputs (log scale)", "CPU s", lambda c: c.get("cpu_s_per_m"))]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    width = 0.8 / max(1, len(systems))
    colors = plt.get_cmap("tab10")
    for ax, (title, ylabel, get) in zip(axes.flat, panels, strict=True):
        plotted = False
        for i, key in enumerate(systems):
            xs, ys, p50 = [], [], []
            for j, w in enumerate(workloads):
                c = cases.get((key, w))
                val = get(c) if _measured(c) else None
                if val is not None:
                    xs.append(j + (i - (len(systems) - 1) / 2) * width)
                    ys.append(val)
                    p50.append((c.get("latency") or {}).get("p50_ms"))
            ax.bar(xs, ys, width, label=names[key], color=colors(i))
            plotted = plotted or bool(ys)
            if title.startswith("p99"):
                ax.scatter(xs, [p if p is not None else 0 for p in p50], color="black", s=8,
                           zorder=3)
        if "log scale" in title and plotted:  # none: no latency phase (Nexmark q3-q8)
            ax.set_yscale("log")
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    m = doc["machine"]
    fig.suptitle(f"fluvial benchmarks {doc['run_id']} — {m.get('cores')} cores, "
                 f"{doc['settings']['partitions']} partitions, commit "
                 f"{doc['settings']['commit_interval_ms']} ms, at-least-once")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(doc: dict[str, Any], out: Path) -> None:
    import json

    doc["ratios"] = ratios(doc)
    doc["ratios_2w"] = [r for r in ratios(doc, "fluvial-2w") if r["metric"] == "throughput"
                        and r["fluvial"] == "fluvial-2w"]
    doc["batch_ratios"] = batch_ratios(doc)
    doc["backend_ratios"] = backend_ratios(doc)
    doc["nexmark"] = nexmark_rows(doc)
    (out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(doc))
    chart(doc, out / "results.png")
