"""The airline microservice's topology on the TestDriver: outputs, odd inputs, dead letters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from examples.airline import service
from examples.airline.flights import flight_key, parse_line

import fluvial
from fluvial import ml
from fluvial.errors import ProcessingError
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.io.serdes import BytesSerde, StringSerde
from fluvial.ml import LightGBMModel
from fluvial.processing.errors import ErrorPolicy
from fluvial.processing.processor import CollectorBase
from fluvial.processing.task import Task
from fluvial.state.stack import memory_store

FIRST = ("1987,10,14,3,741,730,912,849,PS,1451,NA,91,79,NA,23,11,SAN,SFO,447,NA,NA,0,NA,0,"
         "NA,NA,NA,NA,NA,YES,YES")
DEAD = "test-app-dead-letter"


class Service:
    """The service on a TestDriver with the model published; lines in, outputs out."""

    def __init__(self, driver: fluvial.TestDriver, fmt: str = "json") -> None:
        self.driver = driver
        self.lines = driver.input_topic(service.INPUT, key_serde="bytes", value_serde="bytes")
        self.output = driver.output_topic(service.OUTPUT, key_serde="string",
                                          value_serde="json" if fmt == "json" else "string")

    def send(self, *lines: str | bytes | None) -> None:
        for line in lines:
            self.lines.pipe(line.encode() if isinstance(line, str) else line)

    def dead(self) -> list[tuple[bytes | None, dict[str, bytes | None]]]:
        return [(m.value(), dict(m.headers() or [])) for m in self.driver.read(DEAD)]


@pytest.fixture()
def run(service_model: LightGBMModel) -> Iterator[Any]:
    drivers: list[fluvial.TestDriver] = []

    def start(fmt: str | None = None, on_error: str = "dead_letter",
              **kwargs: Any) -> Service:
        driver = fluvial.TestDriver(service.build(output_format=fmt, **kwargs),
                                    on_error=on_error)
        drivers.append(driver)
        ml.publish_model(driver, kwargs.get("models_topic") or service.MODELS,
                         service_model.to_bytes())
        return Service(driver, fmt or "json")

    yield start
    for d in drivers:
        d.close()


def probability(model: LightGBMModel, line: str) -> float:
    return float(model.predict_proba({f: [v] for f, v in parse_line(line).items()})[0])


def test_a_flight_gives_one_json_prediction_keyed_by_flight(run: Any,
                                                             service_model: LightGBMModel) -> None:
    s = run()
    s.send(FIRST)
    (record,) = s.output.read_records()
    out = record.value
    assert record.key == "1987-10-14 PS1451 SAN-SFO 0730" == flight_key(parse_line(FIRST))
    assert out["flight"] == record.key
    assert {k: out[k] for k in service.KEY_FIELDS} == {
        "Year": 1987, "Month": 10, "DayofMonth": 14, "UniqueCarrier": "PS", "FlightNum": "1451",
        "Origin": "SAN", "Dest": "SFO", "CRSDepTime": 730}
    p_yes = probability(service_model, FIRST)
    assert out["probabilities"] == [1.0 - p_yes, p_yes]
    assert out["threshold"] == service_model.threshold
    assert out["prediction"] == ("YES" if p_yes >= service_model.threshold else "NO")
    assert out["model"] == "airline-delay"
    assert out["model_version"] == service_model.version
    assert isinstance(out["scored_at"], int) and out["scored_at"] > 1_600_000_000_000
    assert set(out) == {"flight", *service.KEY_FIELDS, "prediction", "probabilities",
                        "threshold", "model", "model_version", "scored_at"}
    assert dict(record.headers or [])["fluvial.model.version"] == service_model.version.encode()


def test_many_flights_score_as_one_by_one(run: Any, service_model: LightGBMModel,
                                          flight_lines: list[str]) -> None:
    s = run()
    sample = flight_lines[5000:5200]
    s.lines.pipe_list([line.encode("latin-1") for line in sample])
    outs = s.output.read_key_values()
    assert [k for k, _ in outs] == [flight_key(parse_line(line)) for line in sample]
    expected = service_model.predict_proba(
        {f: [parse_line(line)[f] for line in sample] for f in service_model.features})
    assert [v["probabilities"][1] for _, v in outs] == [float(p) for p in expected]


def test_na_values_and_unknown_categories_are_scored_as_missing(
        run: Any, service_model: LightGBMModel) -> None:
    s = run()
    unknown = FIRST.replace(",PS,", ",ZZ,").replace(",SAN,SFO,", ",XYZ,QQQ,")
    missing = FIRST.replace(",PS,", ",NA,").replace(",SAN,SFO,", ",NA,NA,")
    all_na = ",".join(["NA"] * 31)
    s.send(unknown, missing, all_na)
    a, b, c = s.output.read_records()
    assert a.key == "1987-10-14 ZZ1451 XYZ-QQQ 0730"
    assert a.value["probabilities"] == b.value["probabilities"]  # unseen = missing
    assert b.key == "1987-10-14 NA1451 NA-NA 0730"
    assert b.value["UniqueCarrier"] is None and b.value["Origin"] is None
    assert c.key == "NA-NA-NA NANA NA-NA NA"
    assert all(c.value[k] is None for k in service.KEY_FIELDS)
    assert 0.0 < c.value["probabilities"][1] < 1.0
    assert s.dead() == []


def test_latin1_bytes_and_utf8_text_read_alike(run: Any, flight_lines: list[str]) -> None:
    line = next(x for x in flight_lines if not x.isascii())  # a TailNum of the file
    s = run()
    s.send(line.encode("latin-1"), line.encode("utf-8"))
    a, b = s.output.read_records()
    assert a.key == b.key and a.value["probabilities"] == b.value["probabilities"]


@pytest.mark.parametrize(("line", "reason"), [
    ("", "MalformedFlight: empty line"),
    ("\r\n", "MalformedFlight: empty line"),
    (FIRST.replace(",NA,YES,YES", ",YES,YES"), "expected 31 comma-separated columns, got 30"),
    ("hello, world", "expected 31 comma-separated columns, got 2"),
    (FIRST.replace("1987,", "19x7,", 1), "column Year: '19x7' is not an integer or NA"),
    (FIRST.replace("YES,YES", "YES,MAYBE"), "column IsDepDelayed: 'MAYBE' is not YES, NO or NA"),
    (None, "a flight line must be text, not NoneType"),
])
def test_malformed_lines_go_to_the_dead_letter_topic_with_the_reason(
        run: Any, line: str | None, reason: str) -> None:
    s = run()
    s.send(FIRST, line, FIRST.replace(",14,3,", ",15,4,"))
    assert [k for k, _ in s.output.read_key_values()] == [
        "1987-10-14 PS1451 SAN-SFO 0730", "1987-10-15 PS1451 SAN-SFO 0730"]  # the rest goes on
    ((value, headers),) = s.dead()
    assert value == (line.encode() if line is not None else None)  # the original bytes
    error = (headers["fluvial.error"] or b"").decode()
    assert reason in error
    assert service.INPUT in error and "offset 1" in error
    assert headers["fluvial.stage"] == b"score-flights: featurize"


def test_nothing_is_lost_record_by_record(run: Any, flight_lines: list[str]) -> None:
    s = run()
    lines: list[str] = []
    for i, line in enumerate(flight_lines[:300]):
        lines.append(line)
        if i % 50 == 0:
            lines.append("" if i % 100 else "not,a,flight")
    s.lines.pipe_list([x.encode() for x in lines])
    assert len(s.output.read_records()) == 300
    assert len(s.dead()) == 6


def test_nothing_is_lost_in_one_batch(service_model: LightGBMModel,
                                      flight_lines: list[str]) -> None:
    """300 flights and 6 bad lines in one batch (as a poll gives them): 300 outputs, in
    order, and 6 dead letters."""
    topology = service.build()
    models = memory_store(f"{service.MODELS}-models", StringSerde(), BytesSerde())
    models.put(service.MODEL_NAME, (service_model.to_bytes(), 0))
    (st,) = topology.subtopologies
    collector = _Collector()
    task = Task("0_0", st, 0, "app", {}, collector, ErrorPolicy.parse("dead_letter"),
                lambda: 0, global_stores={models.name: models})
    lines: list[str] = []
    for i, line in enumerate(flight_lines[:300]):
        lines.append(line)
        if i % 50 == 0:
            lines.append("" if i % 100 else "not,a,flight")
    task.process(service.INPUT, [EmbeddedMessage(service.INPUT, 0, i, None,
                                                 x.encode("latin-1"), 1, None)
                                 for i, x in enumerate(lines)])
    out = [k for t, k, _ in collector.sent if t == service.OUTPUT]
    dead = [v for t, _, v in collector.sent if t == "app-dead-letter"]
    assert [k.decode() for k in out if k] == [flight_key(parse_line(x))
                                              for x in flight_lines[:300]]
    assert sorted(d or b"" for d in dead) == [b""] * 3 + [b"not,a,flight"] * 3


class _Collector(CollectorBase):
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Any, partition: int | None) -> None:
        self.sent.append((topic, key, value))


def test_the_default_error_policy_stops_at_a_malformed_line(run: Any) -> None:
    s = run(on_error="stop")
    with pytest.raises(ProcessingError, match="empty line"):
        s.send("")


def test_the_talk_format(run: Any, service_model: LightGBMModel) -> None:
    s = run("talk")
    s.send(FIRST)
    (record,) = s.output.read_records()
    p_yes = probability(service_model, FIRST)
    label = "YES" if p_yes >= service_model.threshold else "NO"
    assert record.key == "1987-10-14 PS1451 SAN-SFO 0730"
    assert record.value == (f"Flight Input: {FIRST}\n"
                            f"Label (aka prediction) is flight departure delayed: {label}\n"
                            f"Class probabilities: {1.0 - p_yes},{p_yes}")


def test_topic_names_and_format_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                      service_model: LightGBMModel) -> None:
    monkeypatch.setenv("FLUVIAL_AIRLINE_INPUT", "in")
    monkeypatch.setenv("FLUVIAL_AIRLINE_OUTPUT", "out")
    monkeypatch.setenv("FLUVIAL_AIRLINE_MODELS", "models")
    monkeypatch.setenv("FLUVIAL_AIRLINE_FORMAT", "talk")
    topology = service.build()
    assert sorted(topology.external_source_topics()) == ["in", "models"]
    assert "out" in topology.describe() and "models" in topology.describe()
    with fluvial.TestDriver(topology, on_error="dead_letter") as driver:
        ml.publish_model(driver, "models", service_model.to_bytes())
        driver.input_topic("in", value_serde="string").pipe(FIRST)
        (value,) = driver.output_topic("out", value_serde="string").read_values()
        assert value.startswith("Flight Input: 1987,10,14")
    # arguments win over the environment
    assert "AirlineOutputTopic" in service.build(output_topic="AirlineOutputTopic").describe()


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(fluvial.ConfigError, match="output_format 'xml'"):
        service.build(output_format="xml")


def test_line_serde_reads_any_bytes() -> None:
    serde = service.FlightLineSerde()
    assert serde.deserialize("N700é".encode()) == "N700é"
    assert serde.deserialize("N700é".encode("latin-1")) == "N700é"
    assert serde.deserialize(None) is None
    assert serde.serialize("N700é") == "N700é".encode()
    assert serde.serialize(b"\xe9") == b"\xe9"


def test_service_main_runs_fluvial_run_with_the_service_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    import fluvial.cli.main as cli

    monkeypatch.setattr(cli, "main", lambda: seen.append(list(sys.argv)))
    monkeypatch.delenv("FLUVIAL_APPLICATION_ID", raising=False)
    monkeypatch.delenv("FLUVIAL_ON_ERROR", raising=False)
    service.main(["-b", "localhost:9092", "--workers", "3"])
    service.main(["-a", "mine", "--on-error", "stop"])
    assert seen == [
        ["fluvial", "run", "examples.airline.service:build", "-a", "airline-delay",
         "--on-error", "dead_letter", "-b", "localhost:9092", "--workers", "3"],
        ["fluvial", "run", "examples.airline.service:build", "-a", "mine", "--on-error",
         "stop"],
    ]
