"""Reprocessing: rewind an application to reprocess its input from scratch (`fluvial reset`).

As Kafka's streams application reset tool: with every instance stopped, the group's
committed offsets on the input topics move back (to the beginning, or to a point in time),
and the internal topics (repartition and changelog: derived data; and the instance directory
``<application_id>-instances``) are deleted so the next start recreates them empty. For a SQL
service, asked for explicitly, its command topic too: every statement it was given is
forgotten. Local state is derived data too: it is wiped with
``--local-state-dir``, or must be wiped on every instance by hand (an instance that kept its
stores would count on top of the old results).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from fluvial.errors import ConfigError, FluvialError
from fluvial.io.client import TopicPartition
from fluvial.io.group_admin import GroupAdmin
from fluvial.runtime import state_lock
from fluvial.runtime.discovery import instances_topic

# Kafka Streams' internal topics are "<application.id>-<name>-<suffix>" (fluvial names its
# own so: topology/nodes.py changelog_topic, dsl/stream.py repartition); the foreign-key join
# topics are matched too, as Kafka's reset tool matches them
_INTERNAL = re.compile(r".+-(changelog|repartition|subscription-registration-topic"
                       r"|subscription-response-topic)"
                       r"|KTABLE-FK-JOIN-SUBSCRIPTION-(REGISTRATION|RESPONSE)-\d+-topic")
_DURATION = re.compile(r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
                       r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?", re.I)


class ActiveGroupError(FluvialError):
    """The application still has running instances: a reset would race them."""


@dataclass(frozen=True)
class ResetPosition:
    """Where the input offsets go: the earliest offset, or the first at or after a time."""

    timestamp_ms: int | None
    description: str


def parse_position(to_earliest: bool, to_datetime: str | None, by_duration: str | None,
                   now: dt.datetime | None = None) -> ResetPosition:
    chosen = [flag for flag, given in (("--to-earliest", to_earliest),
                                       ("--to-datetime", to_datetime is not None),
                                       ("--by-duration", by_duration is not None)) if given]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} exclude each other: give one")
    if to_datetime is not None:
        when = parse_datetime(to_datetime)
        return ResetPosition(int(when.timestamp() * 1000), f"to {when.isoformat()}")
    if by_duration is not None:
        back = parse_duration(by_duration)
        when = (now or dt.datetime.now(dt.UTC)) - back
        return ResetPosition(int(when.timestamp() * 1000),
                             f"by {by_duration} (to {when.isoformat(timespec='seconds')})")
    return ResetPosition(None, "to the earliest offsets")


def parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 (``2026-12-03T10:00:00``, ``...Z``, ``...+01:00``); without a zone: UTC."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--to-datetime {text!r} is not an ISO 8601 date-time "
                          f"(e.g. 2026-12-03T10:00:00Z or 2026-12-03T11:00:00+01:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def parse_duration(text: str) -> dt.timedelta:
    """ISO 8601 durations as Java's ``Duration.parse`` reads them: ``PT15M``, ``P1DT2H``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()) or text.strip().upper()[-1] == "T":
        raise ConfigError(f"--by-duration {text!r} is not an ISO 8601 duration "
                          f"(e.g. PT15M, PT2H, P1DT12H)")
    part = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return dt.timedelta(days=part["d"], hours=part["h"], minutes=part["m"], seconds=part["s"])


def internal_topics(application_id: str, topics: list[str]) -> list[str]:
    """The application's internal topics among ``topics``, by name (as Kafka's tool: an
    application id that begins another's, "app" and "app-x", matches the other's too), and
    its instance directory (runtime/discovery.py), by its exact name."""
    prefix = f"{application_id}-"
    return sorted(t for t in topics
                  if (t.startswith(prefix) and _INTERNAL.fullmatch(t[len(prefix):]))
                  or t == instances_topic(application_id))


@dataclass(frozen=True)
class ResetPlan:
    application_id: str
    position: ResetPosition
    offsets: dict[TopicPartition, tuple[int | None, int]]  # (committed now, after the reset)
    internal_topics: list[str]
    local_state: Path | None  # the state directory to wipe, if given
    command_topic: str | None = None  # a SQL service's, when asked to delete it

    def describe(self) -> list[str]:
        lines = [f"reset of application {self.application_id!r}:"]
        if self.offsets:
            lines.append(f"  input offsets of group {self.application_id!r}, "
                         f"{self.position.description}:")
            for tp, (now, new) in sorted(self.offsets.items()):
                was = "none" if now is None else str(now)
                lines.append(f"    {tp.topic}[{tp.partition}]: {was} -> {new}")
        else:
            lines.append("  no input offsets to reset")
        lines.append(f"  internal topics to delete: {', '.join(self.internal_topics) or 'none'}")
        if self.command_topic is not None:
            lines.append(f"  SQL command topic to delete (every statement forgotten): "
                         f"{self.command_topic}")
        if self.local_state is not None:
            lines.append(f"  local state to delete: {self.local_state}")
        else:
            lines.append("  local state: not touched; delete <state-dir>/"
                         f"{self.application_id} on every instance before it starts again "
                         "(or pass --local-state-dir)")
        return lines


def plan_reset(admin: GroupAdmin, application_id: str, input_topics: list[str] | None,
               position: ResetPosition, local_state_dir: Path | None = None,
               sql_command_topic: bool = False) -> ResetPlan:
    """Check no instance runs, then work out what the reset changes (nothing changes yet).

    ``input_topics`` None: the non-internal topics the group has committed offsets on.
    ``sql_command_topic``: ``application_id`` is a SQL service id; delete its command topic."""
    members = admin.active_members(application_id)
    if members:
        raise ActiveGroupError(
            f"application {application_id!r} still has {len(members)} active member(s) in "
            f"its consumer group ({', '.join(members[:3])}{', ...' if len(members) > 3 else ''}"
            f"); stop every instance, then reset")
    topics = admin.topics()
    committed = admin.committed(application_id)
    internal = internal_topics(application_id, list(topics))
    if input_topics is None:
        inputs = sorted({tp.topic for tp in committed} - set(internal))
    else:
        missing = [t for t in input_topics if t not in topics]
        if missing:
            raise ConfigError(f"--input-topics: topic(s) {', '.join(missing)} do not exist")
        inputs = sorted(set(input_topics))
    partitions = [TopicPartition(t, p) for t in inputs for p in range(topics[t])]
    targets = admin.offsets_at(partitions, position.timestamp_ms)
    offsets = {tp: (committed.get(tp), targets[tp]) for tp in partitions}
    state = local_state_dir / application_id if local_state_dir is not None else None
    command = None
    if sql_command_topic:
        from fluvial.sql.commands import command_topic  # loads the SQL engine: only if asked

        command = command_topic(application_id)
        if command not in topics:
            raise ConfigError(f"--sql-command-topic: no topic {command!r}: is "
                              f"{application_id!r} the id of a SQL service (fluvial sql-server "
                              f"--application-id)?")
    return ResetPlan(application_id, position, offsets, internal, state, command)


def apply_reset(admin: GroupAdmin, plan: ResetPlan) -> None:
    """Rewind the offsets, delete the internal topics, wipe the local state (if given)."""
    state = plan.local_state if plan.local_state is not None and plan.local_state.exists() \
        else None
    if state is not None:
        state_lock.acquire(state)  # refuses while an instance on this machine holds it
    try:
        # the group must still be empty: an instance started since the plan would race us
        members = admin.active_members(plan.application_id)
        if members:
            raise ActiveGroupError(f"application {plan.application_id!r}: an instance joined "
                                   f"while resetting ({', '.join(members[:3])}); stop it, "
                                   f"then reset again")
        admin.commit(plan.application_id, {tp: new for tp, (_, new) in plan.offsets.items()})
        admin.delete_topics(plan.internal_topics + ([plan.command_topic]
                                                    if plan.command_topic is not None else []))
        if state is not None:
            _wipe(state)
    finally:
        if state is not None:
            state_lock.release(state)


def _wipe(directory: Path) -> None:
    """Delete what is in the app's state directory but its lock (held by us right now)."""
    for entry in directory.iterdir():
        if entry.name == state_lock.LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
