"""``fluvial``: run a topology, describe it, feed and read the embedded broker.

Every failure a user can cause or meet (a bad module, no broker, refused credentials, a
state directory in use, a missing topic) ends as one line on stderr and exit code 2;
``--debug`` adds the traceback. Ctrl-C ends with exit code 130 and no traceback.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click

from fluvial.errors import FluvialError

GC_THRESHOLDS = (100_000, 50, 100)  # what `fluvial run` and `sql -f` set; see _own_process
EXIT_FAILURE = 2
EXIT_INTERRUPTED = 130

def _properties(ctx: click.Context, param: click.Parameter,
                values: tuple[str, ...]) -> dict[str, str] | None:
    """``--kafka-config KEY=VALUE`` (repeated) -> {KEY: VALUE}; None when not given."""
    props: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (a librdkafka property, "
                                     f"e.g. security.protocol=SASL_SSL)")
        props[key.strip()] = value
    return props or None


def _client_config_option(kind: str, clients: str) -> Any:
    return click.option(f"--{kind}-config", f"{kind}_config", multiple=True,
                        metavar="KEY=VALUE", callback=_properties,
                        help=f"A librdkafka property for {clients} (repeat the option).")


_KAFKA_CONFIG = _client_config_option("kafka", "every client: consumers, producers, admin")

_SETTINGS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 envvar="FLUVIAL_CONFIG",
                 help="A TOML file of settings; the environment and flags override it."),
    click.option("--application-id", "-a", envvar="FLUVIAL_APPLICATION_ID",
                 help="Names the consumer group, internal topics and state directory."),
    click.option("--bootstrap-servers", "-b", envvar="FLUVIAL_BOOTSTRAP_SERVERS",
                 help="Kafka brokers; unset: the embedded broker (see --embedded)."),
    click.option("--processing-guarantee",
                 type=click.Choice(["at_least_once", "exactly_once"]), default=None,
                 help="exactly_once: outputs, state and offsets commit in one transaction."),
    click.option("--group-protocol", type=click.Choice(["consumer", "classic"]), default=None,
                 help="Kafka group protocol: consumer (KIP-848, incremental; default) or "
                      "classic (eager range)."),
    click.option("--state-dir", type=click.Path(file_okay=False), default=None,
                 help="Where local state lives (default: $TMPDIR/fluvial); one instance "
                      "per directory."),
    click.option("--commit-interval-ms", type=click.IntRange(min=1), default=None),
    click.option("--connect-timeout-ms", type=click.IntRange(min=1), default=None,
                 help="How long to wait at start-up for a Kafka broker to answer "
                      "(default 30000)."),
    click.option("--on-error", type=click.Choice(["stop", "skip", "dead_letter"]),
                 default=None, help="What to do with a record that fails (default: stop)."),
    click.option("--dead-letter-topic", default=None),
    click.option("--replication-factor", type=int, default=None,
                 help="Of internal topics (-1: the broker's default)."),
    click.option("--application-server", envvar="FLUVIAL_APPLICATION_SERVER", default=None,
                 help="host:port the other instances query this one at (default: the "
                      "address --http-host/--http-port bound)."),
    click.option("--num-standby-replicas", type=click.IntRange(min=0), default=None,
                 help="Warm copies of each task's state kept on other instances (default 0)."),
    _KAFKA_CONFIG,
    _client_config_option("consumer", "consumers, over --kafka-config"),
    _client_config_option("producer", "producers, over --kafka-config"),
    _client_config_option("admin", "admin clients, over --kafka-config"),
]

_SCHEMA_REGISTRY = click.option(
    "--schema-registry", envvar="FLUVIAL_SCHEMA_REGISTRY", default=None,
    help="URL of the schema registry for VALUE_FORMAT='AVRO' (ksql.schema.registry.url).")

_EMBEDDED = click.option(
    "--embedded", "embedded", type=click.Path(file_okay=False), default=None,
    envvar="FLUVIAL_EMBEDDED",
    help="The embedded broker kept in this directory, shared with `fluvial produce` and "
         "`fluvial consume` on the same directory.")

_LOG_FORMAT = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    envvar="FLUVIAL_LOG_FORMAT",
    help="json: one JSON object per log line (app, instance, task, topic, partition, "
         "offset as fields), librdkafka's lines too.")
_debug = False  # --debug: failures show their traceback
_json_logs = False  # --log-format json: a failure is reported as a JSON log line too


def _with_settings(fn: Any) -> Any:
    for option in reversed(_SETTINGS):
        fn = option(fn)
    return fn


@click.group(invoke_without_command=True, context_settings={"help_option_names":
                                                            ["-h", "--help"]})
@click.version_option(version=None, package_name="fluvial", prog_name="fluvial",
                      message="%(prog)s %(version)s")
@click.option("--log-level", default="INFO", show_default=True, envvar="FLUVIAL_LOG_LEVEL",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--debug", is_flag=True, envvar="FLUVIAL_DEBUG",
              help="Show the traceback of a failure.")
@click.pass_context
def cli(ctx: click.Context, log_level: str, debug: bool) -> None:
    """fluvial: stateful, fault-tolerant streaming microservices on Apache Kafka.

    \b
    Try an app from the shell with nothing installed:
      fluvial run examples.wordcount.app:build -a wordcount --embedded data &
      echo "hello kafka streams" | fluvial produce --embedded data TextLinesTopic
      fluvial consume --embedded data WordsWithCountsTopic --value-serde int64 --print-key
    """
    global _debug
    _debug = debug
    ctx.obj = {"log_level": log_level.upper()}
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def configure_logging(level: str | int, application_id: str, worker: int | None,
                      log_format: str = "text") -> None:
    """Log lines that name the application and the instance (host/pid, and the worker)."""
    from fluvial.logs import formatter
    from fluvial.runtime.banner import instance_name

    global _json_logs
    _json_logs = log_format == "json"
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, application_id, instance_name(), worker))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _Http(NamedTuple):
    """Where and how ``fluvial run`` serves HTTP (``port`` None: not at all)."""

    host: str
    port: int | None
    token: str | None


@cli.command()
@click.argument("target")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to run; each is an instance in the same consumer group.")
@click.option("--http-port", type=click.IntRange(0, 65535), default=None,
              envvar="FLUVIAL_HTTP_PORT",
              help="Serve /healthz, /readyz, /metrics, /stores and /dashboard here (worker i: "
                   "port + i).")
@click.option("--http-host", default="127.0.0.1", show_default=True,
              envvar="FLUVIAL_HTTP_HOST",
              help="The interface to serve HTTP on (0.0.0.0: every one).")
@click.option("--http-token", default=None, envvar="FLUVIAL_HTTP_TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on /stores and the dashboard's data "
                   "(the same on every instance: they ask each other).")
@_LOG_FORMAT
@_EMBEDDED
@_with_settings
@click.pass_context
def run(ctx: click.Context, target: str, workers: int, http_port: int | None,
        http_host: str, http_token: str | None, log_format: str, embedded: str | None,
        **settings: Any) -> None:
    """Run the topology TARGET (MODULE:OBJECT) until SIGTERM or Ctrl-C."""
    from fluvial.cli.loading import load_topology
    from fluvial.runtime import state_lock
    from fluvial.runtime.config import StreamsConfig

    settings = {k: v for k, v in settings.items() if v is not None}
    config = StreamsConfig.create(flags=True, **settings)
    if embedded is not None and config.bootstrap_servers is not None:
        raise click.UsageError("--embedded and --bootstrap-servers exclude each other")
    log_level = ctx.obj["log_level"]
    if workers == 1:
        configure_logging(log_level, config.application_id, None, log_format)
        topology = load_topology(target)
        if embedded is None and config.bootstrap_servers is None:
            logging.getLogger("fluvial.cli").warning(
                "no --bootstrap-servers: running on a private in-process broker that nothing "
                "outside this process can reach; --embedded DIR shares it with "
                "`fluvial produce` / `fluvial consume`")
        _run_app(topology, settings, _Http(http_host, http_port, http_token), embedded)
        return
    if config.bootstrap_servers is None:
        raise click.UsageError("--workers > 1 needs --bootstrap-servers: the embedded "
                               "broker lives inside one process")
    from fluvial.runtime.workers import run_workers

    load_topology(target)  # fail here, once, before any worker starts
    state_root = config.state_dir / config.application_id
    state_lock.acquire(state_root)  # the workers are one instance: they share the lock
    try:
        sys.exit(run_workers(workers, _run_one,
                             (target, settings, _Http(http_host, http_port, http_token),
                              log_level, _debug, log_format)))
    finally:
        state_lock.release(state_root)


def _run_one(worker: int, target: str, settings: dict[str, Any], http: _Http,
             log_level: str = "INFO", debug: bool = False, log_format: str = "text") -> None:
    """One ``--workers`` process: its own topology, app and log lines."""
    from fluvial.cli.loading import load_topology

    global _debug
    _debug = debug
    configure_logging(log_level, str(settings.get("application_id")), worker, log_format)
    port = None if http.port is None else (http.port + worker if http.port else 0)
    try:
        _run_app(load_topology(target), settings, http._replace(port=port), None)
    except BaseException as exc:
        sys.exit(_report(exc))


def _own_process() -> None:
    """Settings for a process that runs one app (`fluvial run`, `fluvial sql -f`)."""
    # The process is ours: a poll batch allocates tens of thousands of objects that die
    # young (records, decoded values); the cyclic GC's default (a collection every 700
    # allocations) cost 10-20 % of the loop's CPU. Records form no cycles to wait for.
    gc.set_threshold(*GC_THRESHOLDS)
    # `kill -USR1 <pid>` writes every thread's Python stack to stderr: what a stuck
    # instance is waiting on, without stopping it (as jstack does for a JVM)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def _run_app(topology: Any, settings: dict[str, Any], http: _Http,
             embedded: str | None) -> None:
    from fluvial.runtime.app import App

    log = logging.getLogger("fluvial.cli")
    _own_process()
    owned = None
    if embedded is not None:
        from fluvial.io.embedded.shared import own

        owned = own(embedded)
        log.info("embedded broker in %s: feed it with `fluvial produce --embedded %s TOPIC`, "
                 "read it with `fluvial consume --embedded %s TOPIC`",
                 owned.data_dir, embedded, embedded)
    try:
        app = App(topology, broker=owned.broker if owned else None, **settings)
        if http.port is not None:
            from fluvial.server import AppServer

            server = AppServer(app, host=http.host, port=http.port, token=http.token).start()
            app.http_port = server.port
            log.info("/healthz /readyz /metrics /stores /dashboard on port %d (bound to %s)",
                     server.port, http.host)
        app.run()
    finally:
        if owned is not None:
            owned.close()


@cli.command()
@click.argument("target")
def describe(target: str) -> None:
    """Print the sub-topologies, processors, stores and topics of TARGET (MODULE:OBJECT)."""
    from fluvial.cli.loading import load_topology

    click.echo(load_topology(target).describe())


_SERDE = click.Choice(["string", "json", "int64", "float64", "bytes"])


def _broker_options(fn: Any) -> Any:
    """``--embedded DIR`` or ``-b HOST:PORT``: where produce/consume/create-topics go."""
    fn = _KAFKA_CONFIG(fn)
    fn = click.option("--bootstrap-servers", "-b", envvar="FLUVIAL_BOOTSTRAP_SERVERS",
                      default=None, help="A Kafka cluster.")(fn)
    return click.option("--embedded", type=click.Path(file_okay=False), default=None,
                        envvar="FLUVIAL_EMBEDDED",
                        help="The embedded broker's data directory (shared with "
                             "`fluvial run --embedded`).")(fn)


@cli.command()
@click.argument("topic")
@click.argument("values", nargs=-1)
@_broker_options
@click.option("--key-separator", default=None,
              help="Split each record at the first SEP into key and value (default: no key).")
@click.option("--key-serde", type=_SERDE, default="string", show_default=True)
@click.option("--value-serde", type=_SERDE, default="string", show_default=True)
@click.option("--partitions", type=click.IntRange(min=1), default=1, show_default=True,
              help="On the embedded broker: of the topic, if it does not exist yet.")
def produce(topic: str, values: tuple[str, ...], embedded: str | None,
            bootstrap_servers: str | None, kafka_config: dict[str, str] | None,
            key_separator: str | None, key_serde: str,
            value_serde: str, partitions: int) -> None:
    """Write VALUES (or stdin, one record per line) to TOPIC."""
    from fluvial.cli.shell import produce_lines, topics_on

    lines = values or (line.rstrip("\n") for line in sys.stdin)
    with topics_on(embedded, bootstrap_servers, kafka_config) as session, session() as (broker, _):
        count = produce_lines(broker, topic, lines, key_separator, key_serde, value_serde,
                              partitions if embedded is not None else None)
    click.echo(f"{count} record(s) to {topic}", err=True)


@cli.command()
@click.argument("topic")
@_broker_options
@click.option("--key-serde", type=_SERDE, default="string", show_default=True)
@click.option("--value-serde", type=_SERDE, default="string", show_default=True)
@click.option("--print-key", is_flag=True, help="Print KEY<TAB>VALUE.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until Ctrl-C.")
@click.option("--max-records", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after this many records (waiting up to --timeout for them).")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="With --max-records: seconds to wait for them.")
def consume(topic: str, embedded: str | None, bootstrap_servers: str | None,
            kafka_config: dict[str, str] | None, key_serde: str,
            value_serde: str, print_key: bool, follow: bool, max_records: int | None,
            timeout: float) -> None:
    """Print TOPIC's records from the beginning of every partition."""
    from fluvial.cli.shell import consume_records, topics_on

    printed = 0
    with topics_on(embedded, bootstrap_servers, kafka_config) as session:
        for key, value in consume_records(session, topic, key_serde, value_serde, follow,
                                          max_records, timeout):
            click.echo(f"{key}\t{value}" if print_key else value)
            printed += 1
    if max_records is not None and printed < max_records:
        raise FluvialError(f"topic {topic!r}: {printed} of {max_records} record(s) within "
                           f"{timeout:g} s")


@cli.command("create-topics")
@click.argument("topics", nargs=-1, required=True)
@_broker_options
@click.option("--partitions", type=click.IntRange(min=1), default=1, show_default=True)
def create_topics_command(topics: tuple[str, ...], embedded: str | None,
                          bootstrap_servers: str | None, kafka_config: dict[str, str] | None,
                          partitions: int) -> None:
    """Create TOPICS that do not exist yet (with the broker's default replication)."""
    from fluvial.cli.shell import create_topics, topics_on

    with topics_on(embedded, bootstrap_servers, kafka_config) as session, session() as (broker, _):
        created = create_topics(broker, topics, partitions)
    click.echo(f"created: {', '.join(created) or 'none (all exist)'}", err=True)


@cli.command()
@click.argument("application_id")
@_broker_options
@click.option("--input-topics", multiple=True, metavar="TOPIC[,TOPIC...]",
              help="The topics whose offsets to rewind (default: every non-internal topic "
                   "the application's group has committed offsets on).")
@click.option("--to-earliest", is_flag=True, help="Rewind to the beginning (the default).")
@click.option("--to-datetime", metavar="ISO-8601",
              help="Rewind to the first record at or after this time (no zone: UTC).")
@click.option("--by-duration", metavar="ISO-8601",
              help="Rewind to this long ago, e.g. PT15M, P1DT2H.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--local-state-dir", type=click.Path(file_okay=False), default=None,
              help="This machine's --state-dir: wipe the application's local state there.")
@click.option("--sql-command-topic", is_flag=True,
              help="APPLICATION_ID is a SQL service's id: delete its command topic too "
                   "(_confluent-ksql-<id>_command_topic), forgetting every statement.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              envvar="FLUVIAL_CONFIG", help="A TOML file of settings (kafka_config, ...).")
@_client_config_option("admin", "the admin client, over --kafka-config")
@click.option("--connect-timeout-ms", type=click.IntRange(min=1), default=None)
def reset(application_id: str, embedded: str | None, bootstrap_servers: str | None,
          kafka_config: dict[str, str] | None, input_topics: tuple[str, ...],
          to_earliest: bool, to_datetime: str | None, by_duration: str | None, dry_run: bool,
          local_state_dir: str | None, sql_command_topic: bool, config_file: str | None,
          admin_config: dict[str, str] | None, connect_timeout_ms: int | None) -> None:
    """Reset APPLICATION_ID to reprocess its input: rewind its input offsets, delete its
    internal topics (and its instance directory), and (with --local-state-dir) its local
    state. Stop every instance first."""
    from fluvial.runtime.reset import apply_reset, parse_position, plan_reset

    position = parse_position(to_earliest, to_datetime, by_duration)
    topics = [t.strip() for item in input_topics for t in item.split(",") if t.strip()] \
        if input_topics else None
    state_dir = Path(local_state_dir) if local_state_dir is not None else None
    with _group_admin(application_id, embedded, bootstrap_servers, config_file, kafka_config,
                      admin_config, connect_timeout_ms) as admin:
        plan = plan_reset(admin, application_id, topics, position, state_dir,
                          sql_command_topic)
        for line in plan.describe():
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        apply_reset(admin, plan)
    click.echo("done: start the application again to reprocess")


@contextlib.contextmanager
def _group_admin(application_id: str, embedded: str | None, bootstrap_servers: str | None,
                 config_file: str | None, kafka_config: dict[str, str] | None,
                 admin_config: dict[str, str] | None,
                 connect_timeout_ms: int | None) -> Iterator[Any]:
    """The reset tool's admin on the cluster or embedded broker the options name."""
    if embedded is not None and bootstrap_servers is not None:
        raise click.UsageError("--embedded and --bootstrap-servers exclude each other")
    if embedded is not None:
        from fluvial.io.embedded.group_admin import EmbeddedGroupAdmin
        from fluvial.io.embedded.shared import own

        # a running app owns its directory's broker: refused here, like an active group
        with own(embedded, wait_s=2.0) as owned:
            yield EmbeddedGroupAdmin(owned.broker)
        return
    from fluvial.io.group_admin import KafkaGroupAdmin
    from fluvial.io.kafka_check import check_cluster
    from fluvial.runtime.config import StreamsConfig

    config = StreamsConfig.create(config_file, flags=True, application_id=application_id,
                                  bootstrap_servers=bootstrap_servers,
                                  kafka_config=kafka_config, admin_config=admin_config,
                                  connect_timeout_ms=connect_timeout_ms)
    if config.bootstrap_servers is None:
        raise click.UsageError("name the broker: --embedded DIR or --bootstrap-servers "
                               "HOST:PORT (or bootstrap_servers in --config)")
    client = config.client_config("admin")
    check_cluster(config.bootstrap_servers, [client], config.connect_timeout_ms / 1000)
    admin = KafkaGroupAdmin(config.bootstrap_servers, client)
    try:
        yield admin
    finally:
        admin.close()


_UDF_MODULE = click.option(
    "--udf-module", "udf_modules", multiple=True, metavar="MODULE",
    help="Import MODULE and let SQL call its @fluvial.sql.udf/udaf/udtf functions "
         "(repeatable).")


def _sql_options(fn: Any) -> Any:
    """What every SQL front door takes: the registry, log format, UDF modules, broker and
    settings."""
    for option in (_with_settings, _EMBEDDED, _UDF_MODULE, _LOG_FORMAT, _SCHEMA_REGISTRY):
        fn = option(fn)
    return fn


@cli.group(invoke_without_command=True)
@click.option("--file", "-f", "script", type=click.Path(exists=True, dir_okay=False),
              help="Run this script's statements, then its persistent queries until Ctrl-C.")
@click.option("--server", "server", metavar="URL", default=None,
              help="The shell talks to this `fluvial sql-server` (http://HOST:PORT) instead "
                   "of running statements in-process.")
@_sql_options
@click.pass_context
def sql(ctx: click.Context, script: str | None, server: str | None,
        schema_registry: str | None, log_format: str, udf_modules: tuple[str, ...],
        embedded: str | None, **settings: Any) -> None:
    """Streaming SQL, ksqlDB's language: `fluvial sql` (the shell; in-process on --embedded
    DIR or -b HOST:PORT, or --server URL); `fluvial sql -f FILE.sql`; `fluvial sql test F.json`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from fluvial.cli.sql import resolved_settings, run_script, script_settings, shell

    given = {k: v for k, v in settings.items() if v is not None}
    settings = script_settings(script, given) if script is not None else \
        resolved_settings(given, "fluvial-sql-shell")
    if embedded is not None and settings["bootstrap_servers"] is not None:
        raise click.UsageError("--embedded and --bootstrap-servers exclude each other")
    if server is not None and (script is not None or embedded is not None
                               or settings["bootstrap_servers"] is not None):
        raise click.UsageError("--server excludes -f, --embedded and --bootstrap-servers "
                               "(the server has its broker)")
    if script is not None:
        configure_logging(ctx.obj["log_level"], settings["application_id"], None, log_format)
        run_script(script, settings, embedded, schema_registry, udf_modules,
                   before_run=_own_process)
        return
    # the shell's own output is the point: the queries' INFO lines would interleave with it
    level = ctx.obj["log_level"] if ctx.obj["log_level"] == "DEBUG" else "WARNING"
    configure_logging(level, settings["application_id"], None, log_format)
    sys.exit(shell(server, settings, embedded, schema_registry, udf_modules))


@cli.command("sql-server")
@click.option("--listen", default="127.0.0.1:8088", show_default=True,
              help="HOST:PORT the REST API listens on.")
@_sql_options
@click.pass_context
def sql_server(ctx: click.Context, listen: str, schema_registry: str | None,
               log_format: str, udf_modules: tuple[str, ...],
               embedded: str | None, **settings: Any) -> None:
    """ksqlDB's REST API (/ksql, /query, /query-stream, /info, ...) over fluvial SQL."""
    from fluvial.cli.sql import resolved_settings, serve

    settings = resolved_settings({k: v for k, v in settings.items() if v is not None},
                                 "fluvial-sql-server")
    if embedded is not None and settings["bootstrap_servers"] is not None:
        raise click.UsageError("--embedded and --bootstrap-servers exclude each other")
    configure_logging(ctx.obj["log_level"], settings["application_id"], None, log_format)
    serve(listen, settings, embedded, schema_registry, udf_modules)


@sql.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_UDF_MODULE
def sql_test(files: tuple[str, ...], udf_modules: tuple[str, ...]) -> None:
    """Run ksqlDB query-validation-test FILES (JSON); print a pass/fail table."""
    from fluvial.cli.sql import test_files

    sys.exit(test_files(files, udf_modules))


def _report(exc: BaseException) -> int:
    """Print ``exc`` as the user should see it; the exit code for it."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):  # click: Ctrl-C is Abort
        click.echo("fluvial: interrupted", err=True)
        return EXIT_INTERRUPTED
    if _debug and not _json_logs:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, click.UsageError):  # one line, like every other failure
        command = exc.ctx.command_path if exc.ctx is not None else "fluvial"
        click.echo(f"fluvial: error: {exc.format_message()} ({command} --help)", err=True)
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if isinstance(exc, FluvialError):
        _say_error(f"fluvial: error: {exc}", exc)
        return EXIT_FAILURE
    _say_error(f"fluvial: error: {type(exc).__name__}: {exc} (--debug shows where)", exc)
    return 1


def _say_error(line: str, exc: BaseException) -> None:
    """The failure's one line; under JSON logs a JSON log line, so a log pipeline keeps it
    (with the traceback as a field under --debug)."""
    if _json_logs:
        logging.getLogger("fluvial.cli").error(line, exc_info=exc if _debug else None)
    else:
        click.echo(line, err=True)


def main() -> None:
    try:
        cli(standalone_mode=False, prog_name="fluvial")
    except BaseException as exc:
        sys.exit(_report(exc))


if __name__ == "__main__":
    main()

