"""Parsing: statements become trees; anything else becomes one SqlSyntaxError naming line,
column, the offending token and what was expected, never a traceback (fuzzed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fluvial.errors import FluvialError
from fluvial.sql import ast
from fluvial.sql.errors import SqlError, SqlSyntaxError
from fluvial.sql.parser import parse

CASES = Path(__file__).resolve().parents[2] / "sql" / "cases"


def _valid_statements() -> list[str]:
    statements = []
    for f in sorted(CASES.glob("*.json")):
        for case in json.loads(f.read_text())["tests"]:
            if "expectedException" not in case:
                statements += [s.replace("{FORMAT}", "JSON") for s in case["statements"]]
    return statements


VALID = _valid_statements()
TOKENS = ["SELECT", "FROM", "WHERE", "GROUP", "BY", "CREATE", "STREAM", "TABLE", "AS", "(",
          ")", ",", ";", "*", "+", "-", "/", "=", "<>", "<=", "'text'", "'", "1", "1.5", "1e3",
          "A", "`q`", "KEY", "PRIMARY", "WITH", "WINDOW", "TUMBLING", "SIZE", "SECONDS", "AND",
          "OR", "NOT", "NULL", "IS", "IN", "LIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE",
          "END", "CAST", "INSERT", "INTO", "VALUES", "DROP", "EMIT", "CHANGES", ".", "$", "@",
          "\n", "--c\n", "/*", "*/", "\"", "HAVING", "PARTITION"]


def test_a_statement_becomes_a_tree() -> None:
    [stmt] = parse("CREATE STREAM S AS SELECT a, COUNT(*) AS c FROM t "
                   "WINDOW TUMBLING (SIZE 1 MINUTE) WHERE x BETWEEN 1 AND 2 GROUP BY a;")
    assert isinstance(stmt, ast.CreateAs)
    q = stmt.query
    assert q.source == "T"
    assert q.window == ast.WindowSpec("TUMBLING", 60_000)
    assert q.group_by == (ast.ColumnRef("A"),)
    assert q.where == ast.Between(ast.ColumnRef("X"), ast.Literal(1), ast.Literal(2), False)
    assert q.items[1] == ast.SelectItem(ast.FunctionCall("COUNT", (), True), "C")


def test_precedence_and_negative_literals() -> None:
    [stmt] = parse("INSERT INTO s VALUES (1 + 2 * -3 < 4 OR NOT a AND b);")
    assert isinstance(stmt, ast.InsertValues)
    expr = stmt.values[0]
    assert isinstance(expr, ast.Logical) and expr.op == "OR"
    left, right = expr.operands
    assert left == ast.Comparison("<", ast.Arithmetic(
        "+", ast.Literal(1), ast.Arithmetic("*", ast.Literal(2), ast.Literal(-3))), ast.Literal(4))
    assert right == ast.Logical("AND", (ast.Not(ast.ColumnRef("A")), ast.ColumnRef("B")))


def test_error_names_line_column_token_and_expectation() -> None:
    with pytest.raises(SqlSyntaxError) as err:
        parse("CREATE STREAM s (id STRING KEY,\n  a INT a) WITH (KAFKA_TOPIC='t');")
    message = str(err.value)
    assert message.startswith("line 2:9: syntax error at 'a': expected ")
    assert "')'" in message and "','" in message and "\n" not in message


def test_an_unexpected_character_is_named() -> None:
    with pytest.raises(SqlSyntaxError, match=r"^line 1:17: syntax error at '\$'"):
        parse("SELECT a FROM s $;")


def test_the_end_of_input_is_named() -> None:
    with pytest.raises(SqlSyntaxError, match=r"^line 2:6: syntax error at end of input: "
                                             r"expected .*'FROM'"):
        parse("SELECT\n a, b")


def _check_one_line_error(text: str) -> None:
    try:
        parse(text)
    except SqlError as exc:
        message = str(exc)
        assert message.startswith("line ") and "\n" not in message, (text, message)
        assert isinstance(exc, FluvialError)
    # any other exception escapes and fails the test with its traceback


def test_fuzz_random_token_streams() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        text = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 25)))
        _check_one_line_error(text)


def test_fuzz_truncated_and_mutated_valid_statements() -> None:
    rng = random.Random(34)
    assert len(VALID) > 200
    for statement in VALID:
        for cut in range(0, len(statement), max(1, len(statement) // 15)):
            _check_one_line_error(statement[:cut])
        tokens = statement.split()
        for _ in range(3):
            mutated = list(tokens)
            mutated[rng.randrange(len(mutated))] = rng.choice(TOKENS)
            _check_one_line_error(" ".join(mutated))


def test_fuzz_through_the_engine_gives_sql_errors_only() -> None:
    """Mutated statements of every valid case, run in order on a fresh engine and compiled:
    they succeed or fail with a one-line SqlError (analysis and planning included)."""
    from fluvial.sql import Engine

    rng = random.Random(56)
    words = ["SELECT", "FROM", "WHERE", "GROUP", "BY", "*", "+", "/", "=", "'x'", "1", "1.5",
             "A", "ID", "S", "KEY", "WINDOW", "SIZE", "AND", "NOT", "NULL", "IN", "LIKE",
             "CASE", "CAST", "(", ")", ",", "COUNT(*)", "SUM(A)", "WINDOWSTART", "ROWTIME",
             "PARTITION", "HAVING", "EMIT", "FINAL", "DECIMAL(2,1)", "INT", "TABLE", "STREAM"]
    for f in sorted(CASES.glob("*.json")):
        for case in json.loads(f.read_text())["tests"]:
            if "expectedException" in case:
                continue
            statements = [s.replace("{FORMAT}", "JSON") for s in case["statements"]]
            for _ in range(8):
                i = rng.randrange(len(statements))
                tokens = statements[i].split()
                tokens[rng.randrange(len(tokens))] = rng.choice(words)
                engine = Engine(clock_ms=lambda: 0)
                try:
                    for s in [*statements[:i], " ".join(tokens), *statements[i + 1:]]:
                        engine.execute(s)
                    if engine.queries:
                        engine.topology()
                except SqlError as exc:
                    assert "\n" not in str(exc), str(exc)
