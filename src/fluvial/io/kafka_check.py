"""Before an app touches a real cluster: is a broker reachable there, and does it let us in?

Without this check an unreachable broker shows up late and noisily (client calls that block
for their full timeout while librdkafka retries, a Ctrl-C that waits for them). Here the wait
is bounded, made of short metadata requests so Ctrl-C acts within half a second, and each
failure is one line naming the address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient

from fluvial.errors import FluvialError
from fluvial.io.kafka_logging import librdkafka_logger

_ATTEMPT_S = 0.5  # one metadata request: the longest Ctrl-C can wait
_AUTH_FAILED = (ck.KafkaError._AUTHENTICATION, ck.KafkaError.SASL_AUTHENTICATION_FAILED,
                ck.KafkaError._SSL)
_SECURITY_PREFIXES = ("security.", "sasl.", "ssl.")


class BrokerUnreachableError(FluvialError):
    """No broker answered at the bootstrap address within the connect timeout."""


class AuthenticationError(FluvialError):
    """A broker answered but refused the client's credentials (SASL or TLS)."""


def security_settings(client_config: Mapping[str, Any]) -> dict[str, Any]:
    """The librdkafka properties of ``client_config`` that decide whether we may connect."""
    return {k: v for k, v in client_config.items() if k.startswith(_SECURITY_PREFIXES)}


def check_cluster(bootstrap_servers: str, client_configs: Sequence[Mapping[str, Any]],
                  timeout_s: float, stop: threading.Event | None = None) -> None:
    """Return once a broker at ``bootstrap_servers`` answers a metadata request made with
    each distinct set of security settings of ``client_configs`` (one per kind of client the
    app opens), or once ``stop`` is set; raise ``AuthenticationError`` at once when one
    refuses us, ``BrokerUnreachableError`` when none answered within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    distinct = {tuple(sorted(security_settings(c).items())) for c in client_configs} or {()}
    for settings in sorted(distinct):
        _check_with(bootstrap_servers, dict(settings), timeout_s, deadline, stop)


def _check_with(bootstrap_servers: str, security: dict[str, Any], timeout_s: float,
                deadline: float, stop: threading.Event | None) -> None:
    errors: list[ck.KafkaError] = []
    conf: dict[str, Any] = {**security, "bootstrap.servers": bootstrap_servers,
                            "error_cb": errors.append, "logger": librdkafka_logger()}
    admin = AdminClient(conf)
    last = "no answer"
    while stop is None or not stop.is_set():
        try:
            admin.list_topics(timeout=max(0.01, min(_ATTEMPT_S, deadline - time.monotonic())))
            return
        except ck.KafkaException as exc:
            last = exc.args[0].str() if exc.args else str(exc)
        admin.poll(0)  # serves error_cb and the log lines
        refused = [e for e in errors if e.code() in _AUTH_FAILED]
        if refused:
            raise AuthenticationError(
                f"the broker at {bootstrap_servers} refused our credentials: "
                f"{refused[0].str()}; check the security.protocol, sasl.* and ssl.* settings "
                f"(kafka_config, or consumer_config / producer_config / admin_config)")
        if errors:
            last = errors[-1].str()
        if time.monotonic() >= deadline:
            raise BrokerUnreachableError(
                f"no Kafka broker reachable at {bootstrap_servers} after {timeout_s:g} s "
                f"({last}); is it running? (--bootstrap-servers; leave it out for the "
                f"embedded broker)")
