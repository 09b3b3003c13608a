"""Faust (faust-streaming) running one workload.

    python -m bench.systems.faust_app WORKLOAD BOOTSTRAP APP_ID INPUT OUTPUT COMMIT_MS STATE_DIR
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    import faust

    from bench import workloads
    from bench.systems.ceiling import Args

    args = Args.parse(argv)
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=args.state_dir,
        broker_commit_interval=args.commit_ms / 1000.0,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
        topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "4")),
        table_standby_replicas=0,
        web_enabled=False,
    )
    workloads.get(args.workload).faust_build(app, args.input, args.output)
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
