"""Quix Streams running one workload.

    python -m bench.systems.quix_app WORKLOAD BOOTSTRAP APP_ID INPUT OUTPUT COMMIT_MS STATE_DIR
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> None:
    from quixstreams import Application

    from bench import workloads
    from bench.systems.ceiling import Args

    args = Args.parse(argv)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.app_id,
        auto_offset_reset="earliest",
        commit_interval=args.commit_ms / 1000.0,
        processing_guarantee="at-least-once",
        state_dir=args.state_dir,
        loglevel=logging.WARNING,
    )
    workloads.get(args.workload).quix_build(app, args.input, args.output)
    app.run()


if __name__ == "__main__":
    main(sys.argv[1:])
