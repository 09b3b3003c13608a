"""``fluvial``: run a topology, describe it."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

import click

from fluvial.errors import FluvialError

GC_THRESHOLDS = (100_000, 50, 100)  # what `fluvial run` sets; see _run_one

_SETTINGS = [
    click.option("--application-id", "-a", envvar="FLUVIAL_APPLICATION_ID",
                 help="Names the consumer group, internal topics and state directory."),
    click.option("--bootstrap-servers", "-b", envvar="FLUVIAL_BOOTSTRAP_SERVERS",
                 help="Kafka brokers; unset: the embedded in-process broker."),
    click.option("--processing-guarantee",
                 type=click.Choice(["at_least_once", "exactly_once"]), default=None,
                 help="exactly_once: outputs, state and offsets commit in one transaction."),
    click.option("--group-protocol", type=click.Choice(["consumer", "classic"]), default=None,
                 help="Kafka group protocol: consumer (KIP-848, incremental; default) or "
                      "classic (eager range)."),
    click.option("--state-dir", type=click.Path(file_okay=False), default=None),
    click.option("--commit-interval-ms", type=click.IntRange(min=1), default=None),
    click.option("--on-error", type=click.Choice(["stop", "skip", "dead_letter"]),
                 default=None, help="What to do with a record that fails (default: stop)."),
    click.option("--dead-letter-topic", default=None),
    click.option("--replication-factor", type=int, default=None,
                 help="Of internal topics (-1: the broker's default)."),
    click.option("--http-port", type=click.IntRange(0, 65535), default=None,
                 envvar="FLUVIAL_HTTP_PORT",
                 help="Serve /healthz, /readyz and /metrics here (worker i: port + i)."),
]


def _with_settings(fn: Any) -> Any:
    for option in reversed(_SETTINGS):
        fn = option(fn)
    return fn


@click.group()
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def cli(log_level: str) -> None:
    """fluvial: stateful, fault-tolerant streaming microservices on Apache Kafka."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
@click.argument("target")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to run; each is an instance in the same consumer group.")
@_with_settings
def run(target: str, workers: int, **settings: Any) -> None:
    """Run the topology TARGET (MODULE:OBJECT) until SIGTERM or Ctrl-C."""
    from fluvial.cli.loading import load_topology
    from fluvial.runtime.config import StreamsConfig

    settings = {k: v for k, v in settings.items() if v is not None}
    http_port = settings.pop("http_port", None)
    load_topology(target)  # fail here, once, before any worker starts
    config = StreamsConfig.create(**settings)
    if workers > 1:
        if config.bootstrap_servers is None:
            raise click.UsageError("--workers > 1 needs --bootstrap-servers: the embedded "
                                   "broker lives inside one process")
        from fluvial.runtime.workers import run_workers

        sys.exit(run_workers(workers, _run_one, (target, settings, http_port)))
    _run_one(0, target, settings, http_port)


def _run_one(worker: int, target: str, settings: dict[str, Any], http_port: int | None) -> None:
    from fluvial.cli.loading import load_topology
    from fluvial.runtime.app import App

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The process is ours: a poll batch allocates tens of thousands of objects that die
    # young (records, decoded values); the cyclic GC's default (a collection every 700
    # allocations) cost 10-20 % of the loop's CPU. Records form no cycles to wait for.
    gc.set_threshold(*GC_THRESHOLDS)
    app = App(load_topology(target), **settings)
    if http_port is not None:
        from fluvial.server import AppServer

        port = http_port + worker if http_port else 0
        server = AppServer(app, port=port).start()
        logging.getLogger("fluvial.cli").info(
            "worker %d: /healthz /readyz /metrics on port %d", worker, server.port)
    app.run()


@cli.command()
@click.argument("target")
def describe(target: str) -> None:
    """Print the sub-topologies, processors, stores and topics of TARGET (MODULE:OBJECT)."""
    from fluvial.cli.loading import load_topology

    click.echo(load_topology(target).describe())


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FluvialError as exc:
        click.echo(f"fluvial: error: {exc}", err=True)
        sys.exit(2)
