"""Streaming SQL: ksqlDB's language compiled onto fluvial's engine (see docs/sql.md).

``Engine`` runs statements and compiles persistent queries into one topology (for the
``TestDriver`` or an ``App``); ``prepare`` runs a script and builds the ``App`` of its
queries; ``run_file`` runs a ksqlDB query-validation-test file. ``udf``, ``udaf`` and
``udtf`` mark Python functions SQL may call, collected by a ``FunctionRegistry``.
``SqlService`` keeps an engine and the App of its queries for statements that arrive one
at a time, and ``KsqlServer`` serves it over ksqlDB's REST API (``fluvial sql-server``).
"""

from typing import TYPE_CHECKING, Any

from fluvial.sql.engine import Engine, Result
from fluvial.sql.errors import SqlAnalysisError, SqlError, SqlExecutionError, SqlSyntaxError
from fluvial.sql.runner import prepare
from fluvial.sql.service import SqlService
from fluvial.sql.testing import CaseResult, format_table, run_case, run_file
from fluvial.sql.udfs import FunctionRegistry, UdfError, UdfFailed, udaf, udf, udtf

if TYPE_CHECKING:
    from fluvial.server.ksql import KsqlServer

__all__ = ["CaseResult", "Engine", "FunctionRegistry", "KsqlServer", "Result",
           "SqlAnalysisError", "SqlError", "SqlExecutionError", "SqlService", "SqlSyntaxError",
           "UdfError", "UdfFailed", "format_table", "prepare", "run_case", "run_file", "udaf",
           "udf", "udtf"]


def __getattr__(name: str) -> Any:
    # fluvial.server.ksql imports this package's modules, so it loads on first use
    if name == "KsqlServer":
        from fluvial.server.ksql import KsqlServer
        return KsqlServer
    raise AttributeError(f"module 'fluvial.sql' has no attribute {name!r}")
