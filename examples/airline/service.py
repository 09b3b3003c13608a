"""The airline flight-delay microservice: CSV lines in, one prediction per flight out.

    fluvial run examples.airline.service:build -a airline-delay -b HOST:PORT --workers N \\
        --on-error dead_letter

``AirlineInputTopic`` carries CSV lines exactly as in the data file (latin-1 or UTF-8 bytes);
``AirlineOutputTopic`` gets, keyed by the flight (``1987-10-14 PS1451 SAN-SFO 0730``), a JSON
object::

    {"flight": "1987-10-14 PS1451 SAN-SFO 0730", "Year": 1987, "Month": 10, "DayofMonth": 14,
     "UniqueCarrier": "PS", "FlightNum": "1451", "Origin": "SAN", "Dest": "SFO",
     "CRSDepTime": 730, "prediction": "YES", "probabilities": [0.3204, 0.6796],
     "threshold": 0.485, "model": "airline-delay", "model_version": "a68a6df8a6de",
     "scored_at": 1735689600000}

``probabilities`` is ``[P(NO), P(YES)]``; ``prediction`` is YES when P(YES) >= threshold;
``scored_at`` is milliseconds since the epoch. With ``output_format="talk"`` the value is the
talk's console text instead (``Flight Input: …`` / ``Label (aka prediction) is flight
departure delayed: YES`` / ``Class probabilities: p_no,p_yes``).

The model comes from the models topic (``AirlineModels``, key ``airline-delay``): publish a
file there (``fluvial.ml.publish_model``) and the service swaps to it between two batches.
Unknown carriers or airports and ``NA`` values score as missing. A poll batch's lines are
parsed together (``parse_columns``, several times cheaper a line); a batch holding a malformed
line is parsed line by line instead, where an empty or malformed line fails featurization and
goes to the app's error policy: run with ``--on-error dead_letter`` (``APP_SETTINGS``;
``python -m examples.airline.service`` sets it for you) and it lands on ``<application
id>-dead-letter`` with the reason in the ``fluvial.error`` header — nothing is lost. With the
default ``stop`` the service stops at such a line, having committed nothing past it.

Topic names and format can also come from ``FLUVIAL_AIRLINE_INPUT``, ``FLUVIAL_AIRLINE_OUTPUT``,
``FLUVIAL_AIRLINE_MODELS``, ``FLUVIAL_AIRLINE_FORMAT`` (``json`` or ``talk``) and
``FLUVIAL_AIRLINE_MODEL`` (the model's name on the models topic).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import fluvial
from examples.airline.flights import COLUMNS, MISSING, flight_key, parse_columns, parse_line
from fluvial import ml

INPUT = "AirlineInputTopic"
OUTPUT = "AirlineOutputTopic"
MODELS = "AirlineModels"
MODEL_NAME = "airline-delay"
APPLICATION_ID = "airline-delay"
FORMATS = ("json", "talk")

#: The settings the service is meant to run with (``fluvial run ... --on-error dead_letter``).
APP_SETTINGS: dict[str, Any] = {"on_error": "dead_letter"}

#: The flight's key fields in the JSON output, in order; numbers are ints, the rest strings.
KEY_FIELDS: tuple[str, ...] = ("Year", "Month", "DayofMonth", "UniqueCarrier", "FlightNum",
                               "Origin", "Dest", "CRSDepTime")
_NUMERIC_KEY_FIELDS = frozenset(("Year", "Month", "DayofMonth", "CRSDepTime"))
_KEY_AT = tuple((name, COLUMNS.index(name), name in _NUMERIC_KEY_FIELDS) for name in KEY_FIELDS)


class FlightLineSerde:
    """A CSV line as text: bytes are read as UTF-8, or as latin-1 (the data file's encoding)
    when they are not UTF-8, so any bytes read; text is written as UTF-8."""

    name = "flight-line"

    def serialize(self, value: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode()

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data.decode("latin-1")


def key_fields(line: str) -> dict[str, Any]:
    """The flight's key fields of a line that parsed (``parse_line``): ints and strings,
    ``None`` for ``NA``."""
    fields = line.rstrip("\r\n").split(",")
    out: dict[str, Any] = {}
    for name, i, numeric in _KEY_AT:
        raw = fields[i]
        if raw == MISSING or raw == "":
            out[name] = None
        else:
            out[name] = int(raw) if numeric else raw
    return out


def talk_text(line: str, label: str, p_no: float, p_yes: float) -> str:
    """The talk's console text for one prediction (three lines)."""
    return (f"Flight Input: {line.rstrip(chr(13) + chr(10))}\n"
            f"Label (aka prediction) is flight departure delayed: {label}\n"
            f"Class probabilities: {p_no},{p_yes}")


def json_output(line: str, p: ml.Prediction) -> tuple[str, dict[str, Any]]:
    """(key, JSON value) of one scored line."""
    fields = key_fields(line)
    key = flight_key(fields)
    return key, {"flight": key, **fields, "prediction": p.label,
                 "probabilities": [1.0 - p.probability, p.probability],
                 "threshold": p.threshold, "model": p.model, "model_version": p.version,
                 "scored_at": time.time_ns() // 1_000_000}


def talk_output(line: str, p: ml.Prediction) -> tuple[str, str]:
    """(key, the talk's console text) of one scored line."""
    return (flight_key(key_fields(line)),
            talk_text(line, p.label, 1.0 - p.probability, p.probability))


def _pair(_key: Any, keyed: tuple[str, Any]) -> tuple[str, Any]:
    return keyed


def build(input_topic: str | None = None, output_topic: str | None = None,
          models_topic: str | None = None, output_format: str | None = None, *,
          model_name: str | None = None,
          metrics: ml.ScoringMetrics | None = None) -> fluvial.Topology:
    """AirlineInputTopic → score with the model on AirlineModels → AirlineOutputTopic.

    Arguments left out come from ``$FLUVIAL_AIRLINE_INPUT`` / ``_OUTPUT`` / ``_MODELS`` /
    ``_FORMAT`` / ``_MODEL``, then the defaults. ``metrics`` (a ``ScoringMetrics``) collects
    the scoring operator's counters in this process.
    """
    env = os.environ.get
    input_topic = input_topic or env("FLUVIAL_AIRLINE_INPUT") or INPUT
    output_topic = output_topic or env("FLUVIAL_AIRLINE_OUTPUT") or OUTPUT
    models_topic = models_topic or env("FLUVIAL_AIRLINE_MODELS") or MODELS
    model_name = model_name or env("FLUVIAL_AIRLINE_MODEL") or MODEL_NAME
    output_format = (output_format or env("FLUVIAL_AIRLINE_FORMAT") or "json").lower()
    if output_format not in FORMATS:
        raise fluvial.ConfigError(f"output_format {output_format!r} is not one of: "
                                  f"{', '.join(FORMATS)}")
    output: Callable[[str, ml.Prediction], tuple[str, Any]] = (
        json_output if output_format == "json" else talk_output)

    builder = fluvial.StreamsBuilder()
    models = ml.ModelTopic(builder, models_topic)
    lines = builder.stream(input_topic, key_serde="bytes", value_serde=FlightLineSerde())
    scored = ml.score(lines, models.model(model_name), featurize=parse_line,
                      featurize_batch=parse_columns, output=output, metrics=metrics,
                      name="score-flights")
    scored.map(_pair, name="key-by-flight").to(
        output_topic, key_serde="string",
        value_serde="json" if output_format == "json" else "string")
    return builder.build()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m examples.airline.service [fluvial run options]``: ``fluvial run
    examples.airline.service:build`` with the service's defaults (application id
    ``airline-delay``, ``--on-error dead_letter``) unless given."""
    from fluvial.cli.main import main as fluvial_main

    args = list(sys.argv[1:] if argv is None else argv)
    defaults: list[str] = []
    if not {"-a", "--application-id"} & set(args) and "FLUVIAL_APPLICATION_ID" not in os.environ:
        defaults += ["-a", APPLICATION_ID]
    if "--on-error" not in args and "FLUVIAL_ON_ERROR" not in os.environ:
        defaults += ["--on-error", APP_SETTINGS["on_error"]]
    sys.argv = ["fluvial", "run", "examples.airline.service:build", *defaults, *args]
    fluvial_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
