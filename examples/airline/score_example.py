"""Score flights inside a topology, with the model read from a models topic.

    python -m examples.airline.score_example

Trains a tiny model (a few thousand flights, a few trees: a second), publishes it to the
models topic of a TestDriver, scores a few lines of the data file (printed in the talk's
console format), then publishes a second version and scores again: the outputs carry the new
version, no restart.
"""

from __future__ import annotations

from typing import Any

import fluvial
from examples.airline.flights import flight_key, parse_line, read_lines
from examples.airline.train import train
from fluvial import ml

INPUT, OUTPUT, MODELS = "AirlineInputTopic", "AirlineOutputTopic", "airline-models"


def to_json(line: str, p: ml.Prediction) -> dict[str, Any]:
    """The output value: the flight's key fields, the prediction, the model version."""
    flight = parse_line(line)
    return {"flight": flight_key(flight), "prediction": p.label,
            "probabilities": {"NO": 1 - p.probability, "YES": p.probability},
            "threshold": p.threshold, "model_version": p.version}


def build(metrics: ml.ScoringMetrics | None = None) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    models = ml.ModelTopic(builder, MODELS)
    lines = builder.stream(INPUT, value_serde="string")
    ml.score(lines, models.model("airline-delay"), featurize=parse_line, output=to_json,
             metrics=metrics).to(OUTPUT)
    return builder.build()


def talk_format(line: str, out: dict[str, Any]) -> str:
    p = out["probabilities"]
    return (f"#####\nFlight Input:{line}\n"
            f"Label (aka prediction) is flight departure delayed: {out['prediction']}\n"
            f"Class probabilities: {p['NO']},{p['YES']}\n#####")


def main() -> None:
    data = read_lines()
    v1 = train(data[:4000], trees=10, seed=1, threads=1).model
    v2 = train(data[:4000], trees=20, seed=2, threads=1).model
    metrics = ml.ScoringMetrics()
    with fluvial.TestDriver(build(metrics), on_error="dead_letter") as driver:
        flights = driver.input_topic(INPUT)
        output = driver.output_topic(OUTPUT)
        ml.publish_model(driver, MODELS, v1.to_bytes())
        sample = data[:3]
        flights.pipe_list(sample)
        for line, out in zip(sample, output.read_values(), strict=True):
            print(talk_format(line, out))
        ml.publish_model(driver, MODELS, v2.to_bytes())  # hot swap: the next batch uses v2
        flights.pipe_list([*sample, ""])                 # "" is malformed: dead-lettered
        for out in output.read_values():
            print(f"{out['flight']}: {out['prediction']} "
                  f"(P(YES) {out['probabilities']['YES']:.3f}, model {out['model_version']})")
        dead = driver.read(f"{driver.application_id}-dead-letter")
        print(f"dead-lettered: {len(dead)} ({dict(dead[0].headers() or [])['fluvial.error']!r})")
    print(f"metrics: {metrics.as_dict()}")


if __name__ == "__main__":
    main()
