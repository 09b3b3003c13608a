"""The live dashboard on the embedded broker, nothing to install: two instances of the order
totals app, each with its HTTP server, fed a few orders a second (now and then one without an
amount, which is dead-lettered) until Ctrl-C.

    python -m examples.dashboard.demo [--port 8080] [--seconds N]

then open http://127.0.0.1:8080/dashboard (either instance's port shows both).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

from examples.dashboard.app import INPUT, OUTPUT, build
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.server import AppServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="instance A's HTTP port; B "
                        "takes the next one")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long "
                        "(default: at Ctrl-C)")
    args = parser.parse_args(argv)
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 4)
    broker.create_topic(OUTPUT, 4)
    apps, servers = [], []
    with tempfile.TemporaryDirectory(prefix="fluvial-dashboard-") as state:
        try:
            for i, name in enumerate(("a", "b")):
                app = App(build(), "orders", broker=broker, state_dir=f"{state}/{name}",
                          on_error="dead_letter")
                servers.append(AppServer(app, port=args.port + i).start())
                apps.append(app.start())
            print(f"dashboard: http://127.0.0.1:{args.port}/dashboard "
                  f"(and http://127.0.0.1:{args.port + 1}/dashboard); Ctrl-C stops")
            feed(broker, args.seconds)
        except KeyboardInterrupt:
            pass
        finally:
            for app, server in zip(apps, servers, strict=False):
                app.close()
                server.stop()
    return 0


def feed(broker: EmbeddedBroker, seconds: float | None) -> None:
    """A burst of orders every 200 ms, the rate drifting so the charts have a shape."""
    rng = random.Random(7)
    end = None if seconds is None else time.monotonic() + seconds
    step = 0
    while end is None or time.monotonic() < end:
        step += 1
        for _ in range(rng.randint(5, 20 + step % 50)):
            order = {"amount": rng.randint(1, 500)} if rng.random() > 0.002 else {"note": "?"}
            broker.append(INPUT, f"customer{rng.randint(1, 40)}".encode(),
                          json.dumps(order).encode())
        time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
