"""Errors of the SQL layer: each one line naming where (line:column) and why."""

from __future__ import annotations

from fluvial.errors import FluvialError


class SqlError(FluvialError):
    """A statement cannot be parsed, analysed or executed as written."""


class SqlSyntaxError(SqlError):
    """The text is not a statement of the language; names line, column, token, expectation."""


class SqlAnalysisError(SqlError):
    """A statement parses but means nothing: an unknown column, a type mismatch, ..."""


class SqlExecutionError(SqlError):
    """A well-formed statement that cannot run now (a name taken, a source missing, ...)."""


def at(pos: tuple[int, int] | None, message: str) -> str:
    """``line L:C: message``, as ksqlDB prefixes its errors, where a position is known."""
    return f"line {pos[0]}:{pos[1]}: {message}" if pos else message
