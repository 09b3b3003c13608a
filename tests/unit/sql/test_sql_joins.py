"""What the case files cannot show of SQL joins: where an error points, and the internal
topics a join query's topology reads and writes."""

import pytest

from fluvial.sql import Engine
from fluvial.sql.errors import SqlAnalysisError

SOURCES = """
    CREATE STREAM S (ID STRING KEY, CID STRING, V INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');
    CREATE STREAM S2 (ID STRING KEY, W INT) WITH (KAFKA_TOPIC='s2', VALUE_FORMAT='JSON');
    CREATE TABLE T (ID STRING PRIMARY KEY, NAME STRING) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');
"""


def _engine() -> Engine:
    engine = Engine()
    engine.execute(SOURCES)
    return engine


@pytest.mark.parametrize(("query", "at_text", "why"), [
    ("SELECT S.ID, V FROM S\n  JOIN S2 ON S.ID = S2.ID", "JOIN S2",
     "Stream-Stream joins must have a WITHIN clause"),
    ("SELECT S.ID, V FROM S FULL JOIN T ON S.ID = T.ID", "FULL",
     "full-outer join not supported for stream-table join"),
    ("SELECT S.ID, V FROM S JOIN T\n ON S.ID <> T.ID", "S.ID <>",
     "Unsupported join expression"),
    ("SELECT S.ID, V FROM S JOIN T ON S.ID = T.NAME", "T.NAME",
     "Cannot repartition a TABLE source"),
])
def test_join_errors_name_line_and_column(query: str, at_text: str, why: str) -> None:
    statement = f"CREATE STREAM OUT AS {query};"
    before = statement[:statement.index(at_text)]
    line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    with pytest.raises(SqlAnalysisError) as error:
        _engine().execute(statement)
    message = str(error.value)
    assert message.startswith(f"line {line}:{column}: ") and why in message, message


def test_a_stream_joined_on_a_value_column_goes_through_the_query_s_repartition_topic() -> None:
    engine = _engine()
    engine.execute("CREATE STREAM OUT AS SELECT T.ID, V, NAME FROM S JOIN T ON S.CID = T.ID;")
    text = engine.topology().describe()
    assert "(topic: CSAS_OUT_0-Join-repartition)" in text
    assert "(topics: [CSAS_OUT_0-Join-repartition])" in text


def test_a_stream_joined_on_its_key_is_not_repartitioned() -> None:
    engine = _engine()
    engine.execute("CREATE STREAM OUT AS SELECT S.ID, V, W FROM S JOIN S2 WITHIN 1 SECOND "
                   "ON S.ID = S2.ID;")
    assert "repartition" not in engine.topology().describe()
