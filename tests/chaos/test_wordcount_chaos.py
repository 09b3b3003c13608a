"""WordCount under chaos (tests/chaos/scenario.py): instances SIGKILLed and restarted, one
SIGTERM, one broker SIGKILLed and restarted, on a real 3-node cluster.

``make test`` runs the short form; ``make chaos`` the long one. Settings from the
environment: CHAOS_SIZE (short | long), CHAOS_GUARANTEE (exactly_once | at_least_once),
CHAOS_SEED, CHAOS_BROKER (leader | follower | none), CHAOS_STATIC (1 | 0: static
membership), CHAOS_STANDBYS (num_standby_replicas, default 0), CHAOS_DEBUG (librdkafka
``debug`` contexts for the instances' group consumers, e.g. ``cgrp``), CHAOS_RESULTS (a file the
run's figures are appended to, one JSON line).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.chaos.scenario import ChaosPlan, run_chaos
from tests.integration.kafka_helpers import KafkaTestBroker
from tests.integration.wordcount_support import Instance

SIZES = {
    "short": {"lines": 30_000, "kills": 3, "drain_timeout_s": 180.0},
    "long": {"lines": 300_000, "kills": 15, "drain_timeout_s": 300.0},
}


def _plan() -> ChaosPlan:
    size = os.environ.get("CHAOS_SIZE", "short")
    if size not in SIZES:
        raise pytest.UsageError(f"CHAOS_SIZE={size!r}: one of {', '.join(SIZES)}")
    broker = os.environ.get("CHAOS_BROKER", "leader")
    return ChaosPlan(guarantee=os.environ.get("CHAOS_GUARANTEE", "exactly_once"),
                     seed=int(os.environ.get("CHAOS_SEED", "1")),
                     broker_role=None if broker == "none" else broker,
                     static_membership=os.environ.get("CHAOS_STATIC", "0") == "1",
                     standbys=int(os.environ.get("CHAOS_STANDBYS", "0")),
                     librdkafka_debug=os.environ.get("CHAOS_DEBUG", ""),
                     **SIZES[size])  # type: ignore[arg-type]


def _keep_logs(plan: ChaosPlan, tmp_path: Path, into: Path) -> None:
    """The instances' logs beside the figures: pytest drops its temporary directories after
    a few runs, and a slow takeover is explained only by them."""
    run = into / (f"{plan.guarantee}-seed{plan.seed}-{plan.broker_role or 'nobroker'}"
                  f"-standbys{plan.standbys}")
    run.mkdir(parents=True, exist_ok=True)
    for log in tmp_path.glob("*.log"):
        shutil.copy(log, run / log.name)


@pytest.mark.chaos
@pytest.mark.timeout(1800)  # the long form runs ~10 min; each phase has its own deadline
def test_wordcount_under_chaos(chaos_cluster: KafkaTestBroker, tmp_path: Path,
                               unique_topic: Callable[[str], str],
                               instances: list[Instance]) -> None:
    plan = _plan()
    result = run_chaos(plan, chaos_cluster, tmp_path, unique_topic, instances)
    print("\n" + "\n".join(result.events) + f"\n{result.summary()}")
    if os.environ.get("CHAOS_RESULTS"):
        with open(os.environ["CHAOS_RESULTS"], "a") as out:
            out.write(result.as_json() + "\n")
        _keep_logs(plan, tmp_path, Path(os.environ["CHAOS_RESULTS"]).parent / "chaos-logs")
    assert not result.self_exits, "instances exited by themselves:\n" + "\n".join(
        result.self_exits)
    assert result.kills == plan.kills and result.sigterms == int(plan.sigterm)
    assert len(result.broker_restarts) == int(plan.broker_role is not None)
    assert result.lost == 0, f"{result.lost} counts lost ({result.lost_words} words)\n" \
                             f"{result.summary()}"
    if plan.guarantee == "exactly_once":
        assert result.extra == 0, f"{result.extra} counts above the input " \
                                  f"({result.extra_words} words)\n{result.summary()}"
        assert result.non_monotonic == 0, result.summary()
