"""The airline service's scoring in SQL: the model is a Python UDF, the query a CSAS.

    python -m examples.airline.sql_scoring

``functions(model)`` gives the registry of two UDFs closing over a model:
``DELAY_PROBABILITY(line)`` (P(departure delayed), as the DSL service's
``probabilities[1]``) and ``DELAY_LABEL(line)`` (YES at or above the model's threshold).
``SCRIPT`` reads the service's input topic (one CSV line per record, KAFKA format) and writes
``AirlineSqlScores`` keyed by flight. A malformed line makes the UDF raise, so it goes to the
app's error policy, as it does in the DSL service.
"""

from __future__ import annotations

import fluvial
import fluvial.sql
from examples.airline.flights import flight_key, parse_line, read_lines
from examples.airline.service import INPUT
from examples.airline.train import train
from fluvial import ml

OUTPUT = "AirlineSqlScores"

SCRIPT = f"""
CREATE STREAM FLIGHTS (LINE STRING) WITH (KAFKA_TOPIC='{INPUT}', VALUE_FORMAT='KAFKA');
CREATE STREAM SCORED WITH (KAFKA_TOPIC='{OUTPUT}', VALUE_FORMAT='JSON') AS
  SELECT FLIGHT_KEY(LINE) AS FLIGHT, DELAY_PROBABILITY(LINE) AS P_YES,
         DELAY_LABEL(LINE) AS PREDICTION
  FROM FLIGHTS
  PARTITION BY FLIGHT_KEY(LINE);
"""


def functions(model: ml.Model) -> fluvial.sql.FunctionRegistry:
    """The UDFs of ``SCRIPT``, scoring with ``model``."""
    negative, positive = getattr(model, "classes", ("NO", "YES"))

    @fluvial.sql.udf(name="FLIGHT_KEY", description="The flight a CSV line is about.")
    def key(line: str) -> str:
        return flight_key(parse_line(line))

    @fluvial.sql.udf(name="DELAY_PROBABILITY",
                     description="P(departure delayed) of a CSV line, by the model.")
    def probability(line: str) -> float:
        return float(model.predict_row(parse_line(line)))

    @fluvial.sql.udf(name="DELAY_LABEL", description="YES if the flight will be delayed.")
    def label(line: str) -> str:
        return positive if probability(line) >= model.threshold else negative

    return fluvial.sql.FunctionRegistry([key, probability, label])


def main() -> None:
    data = read_lines()
    model = train(data[:3000], trees=10, seed=1, threads=1).model
    engine = fluvial.sql.Engine(functions=functions(model))
    engine.execute(SCRIPT)
    with fluvial.TestDriver(engine.topology()) as driver:
        driver.input_topic(INPUT, "bytes", "string").pipe_list(data[:3])
        for flight, score in driver.output_topic(OUTPUT, "string", "json").read_key_values():
            print(flight, score)


if __name__ == "__main__":
    main()
