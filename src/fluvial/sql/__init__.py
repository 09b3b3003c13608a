"""Streaming SQL: ksqlDB's language compiled onto fluvial's engine (see docs/sql.md).

``Engine`` runs statements and compiles persistent queries into one topology (for the
``TestDriver`` or an ``App``); ``prepare`` runs a script and builds the ``App`` of its
queries; ``run_file`` runs a ksqlDB query-validation-test file.
"""

from fluvial.sql.engine import Engine, Result
from fluvial.sql.errors import SqlAnalysisError, SqlError, SqlExecutionError, SqlSyntaxError
from fluvial.sql.runner import prepare
from fluvial.sql.testing import CaseResult, format_table, run_case, run_file

__all__ = ["CaseResult", "Engine", "Result", "SqlAnalysisError", "SqlError",
           "SqlExecutionError", "SqlSyntaxError", "format_table", "prepare", "run_case",
           "run_file"]
