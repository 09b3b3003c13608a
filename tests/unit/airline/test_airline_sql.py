"""The airline scoring in SQL (the model as a UDF) gives the DSL service's scores."""

from __future__ import annotations

from examples.airline import service, sql_scoring

import fluvial
from fluvial import ml
from fluvial.ml import LightGBMModel
from fluvial.sql import Engine

MALFORMED = "1987,10,not-a-number"


def test_a_sql_csas_scores_flights_as_the_dsl_service_does(
        service_model: LightGBMModel, flight_lines: list[str]) -> None:
    lines = [*flight_lines[5000:5200], MALFORMED]
    with fluvial.TestDriver(service.build(), on_error="dead_letter") as dsl:
        ml.publish_model(dsl, service.MODELS, service_model.to_bytes())
        dsl.input_topic(service.INPUT, "bytes", "string").pipe_list(lines)
        expected = dsl.output_topic(service.OUTPUT, "string", "json").read_key_values()
        dsl_dead = [m.value() for m in dsl.read("test-app-dead-letter")]

    engine = Engine(functions=sql_scoring.functions(service_model))
    engine.execute(sql_scoring.SCRIPT)
    with fluvial.TestDriver(engine.topology(), on_error="dead_letter") as sql:
        sql.input_topic(service.INPUT, "bytes", "string").pipe_list(lines)
        scored = sql.output_topic(sql_scoring.OUTPUT, "string", "json").read_key_values()
        sql_dead = sql.read("test-app-dead-letter")

    assert len(expected) == len(scored) == 200
    assert [k for k, _ in scored] == [k for k, _ in expected]
    assert [v["P_YES"] for _, v in scored] == [v["probabilities"][1] for _, v in expected]
    assert [v["PREDICTION"] for _, v in scored] == [v["prediction"] for _, v in expected]
    assert {v["PREDICTION"] for _, v in scored} == {"YES", "NO"}
    # the malformed line: the UDF raises, the record goes to the error policy in both
    assert dsl_dead == [MALFORMED.encode()]
    assert [m.value() for m in sql_dead] == [MALFORMED.encode()]
    assert "Function FLIGHT_KEY failed" in dict(sql_dead[0].headers() or [])[
        "fluvial.error"].decode()
