"""on_error = stop | skip | dead_letter, for undecodable input and failing user code."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial import ConfigError, OnError, ProcessingError, StreamsBuilder, TestDriver


def _boom_on_3(v: Any) -> Any:
    if v == 3:
        raise ValueError("three is not allowed")
    return v * 10


def _topology() -> Any:
    b = StreamsBuilder()
    b.stream("in").map_values(_boom_on_3).to("out")
    return b.build()


def _pipe_mixed(d: TestDriver) -> None:
    """offset 0: 1, offset 1: bad JSON, offset 2: 3 (user code fails), offset 3: 4."""
    d.input_topic("in").pipe(1, key="a")
    d._pipe("in", b"b", b"{oops", 0, None)
    d.input_topic("in").pipe(3, key="c")
    d.input_topic("in").pipe(4, key="d")


# -- stop ------------------------------------------------------------------------------------

def test_stop_on_undecodable_input_names_everything() -> None:
    with TestDriver(_topology(), application_id="billing", on_error="stop") as d:
        d.input_topic("in").pipe(1, key="a")
        with pytest.raises(ProcessingError) as info:
            d._pipe("in", b"b", b"{oops", 0, None)
    err = info.value
    text = str(err)
    for part in ("'billing'", "task 0_0", "topic 'in'", "partition 0", "offset 1",
                 "deserializing the value", "SerdeError", "invalid JSON"):
        assert part in text, part
    assert (err.application_id, err.task_id, err.topic, err.partition, err.offset) == (
        "billing", "0_0", "in", 0, 1)
    assert err.stage == "deserializing the value"
    assert type(err.__cause__).__name__ == "SerdeError"


def test_stop_on_user_function_error() -> None:
    with TestDriver(_topology(), application_id="billing") as d:  # stop is the default
        d.input_topic("in").pipe_list([1, 2])
        with pytest.raises(ProcessingError) as info:
            d.input_topic("in").pipe(3, key="k")
        assert d.output_topic("out").read_values() == [10, 20]
    text = str(info.value)
    for part in ("'billing'", "task 0_0", "topic 'in'", "partition 0", "offset 2", "map_values",
                 "ValueError: three is not allowed"):
        assert part in text, part
    assert isinstance(info.value.__cause__, ValueError)


def test_stop_on_undecodable_key() -> None:
    b = StreamsBuilder(default_key_serde="int64")
    b.stream("in").to("out")
    with TestDriver(b.build()) as d, pytest.raises(ProcessingError,
                                                   match=r"deserializing the key.*8 bytes"):
        d._pipe("in", b"\x01", b"1", 0, None)


def test_stop_in_a_downstream_subtopology_names_its_task_and_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: str(v)).repartition().map_values(_boom_on_3).to(
        "out")
    with TestDriver(b.build(), application_id="app") as d, \
            pytest.raises(ProcessingError) as info:
        d.input_topic("in").pipe(3, key="k")
    err = info.value
    assert (err.task_id, err.topic, err.offset) == (
        "1_0", "app-KSTREAM-REPARTITION-0000000002-repartition", 0)
    assert "task 1_0" in str(err)


def test_driver_goes_on_after_a_stop_error_without_leftovers() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    s.map_values(_boom_on_3).to("out")
    s.map_values(lambda v: -v).to("neg")
    with TestDriver(b.build()) as d:
        with pytest.raises(ProcessingError):
            d.input_topic("in").pipe(3, key="k")
        # the failed record is not half-processed later: the other path never sees it
        d.input_topic("in").pipe(4, key="k")
        assert d.output_topic("out").read_values() == [40]
        assert d.output_topic("neg").read_values() == [-4]


# -- skip ------------------------------------------------------------------------------------

def test_skip_drops_bad_records_and_processes_the_others() -> None:
    with TestDriver(_topology(), on_error="skip") as d:
        _pipe_mixed(d)
        assert d.output_topic("out").read_key_values() == [("a", 10), ("d", 40)]
        assert d.read("test-app-dead-letter") == []


def test_skip_accepts_the_enum() -> None:
    with TestDriver(_topology(), on_error=OnError.SKIP) as d:
        _pipe_mixed(d)
        assert d.output_topic("out").read_values() == [10, 40]


def test_skip_in_an_aggregation_leaves_its_state_alone() -> None:
    def add(k: Any, v: Any, agg: int) -> int:
        if v < 0:
            raise ValueError("negative")
        return agg + v

    b = StreamsBuilder()
    b.stream("in").group_by_key().aggregate(lambda: 0, add, "sum").to_stream().to("out")
    with TestDriver(b.build(), on_error="skip") as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", -5), ("a", 2)])
        assert d.store("sum").get("a") == 3
        assert d.output_topic("out").read_values() == [1, 3]


@pytest.mark.parametrize("where", ["filter", "peek", "flat_map_values", "split", "table"])
def test_skip_in_every_kind_of_operator(where: str) -> None:
    def check(v: Any) -> bool:
        if v == 3:
            raise ValueError("bad")
        return True

    b = StreamsBuilder()
    if where == "table":
        b.table("in").filter(lambda k, v: check(v)).to_stream().to("out")
    else:
        s = b.stream("in")
        if where == "filter":
            s = s.filter(lambda k, v: check(v))
        elif where == "peek":
            s = s.peek(lambda k, v: check(v))
        elif where == "flat_map_values":
            s = s.flat_map_values(lambda v: [v] if check(v) else [])
        else:
            s = s.split().branch(lambda k, v: check(v), name="x").no_default_branch()[
                "KSTREAM-BRANCH-0000000001x"]
        s.to("out")
    with TestDriver(b.build(), on_error="skip") as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 3), ("c", 4)])
        assert d.output_topic("out").read_key_values() == [("a", 1), ("c", 4)]


def test_skip_on_a_sink_that_cannot_serialize() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out", value_serde="int64")
    with TestDriver(b.build(), on_error="skip") as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", "x"), ("c", 2)])
        assert d.output_topic("out").read_values() == [1, 2]


# -- dead letter -----------------------------------------------------------------------------

def _headers(record: Any) -> dict[str, bytes | None]:
    return dict(record.headers())


def test_dead_letter_gets_the_original_bytes_and_error_headers() -> None:
    with TestDriver(_topology(), application_id="billing", on_error="dead_letter") as d:
        _pipe_mixed(d)
        assert d.output_topic("out").read_values() == [10, 40]
        dead = d.read("billing-dead-letter")
    assert [(m.key(), m.value()) for m in dead] == [(b"b", b"{oops"), (b"c", b"3")]
    first, second = (_headers(m) for m in dead)
    assert first["fluvial.topic"] == b"in"
    assert first["fluvial.partition"] == b"0"
    assert first["fluvial.offset"] == b"1"
    assert b"invalid JSON" in (first["fluvial.error"] or b"")
    assert second["fluvial.offset"] == b"2"
    assert b"three is not allowed" in (second["fluvial.error"] or b"")
    assert b"billing" in (second["fluvial.error"] or b"")


def test_dead_letter_to_a_configured_topic() -> None:
    with TestDriver(_topology(), on_error="dead_letter", dead_letter_topic="errors") as d:
        _pipe_mixed(d)
        assert len(d.read("errors")) == 2
        assert d.read("test-app-dead-letter") == []
        # readable as raw bytes through the driver too
        assert d.output_topic("errors").read_key_value() == (b"b", b"{oops")


def test_dead_letter_keeps_the_timestamp() -> None:
    with TestDriver(_topology(), on_error="dead_letter") as d:
        d.input_topic("in").pipe(3, key="k", timestamp=1234)
        assert d.output_topic("test-app-dead-letter").read_record().timestamp == 1234


# -- configuration ---------------------------------------------------------------------------

def test_bad_on_error_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"on_error='ignore'.*stop.*skip.*dead_letter"):
        TestDriver(_topology(), on_error="ignore")


def test_dead_letter_keeps_the_original_headers_before_its_own() -> None:
    with TestDriver(_topology(), on_error="dead_letter") as d:
        d.input_topic("in").pipe(3, key="k", headers=[("trace", b"abc")])
        (dead,) = d.read("test-app-dead-letter")
    names = [name for name, _ in dead.headers()]
    assert names[0] == "trace" and dead.headers()[0][1] == b"abc"
    assert "fluvial.error" in names[1:]
