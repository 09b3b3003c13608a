"""``fluvial sql``: the shell, a SQL script's persistent queries, or QTT case files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fluvial.sql.engine import Result

if TYPE_CHECKING:
    from fluvial.sql.udfs import FunctionRegistry


def resolved_settings(settings: dict[str, Any], default_id: str) -> dict[str, Any]:
    """``settings`` with the application id and brokers resolved: ``default_id`` unless
    ``--config``, the environment or a flag names an id."""
    from fluvial.runtime.config import StreamsConfig

    config = StreamsConfig.create(flags=True, **settings,
                                  defaults={"application_id": default_id})
    return {**settings, "application_id": config.application_id,
            "bootstrap_servers": config.bootstrap_servers}


def script_settings(path: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A script's settings: its name (``fluvial-sql-<stem>``) is the default id."""
    return resolved_settings(settings, f"fluvial-sql-{Path(path).stem}")


def registry_properties(schema_registry: str | None) -> dict[str, Any] | None:
    """ksqlDB's engine properties for ``--schema-registry``."""
    return {"ksql.schema.registry.url": schema_registry} if schema_registry else None


def registry(udf_modules: Sequence[str]) -> FunctionRegistry | None:
    """The Python functions of ``--udf-module`` modules (None: none given)."""
    if not udf_modules:
        return None
    from fluvial.sql.udfs import FunctionRegistry, UdfError

    try:
        return FunctionRegistry.from_modules(udf_modules)
    except UdfError as exc:
        raise click.UsageError(str(exc)) from None


def run_script(path: str, settings: dict[str, Any], embedded: str | None,
               schema_registry: str | None = None, udf_modules: Sequence[str] = (),
               before_run: Callable[[], None] | None = None) -> None:
    """Run the statements of ``path``, then its persistent queries until SIGTERM/Ctrl-C;
    ``schema_registry``: the URL of the registry that AVRO sources and sinks use;
    ``before_run``: called once the app is built (``fluvial sql -f``: the process settings
    of ``fluvial run``)."""
    from fluvial.sql.runner import prepare

    owned = None
    if embedded is not None:
        from fluvial.io.embedded.shared import own

        owned = own(embedded)
    try:
        app, results = prepare(Path(path).read_text(), broker=owned.broker if owned else None,
                               properties=registry_properties(schema_registry),
                               functions=registry(udf_modules), **settings)
        for result in results:
            click.echo(format_result(result))
        if before_run is not None:
            before_run()
        app.run()
    finally:
        if owned is not None:
            owned.close()


def format_result(result: Result) -> str:
    """A statement's message, and its rows as an aligned table (SHOW, DESCRIBE)."""
    if not result.header:
        return result.message
    rows = [tuple(map(str, result.header))] + [tuple(map(str, r)) for r in result.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(result.header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join([result.message, *lines])


def test_files(paths: Sequence[str], udf_modules: Sequence[str] = ()) -> int:
    """Run every case of ``paths``; print the pass/fail table; 0 if all passed, else 1."""
    from fluvial.sql.testing import format_table, run_file

    functions = registry(udf_modules)
    results = [r for path in paths for r in run_file(path, functions)]
    click.echo(format_table(results))
    return 0 if results and all(r.passed for r in results) else 1


def serve(listen: str, settings: dict[str, Any], embedded: str | None,
          schema_registry: str | None = None, udf_modules: Sequence[str] = ()) -> None:
    """``fluvial sql-server``: ksqlDB's REST API on ``listen`` until SIGTERM/Ctrl-C."""
    import signal
    import threading

    from fluvial.server.ksql import KsqlServer
    from fluvial.sql.service import SqlService

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.UsageError(f"--listen takes HOST:PORT, got {listen!r}")
    owned = None
    if embedded is not None:
        from fluvial.io.embedded.shared import own

        owned = own(embedded)
    try:
        service = SqlService(broker=owned.broker if owned else None,
                             properties=registry_properties(schema_registry),
                             functions=registry(udf_modules), **settings)
        server = KsqlServer(service, host, int(port)).start()
        click.echo(f"fluvial sql-server: ksqlDB's REST API on http://{host}:{server.port}")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        server.stop()
    finally:
        if owned is not None:
            owned.close()


def shell(server: str | None, settings: dict[str, Any], embedded: str | None,
          schema_registry: str | None = None, udf_modules: Sequence[str] = ()) -> int:
    """``fluvial sql``'s shell, against ``server`` or in this process; the exit code: 1 when
    a statement piped in failed (a script's caller learns it), else 0."""
    import sys

    from fluvial.cli.sql_shell import Backend, Local, Remote, Shell, piped, typed

    owned = None
    backend: Backend
    if server is not None:
        backend = Remote(server)
    else:
        from fluvial.sql.service import SqlService

        if embedded is not None:
            from fluvial.io.embedded.shared import own

            owned = own(embedded)
        try:
            backend = Local(SqlService(broker=owned.broker if owned else None,
                                       properties=registry_properties(schema_registry),
                                       functions=registry(udf_modules), **settings))
        except BaseException:
            if owned is not None:
                owned.close()
            raise
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    session = Shell(backend, sys.stdout)
    try:
        session.run(typed(session.say) if interactive else piped(sys.stdin))
    finally:
        backend.close()
        if owned is not None:
            owned.close()
    return 1 if session.failures and not interactive else 0
