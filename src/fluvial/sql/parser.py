"""Text to syntax tree: lark's LALR(1) parser over ``grammar.lark``, then a transformer.

Every failure becomes one ``SqlSyntaxError`` naming line, column, the offending token and
what the grammar expected there; no lark exception or traceback reaches a user.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from fluvial.sql import ast
from fluvial.sql.errors import SqlError, SqlSyntaxError

_UNITS_MS = {
    "MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000,
    "DAY": 86_400_000,
}


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, start="script", parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=True)


@cache
def _terminal_names() -> dict[str, str]:
    """How each terminal reads in an error: its keyword or symbol, else what it stands for."""
    names = {}
    for t in _parser().terminals:
        pattern = t.pattern
        if pattern.type == "str":
            names[t.name] = f"'{pattern.value.upper()}'"
        else:
            names[t.name] = t.name.lower().replace("_", " ")
    names.update({"IDENTIFIER": "an identifier", "QUOTED_IDENTIFIER": "a quoted identifier",
                  "DIGIT_IDENTIFIER": "an identifier",
                  "COMPARE": "a comparison", "EQ": "'='", "ADD_OP": "'+'/'-'",
                  "MUL_OP": "'*'/'/'/'%'", "$END": "end of input", "STRING": "a string",
                  "INTEGER": "an integer", "BOOLEAN": "TRUE/FALSE", "DECIMAL_NUMBER": "a number",
                  "FLOAT_NUMBER": "a number", "KEY_CONSTRAINT": "'KEY'/'PRIMARY KEY'",
                  "HEADERS_CONSTRAINT": "'HEADERS'", "SOURCE_KIND": "'STREAM'/'TABLE'",
                  "SHOWABLE": "'STREAMS'/'TABLES'/'QUERIES'", "EMIT_KIND": "'CHANGES'/'FINAL'",
                  "EXTENDED": "'EXTENDED'", "NOT": "'NOT'", "STAR": "'*'"})
    return names


def parse(text: str) -> list[ast.Statement]:
    """Every statement of ``text`` (statements end with ';')."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise SqlSyntaxError(_describe(exc, text)) from None
    try:
        return list(_ToAst().transform(tree))
    except VisitError as exc:
        if isinstance(exc.orig_exc, SqlError):
            raise exc.orig_exc from None
        raise


def _describe(exc: UnexpectedInput, text: str) -> str:
    names = _terminal_names()
    if isinstance(exc, UnexpectedCharacters):
        where = exc.pos_in_stream or 0
        char = text[where] if where < len(text) else ""
        return f"line {exc.line}:{exc.column}: syntax error at {char!r}: unexpected character"
    expected = sorted({names.get(e, e) for e in getattr(exc, "expected", set())
                       if not e.startswith("__ANON")} | _anonymous(exc))
    shown = ", ".join(expected[:12]) + (", ..." if len(expected) > 12 else "")
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        line, column = _end_position(text)
        return f"line {line}:{column}: syntax error at end of input: expected {shown}"
    return (f"line {token.line}:{token.column}: syntax error at {str(token)!r}: "
            f"expected {shown}")


def _anonymous(exc: UnexpectedInput) -> set[str]:
    """Anonymous terminals (lark's ``__ANON_n``: keywords written inline) by their text."""
    by_name = {t.name: t.pattern for t in _parser().terminals}
    return {f"'{by_name[e].value.upper()}'" for e in getattr(exc, "expected", set())
            if e.startswith("__ANON") and by_name[e].type == "str"}


def _end_position(text: str) -> tuple[int, int]:
    lines = text.rstrip().split("\n") or [""]
    return len(lines), len(lines[-1]) + 1


def _pos(meta: Any) -> ast.Pos:
    return (getattr(meta, "line", 0), getattr(meta, "column", 0))


def _tpos(token: Token) -> ast.Pos:
    return (token.line or 0, token.column or 0)


def _name(token: Token) -> str:
    """Unquoted identifiers are upper-cased, as ksqlDB does; back-quoted ones keep case."""
    text = str(token)
    if token.type == "QUOTED_IDENTIFIER":
        return text[1:-1].replace("``", "`")
    return text.upper()


@v_args(meta=True)
class _ToAst(Transformer):
    # -- statements ---------------------------------------------------------------------
    def script(self, meta: Any, items: list[Any]) -> list[ast.Statement]:
        return [s for s in items if s is not None]

    def create_source(self, meta: Any, c: list[Any]) -> ast.CreateSource:
        or_replace, read_only, kind, if_not_exists, name, columns, props = c
        return ast.CreateSource(kind, name[0], tuple(columns or ()), tuple(props or ()),
                                or_replace is not None, if_not_exists is not None,
                                read_only is not None, _pos(meta))

    def create_as(self, meta: Any, c: list[Any]) -> ast.CreateAs:
        or_replace, kind, if_not_exists, name, props, query = c
        return ast.CreateAs(kind, name[0], tuple(props or ()), query, or_replace is not None,
                            if_not_exists is not None, _pos(meta))

    def insert_values(self, meta: Any, c: list[Any]) -> ast.InsertValues:
        name, columns, values = c
        return ast.InsertValues(name[0], tuple(columns or ()), tuple(values), _pos(meta))

    def insert_select(self, meta: Any, c: list[Any]) -> ast.InsertSelect:
        name, _props, query = c
        return ast.InsertSelect(name[0], query, _pos(meta))

    def drop(self, meta: Any, c: list[Any]) -> ast.Drop:
        kind, if_exists, name, delete_topic = c
        return ast.Drop(kind, name[0], if_exists is not None, delete_topic is not None,
                        _pos(meta))

    def show(self, meta: Any, c: list[Any]) -> ast.Show:
        return ast.Show(str(c[0]).upper(), _pos(meta))

    def describe(self, meta: Any, c: list[Any]) -> ast.Describe:
        return ast.Describe(c[1][0], c[0] is not None, _pos(meta))

    def terminate(self, meta: Any, c: list[Any]) -> ast.Terminate:
        return ast.Terminate(c[0][0], _pos(meta))

    def describe_function(self, meta: Any, c: list[Any]) -> ast.DescribeFunction:
        return ast.DescribeFunction(c[0][0], _pos(meta))

    def or_replace(self, meta: Any, c: list[Any]) -> bool:
        return True

    if_not_exists = if_exists = delete_topic = read_only = or_replace

    def source_kind(self, meta: Any, c: list[Any]) -> str:
        return str(c[0]).upper()

    def column_list(self, meta: Any, c: list[Any]) -> list[str]:
        return [n[0] for n in c]

    def table_elements(self, meta: Any, c: list[Any]) -> list[ast.ColumnDef]:
        return c

    def column_def(self, meta: Any, c: list[Any]) -> ast.ColumnDef:
        name, type_, constraint = c
        return ast.ColumnDef(name[0], type_, constraint, name[1])

    def constraint(self, meta: Any, c: list[Any]) -> str:
        words = str(c[0]).upper().split()
        return " ".join(words) if words[-1] == "KEY" else "HEADERS"

    def type(self, meta: Any, c: list[Any]) -> ast.TypeName:
        name, p1, p2 = c
        params = tuple(int(p) for p in (p1, p2) if p is not None)
        return ast.TypeName(name[0], params, name[1])

    def with_props(self, meta: Any, c: list[Any]) -> list[ast.Property]:
        return c

    def prop(self, meta: Any, c: list[Any]) -> ast.Property:
        name, _eq, value = c
        return ast.Property(name[0], value.value, name[1])

    def ident(self, meta: Any, c: list[Token]) -> tuple[str, ast.Pos]:
        return _name(c[0]), _tpos(c[0])

    # -- queries --------------------------------------------------------------------------
    def query(self, meta: Any, c: list[Any]) -> ast.Query:
        _stream, items, source, joins, window, where, group_by, partition_by, having, emit, \
            limit = c
        name, alias = source
        return ast.Query(tuple(items), name[0], alias, window, where, tuple(group_by or ()),
                         tuple(partition_by or ()), having, emit, limit, _pos(meta), name[1],
                         tuple(joins))

    def joins(self, meta: Any, c: list[Any]) -> list[ast.Join]:
        return c

    def join(self, meta: Any, c: list[Any]) -> ast.Join:
        kind, (name, alias), within, on = c
        word = str(kind).split()[0].upper() if kind is not None else "INNER"
        return ast.Join("FULL" if word == "OUTER" else word, name[0], alias, within, on,
                        _pos(meta), name[1])

    def within(self, meta: Any, c: list[Any]) -> ast.JoinWithin:
        *bounds, grace = c
        before, after = bounds if len(bounds) == 2 else (bounds[0], bounds[0])
        return ast.JoinWithin(before, after, grace, _pos(meta))

    def join_grace(self, meta: Any, c: list[Any]) -> int:
        return int(c[0])

    def select_items(self, meta: Any, c: list[Any]) -> list[ast.SelectItem]:
        return c

    def all_columns(self, meta: Any, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(None, pos=_pos(meta))

    def source_all_columns(self, meta: Any, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(None, star_source=c[0][0], pos=_pos(meta))

    def aliased(self, meta: Any, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(c[0], c[1][0], pos=_pos(meta))

    def unaliased(self, meta: Any, c: list[Any]) -> ast.SelectItem:
        return ast.SelectItem(c[0], pos=_pos(meta))

    def from_source(self, meta: Any, c: list[Any]) -> tuple[Any, str | None]:
        return c[0], (c[1][0] if c[1] is not None else None)

    def where(self, meta: Any, c: list[Any]) -> ast.Expr:
        return c[0]

    having = where

    def group_by(self, meta: Any, c: list[Any]) -> list[ast.Expr]:
        return c[0]

    partition_by = group_by

    def emit(self, meta: Any, c: list[Any]) -> str:
        return str(c[0]).upper()

    def limit(self, meta: Any, c: list[Any]) -> int:
        return int(c[0])

    def tumbling(self, meta: Any, c: list[Any]) -> ast.WindowSpec:
        size, (retention, grace) = c
        return ast.WindowSpec("TUMBLING", size, None, retention, grace, _pos(meta))

    def hopping(self, meta: Any, c: list[Any]) -> ast.WindowSpec:
        size, advance, (retention, grace) = c
        return ast.WindowSpec("HOPPING", size, advance, retention, grace, _pos(meta))

    def session(self, meta: Any, c: list[Any]) -> ast.WindowSpec:
        gap, (retention, grace) = c
        return ast.WindowSpec("SESSION", gap, None, retention, grace, _pos(meta))

    def window_options(self, meta: Any, c: list[Any]) -> tuple[int | None, int | None]:
        found = dict(c)
        return found.get("retention"), found.get("grace")

    def retention(self, meta: Any, c: list[Any]) -> tuple[str, int]:
        return "retention", c[0]

    def grace(self, meta: Any, c: list[Any]) -> tuple[str, int]:
        return "grace", c[0]

    def duration(self, meta: Any, c: list[Any]) -> int:
        amount, (unit, pos) = c
        base = unit[:-1] if unit.endswith("S") and unit[:-1] in _UNITS_MS else unit
        if base not in _UNITS_MS:
            raise SqlSyntaxError(f"line {pos[0]}:{pos[1]}: syntax error at {unit!r}: expected "
                                 f"a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
        return int(amount) * _UNITS_MS[base]

    # -- expressions ----------------------------------------------------------------------
    def expr_list(self, meta: Any, c: list[Any]) -> list[ast.Expr]:
        return c

    def or_(self, meta: Any, c: list[Any]) -> ast.Expr:
        return c[0] if len(c) == 1 else ast.Logical("OR", tuple(c), _pos(meta))

    def and_(self, meta: Any, c: list[Any]) -> ast.Expr:
        return c[0] if len(c) == 1 else ast.Logical("AND", tuple(c), _pos(meta))

    def not_(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Not(c[0], _pos(meta))

    def comparison(self, meta: Any, c: list[Any]) -> ast.Expr:
        op = "<>" if str(c[1]) == "!=" else str(c[1])
        return ast.Comparison(op, c[0], c[2], _pos(meta))

    def between(self, meta: Any, c: list[Any]) -> ast.Expr:
        value, negated, low, high = c
        return ast.Between(value, low, high, negated is not None, _pos(meta))

    def in_list(self, meta: Any, c: list[Any]) -> ast.Expr:
        value, negated, items = c
        return ast.InList(value, tuple(items), negated is not None, _pos(meta))

    def like(self, meta: Any, c: list[Any]) -> ast.Expr:
        value, negated, pattern, token = c
        escape = None if token is None else str(token)[1:-1].replace("''", "'")
        if escape is not None and len(escape) != 1:
            raise SqlSyntaxError(f"line {token.line}:{token.column}: ESCAPE takes one "
                                 f"character, got {token}")
        return ast.Like(value, pattern, negated is not None, escape, _pos(meta))

    def is_null(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.IsNull(c[0], c[1] is not None, _pos(meta))

    def is_distinct(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.IsDistinct(c[0], c[2], c[1] is not None, _pos(meta))

    def arithmetic(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Arithmetic(str(c[1]), c[0], c[2], _pos(meta))

    def unary(self, meta: Any, c: list[Any]) -> ast.Expr:
        op, operand = str(c[0]), c[1]
        if op == "-" and isinstance(operand, ast.Literal) and \
                isinstance(operand.value, int | float | Decimal) and \
                not isinstance(operand.value, bool):
            return ast.Literal(-operand.value, _pos(meta))
        return ast.Unary(op, operand, _pos(meta))

    def column_ref(self, meta: Any, c: list[Any]) -> ast.Expr:
        if len(c) == 2:
            return ast.ColumnRef(c[1][0], c[0][0], _pos(meta))
        return ast.ColumnRef(c[0][0], None, _pos(meta))

    def function_call(self, meta: Any, c: list[Any]) -> ast.Expr:
        name, args = c
        if isinstance(args, Token):  # COUNT(*)
            return ast.FunctionCall(name[0], (), True, _pos(meta))
        return ast.FunctionCall(name[0], tuple(args or ()), False, _pos(meta))

    def time_unit_call(self, meta: Any, c: list[Any]) -> ast.Expr:
        """Calcite's ``CEIL(ts TO HOUR)`` / ``FLOOR(ts TO HOUR)``: a time rounded to a unit."""
        (name, pos), operand, (unit, unit_pos) = c
        if name not in ("CEIL", "FLOOR"):
            raise SqlSyntaxError(f"line {pos[0]}:{pos[1]}: syntax error at 'TO': only CEIL and "
                                 f"FLOOR take '<time> TO <unit>'")
        base = unit[:-1] if unit.endswith("S") and unit[:-1] in _UNITS_MS else unit
        if base not in _UNITS_MS:
            raise SqlSyntaxError(f"line {unit_pos[0]}:{unit_pos[1]}: syntax error at {unit!r}: "
                                 f"expected a time unit (SECOND, MINUTE, HOUR, DAY)")
        return ast.TimeRound(name, operand, base, _UNITS_MS[base], _pos(meta))

    def case_expr(self, meta: Any, c: list[Any]) -> ast.Expr:
        *whens, default = c
        return ast.Case(tuple(whens), default, _pos(meta))

    def when_clause(self, meta: Any, c: list[Any]) -> tuple[ast.Expr, ast.Expr]:
        return c[0], c[1]

    def cast_expr(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Cast(c[0], c[1], _pos(meta))

    def integer(self, meta: Any, c: list[Token]) -> ast.Literal:
        return ast.Literal(int(c[0]), _tpos(c[0]))

    def decimal(self, meta: Any, c: list[Token]) -> ast.Literal:
        return ast.Literal(Decimal(str(c[0])), _tpos(c[0]))

    def double(self, meta: Any, c: list[Token]) -> ast.Literal:
        return ast.Literal(float(c[0]), _tpos(c[0]))

    def string(self, meta: Any, c: list[Token]) -> ast.Literal:
        return ast.Literal(str(c[0])[1:-1].replace("''", "'"), _tpos(c[0]))

    def boolean(self, meta: Any, c: list[Token]) -> ast.Literal:
        return ast.Literal(str(c[0]).upper() == "TRUE", _tpos(c[0]))

    def null(self, meta: Any, c: list[Any]) -> ast.Literal:
        return ast.Literal(None, _pos(meta))
