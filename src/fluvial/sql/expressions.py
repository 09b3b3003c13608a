"""Expressions: type-checked, then compiled to closures over a row (``dict`` column -> value).

No user text ever reaches ``eval``/``exec``: each node becomes a small Python closure over its
children's closures, chosen by the operand types once, at compile time. Evaluation errors in
one record (a division by zero, a bad CAST) give NULL, as ksqlDB's expression evaluation does.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext
from typing import Any, NamedTuple, TypeGuard

from fluvial.sql import ast, functions, udfs
from fluvial.sql import types as t
from fluvial.sql.errors import SqlAnalysisError, at
from fluvial.sql.types import SqlType

Row = dict[str, Any]
Evaluator = Callable[[Row], Any]



def is_aggregate(expr: ast.Expr) -> TypeGuard[ast.FunctionCall]:
    """``expr`` calls an aggregate function: a built-in one or a UDAF of the engine's."""
    return isinstance(expr, ast.FunctionCall) and (
        expr.name in udfs.BUILTIN_AGGREGATES or
        udfs.active().get(expr.name, "AGGREGATE") is not None)


def is_table_function(expr: ast.Expr) -> TypeGuard[ast.FunctionCall]:
    """``expr`` calls a table function (EXPLODE or a UDTF of the engine's)."""
    return isinstance(expr, ast.FunctionCall) and (
        expr.name in udfs.BUILTIN_TABLE_FUNCTIONS or
        udfs.active().get(expr.name, "TABLE") is not None)


class Compiled(NamedTuple):
    fn: Evaluator
    type: SqlType


@dataclass
class Scope:
    """What an expression may refer to.

    ``columns``: name -> type, each a key of the rows evaluated; ``qualifiers``: source names
    or aliases that may prefix a column; ``replacements``: whole sub-expressions (a GROUP BY
    expression, an aggregate call) already computed into a row field.
    """

    columns: Mapping[str, SqlType]
    qualifiers: frozenset[str] = frozenset()
    replacements: Mapping[ast.Expr, tuple[str, SqlType]] = field(default_factory=dict)
    clause: str = "Column "  # how an unknown column's error starts: "SELECT column ", ...


def compile_expr(expr: ast.Expr, scope: Scope) -> Compiled:
    replaced = scope.replacements.get(expr)
    if replaced is not None:
        name, type_ = replaced
        return Compiled(operator.itemgetter(name), type_)
    try:
        handler = _HANDLERS[type(expr)]
    except KeyError:  # pragma: no cover - every parsed node has a handler
        raise SqlAnalysisError(f"unsupported expression {expr}") from None
    return handler(expr, scope)


def text(expr: ast.Expr) -> str:
    """An expression written back as SQL, for error messages and column names."""
    match expr:
        case ast.Literal(value=None):
            return "NULL"
        case ast.Literal(value=str() as s):
            return "'" + s.replace("'", "''") + "'"
        case ast.Literal(value=bool() as b):
            return "true" if b else "false"
        case ast.Literal(value=v):
            return str(v)
        case ast.ColumnRef(name=n, source=s):
            return f"{s}.{n}" if s else n
        case ast.Arithmetic(op=op, left=a, right=b):
            return f"({text(a)} {op} {text(b)})"
        case ast.Unary(op=op, operand=a):
            return f"{op}{text(a)}"
        case ast.Comparison(op=op, left=a, right=b):
            return f"({text(a)} {op} {text(b)})"
        case ast.Logical(op=op, operands=xs):
            return "(" + f" {op} ".join(text(x) for x in xs) + ")"
        case ast.Not(operand=a):
            return f"(NOT {text(a)})"
        case ast.FunctionCall(name=n, args=args, star=star):
            return f"{n}({'*' if star else ', '.join(text(a) for a in args)})"
        case ast.TimeRound(function=f, operand=a, unit=u):
            return f"{f}({text(a)} TO {u})"
        case ast.Cast(operand=a, target=ty):
            params = f"({', '.join(map(str, ty.params))})" if ty.params else ""
            return f"CAST({text(a)} AS {ty.name}{params})"
    return type(expr).__name__.upper()


def _pos(expr: ast.Expr) -> ast.Pos:
    return getattr(expr, "pos", (0, 0))


def _guard(fn: Callable[[Row], Any]) -> Evaluator:
    """NULL for a record whose evaluation fails, as ksqlDB logs and nulls the expression."""
    def guarded(row: Row) -> Any:
        try:
            return fn(row)
        except (ArithmeticError, ValueError, TypeError, InvalidOperation, IndexError):
            return None
    return guarded


# -- leaves ---------------------------------------------------------------------------

def _literal(expr: ast.Literal, scope: Scope) -> Compiled:
    value = expr.value
    if value is None:
        return Compiled(lambda _row: None, t.NULL)
    if isinstance(value, bool):
        type_ = t.BOOLEAN
    elif isinstance(value, int):
        type_ = t.INTEGER if -2**31 <= value < 2**31 else t.BIGINT
    elif isinstance(value, Decimal):
        _sign, digits, exponent = value.as_tuple()
        scale = max(-int(exponent), 0)
        type_ = t.decimal(max(len(digits), scale, 1), scale)
    elif isinstance(value, float):
        type_ = t.DOUBLE
    else:
        type_ = t.STRING
    return Compiled(lambda _row: value, type_)


def _column(expr: ast.ColumnRef, scope: Scope) -> Compiled:
    if expr.source is not None and expr.source not in scope.qualifiers:
        raise SqlAnalysisError(at(expr.pos, f"unknown source {expr.source} in "
                                            f"{expr.source}.{expr.name}"))
    try:
        type_ = scope.columns[expr.name]
    except KeyError:
        if expr.name in ("WINDOWSTART", "WINDOWEND") and scope.clause != "SELECT column ":
            raise SqlAnalysisError(at(expr.pos, f"Window bounds column {expr.name} can only be "
                                                f"used in the SELECT clause of windowed "
                                                f"aggregations")) from None
        raise SqlAnalysisError(at(expr.pos, f"{scope.clause}'{text(expr)}' cannot be "
                                            f"resolved.")) from None
    return Compiled(operator.itemgetter(expr.name), type_)


# -- arithmetic -----------------------------------------------------------------------

_PY_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def _arithmetic(expr: ast.Arithmetic, scope: Scope) -> Compiled:
    left, right = compile_expr(expr.left, scope), compile_expr(expr.right, scope)
    lt, rt = left.type, right.type
    op = expr.op
    if op == "+" and {lt.name, rt.name} <= {"STRING", "NULL"}:
        return Compiled(_nullable2(left.fn, right.fn, operator.add), t.STRING)
    for _side, ty in ((expr.left, lt), (expr.right, rt)):
        if ty != t.NULL and not ty.numeric:
            raise SqlAnalysisError(at(expr.pos, f"Error processing expression: "
                                                f"{text(expr)}. Unsupported arithmetic types. "
                                                f"{lt} {rt}"))
    result = t.INTEGER if lt == rt == t.NULL else t.wider(lt, rt)
    if result.name == "DECIMAL" and "DOUBLE" not in (lt.name, rt.name):
        result = t.decimal_result(op, lt if lt != t.NULL else rt, rt if rt != t.NULL else lt)
    return Compiled(_guard(_nullable2(left.fn, right.fn, _number_op(op, result))), result)


def _number_op(op: str, result: SqlType) -> Callable[[Any, Any], Any]:
    if result.name in ("INTEGER", "BIGINT"):
        wrap = t.wrap_int if result.name == "INTEGER" else t.wrap_long
        if op == "/":
            return lambda a, b: wrap(t.java_div(a, b))
        if op == "%":
            return lambda a, b: wrap(t.java_mod(a, b))
        py = _PY_OPS[op]
        return lambda a, b: wrap(py(a, b))
    if result.name == "DOUBLE":
        if op == "/":
            return _double_div
        if op == "%":
            return lambda a, b: math.fmod(float(a), float(b)) if b != 0 else math.nan
        py = _PY_OPS[op]
        return lambda a, b: py(float(a), float(b))
    return _decimal_op(op, result)


def _double_div(a: Any, b: Any) -> float:
    a, b = float(a), float(b)
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1, b)
    return a / b


def _decimal_op(op: str, result: SqlType) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = 80
            ctx.traps[DivisionByZero] = True
            x, y = Decimal(a), Decimal(b)
            if op == "+":
                value = x + y
            elif op == "-":
                value = x - y
            elif op == "*":
                value = x * y
            elif op == "/":
                value = x / y
            else:
                value = x % y
        return t.quantize(value, result)
    return run


def _nullable2(a: Evaluator, b: Evaluator, fn: Callable[[Any, Any], Any]) -> Evaluator:
    def run(row: Row) -> Any:
        x = a(row)
        if x is None:
            return None
        y = b(row)
        return None if y is None else fn(x, y)
    return run


def _unary(expr: ast.Unary, scope: Scope) -> Compiled:
    inner = compile_expr(expr.operand, scope)
    if not inner.type.numeric and inner.type != t.NULL:
        raise SqlAnalysisError(at(expr.pos, f"unary {expr.op} needs a number, got "
                                            f"{inner.type}: {text(expr)}"))
    if expr.op == "+":
        return inner
    fn = inner.fn
    wrap = {"INTEGER": t.wrap_int, "BIGINT": t.wrap_long}.get(inner.type.name)
    if wrap is not None:
        return Compiled(lambda row: None if (v := fn(row)) is None else wrap(-v), inner.type)
    return Compiled(lambda row: None if (v := fn(row)) is None else -v, inner.type)


# -- predicates -----------------------------------------------------------------------

_COMPARE = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}
_COMPARE_NAMES = {"=": "EQUAL", "<>": "NOT_EQUAL", "<": "LESS_THAN",
                  "<=": "LESS_THAN_OR_EQUAL", ">": "GREATER_THAN",
                  ">=": "GREATER_THAN_OR_EQUAL"}


def comparable(a: SqlType, b: SqlType) -> bool:
    return a == t.NULL or b == t.NULL or (a.numeric and b.numeric) or a.name == b.name


def _check_comparable(expr: ast.Expr, left: ast.Expr, lt: SqlType, right: ast.Expr,
                      rt: SqlType, op: str) -> None:
    if not comparable(lt, rt):
        raise SqlAnalysisError(at(_pos(expr), f"Cannot compare {text(left)} ({lt}) to "
                                              f"{text(right)} ({rt}) with "
                                              f"{_COMPARE_NAMES.get(op, op)}."))
    if lt.name == "BOOLEAN" and op not in ("=", "<>"):
        raise SqlAnalysisError(at(_pos(expr), f"Cannot compare {text(left)} ({lt}) to "
                                              f"{text(right)} ({rt}) with "
                                              f"{_COMPARE_NAMES[op]}."))


def _as_double(fn: Evaluator, own: SqlType, other: SqlType) -> Evaluator:
    """A DECIMAL compared with a DOUBLE is compared as a DOUBLE, as ksqlDB does."""
    if own.name == "DECIMAL" and other.name == "DOUBLE":
        return lambda row: None if (v := fn(row)) is None else float(v)
    return fn


def _comparison(expr: ast.Comparison, scope: Scope) -> Compiled:
    left, right = compile_expr(expr.left, scope), compile_expr(expr.right, scope)
    _check_comparable(expr, expr.left, left.type, expr.right, right.type, expr.op)
    compare = _COMPARE[expr.op]
    a = _as_double(left.fn, left.type, right.type)
    b = _as_double(right.fn, right.type, left.type)

    def run(row: Row) -> bool:
        # ksqlDB: a comparison with a NULL operand is false (not unknown)
        x = a(row)
        if x is None:
            return False
        y = b(row)
        return False if y is None else bool(compare(x, y))
    return Compiled(run, t.BOOLEAN)


def _boolean(expr: ast.Expr, scope: Scope, what: str) -> Evaluator:
    compiled = compile_expr(expr, scope)
    if compiled.type not in (t.BOOLEAN, t.NULL):
        raise SqlAnalysisError(at(_pos(expr), f"{what} needs a BOOLEAN, got "
                                              f"{compiled.type}: {text(expr)}"))
    return compiled.fn


def _logical(expr: ast.Logical, scope: Scope) -> Compiled:
    parts = [_boolean(x, scope, expr.op) for x in expr.operands]
    if expr.op == "AND":
        def run(row: Row) -> bool | None:
            unknown = False
            for p in parts:
                v = p(row)
                if v is False:
                    return False
                unknown = unknown or v is None
            return None if unknown else True
    else:
        def run(row: Row) -> bool | None:
            unknown = False
            for p in parts:
                v = p(row)
                if v is True:
                    return True
                unknown = unknown or v is None
            return None if unknown else False
    return Compiled(run, t.BOOLEAN)


def _not(expr: ast.Not, scope: Scope) -> Compiled:
    inner = _boolean(expr.operand, scope, "NOT")
    return Compiled(lambda row: None if (v := inner(row)) is None else not v, t.BOOLEAN)


def _negate(fn: Evaluator, negated: bool) -> Evaluator:
    if not negated:
        return fn
    return lambda row: None if (v := fn(row)) is None else not v


def _between(expr: ast.Between, scope: Scope) -> Compiled:
    value, low, high = (compile_expr(x, scope) for x in (expr.value, expr.low, expr.high))
    _check_comparable(expr, expr.value, value.type, expr.low, low.type, ">=")
    _check_comparable(expr, expr.value, value.type, expr.high, high.type, "<=")
    widest = t.DOUBLE if t.DOUBLE in (value.type, low.type, high.type) else value.type
    v = _as_double(value.fn, value.type, widest)
    lo = _as_double(low.fn, low.type, widest)
    hi = _as_double(high.fn, high.type, widest)

    def run(row: Row) -> bool | None:
        x, a, b = v(row), lo(row), hi(row)
        if x is None or a is None or b is None:
            return None
        return a <= x <= b
    return Compiled(_negate(run, expr.negated), t.BOOLEAN)


def _in_list(expr: ast.InList, scope: Scope) -> Compiled:
    value = compile_expr(expr.value, scope)
    items = [compile_expr(i, scope) for i in expr.items]
    for source, item in zip(expr.items, items, strict=True):
        _check_comparable(expr, expr.value, value.type, source, item.type, "=")
    v, fns = value.fn, [i.fn for i in items]

    def run(row: Row) -> bool | None:
        x = v(row)
        if x is None:
            return None
        unknown = False
        for f in fns:
            y = f(row)
            if y is None:
                unknown = True
            elif y == x:
                return True
        return None if unknown else False
    return Compiled(_negate(run, expr.negated), t.BOOLEAN)


def like_matcher(pattern: str, escape: str | None = None) -> Callable[[str], bool]:
    """SQL LIKE: ``%`` any run of characters, ``_`` exactly one, case-sensitive; ``escape``
    makes the character after it literal. Matching walks the pattern's states (no
    backtracking blow-up)."""
    tokens: list[str | None] = []  # a literal character, "" for _, None for %
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == escape and i + 1 < len(pattern):
            tokens.append(pattern[i + 1])
            i += 2
            continue
        tokens.append(None if c == "%" else "" if c == "_" else c)
        i += 1
    end = len(tokens)

    def closure(states: set[int]) -> set[int]:
        out = set(states)
        for p in sorted(states):
            while p < end and tokens[p] is None:
                p += 1
                out.add(p)
        return out

    def match(s: str) -> bool:
        states = closure({0})
        for ch in s:
            following: set[int] = set()
            for p in states:
                if p == end:
                    continue
                token = tokens[p]
                if token is None:
                    following.add(p)
                elif token == "" or token == ch:
                    following.add(p + 1)
            if not following:
                return False
            states = closure(following)
        return end in states
    return match


def _like(expr: ast.Like, scope: Scope) -> Compiled:
    value, pattern = compile_expr(expr.value, scope), compile_expr(expr.pattern, scope)
    for ty, e in ((value.type, expr.value), (pattern.type, expr.pattern)):
        if ty not in (t.STRING, t.NULL):
            raise SqlAnalysisError(at(expr.pos, f"LIKE needs STRING operands, got {ty}: "
                                                f"{text(e)}"))
    v, p, escape = value.fn, pattern.fn, expr.escape
    cache: dict[str, Callable[[str], bool]] = {}

    def run(row: Row) -> bool | None:
        s, pat = v(row), p(row)
        if s is None or pat is None:
            return None
        matcher = cache.get(pat)
        if matcher is None:
            matcher = cache[pat] = like_matcher(pat, escape)
        return matcher(s)
    return Compiled(_negate(run, expr.negated), t.BOOLEAN)


def _is_null(expr: ast.IsNull, scope: Scope) -> Compiled:
    v = compile_expr(expr.value, scope).fn
    if expr.negated:
        return Compiled(lambda row: v(row) is not None, t.BOOLEAN)
    return Compiled(lambda row: v(row) is None, t.BOOLEAN)


def _is_distinct(expr: ast.IsDistinct, scope: Scope) -> Compiled:
    left, right = compile_expr(expr.left, scope), compile_expr(expr.right, scope)
    _check_comparable(expr, expr.left, left.type, expr.right, right.type, "=")
    a, b = left.fn, right.fn

    def distinct(row: Row) -> bool:
        x, y = a(row), b(row)
        if x is None or y is None:
            return (x is None) != (y is None)
        return bool(x != y)
    if expr.negated:
        return Compiled(lambda row: not distinct(row), t.BOOLEAN)
    return Compiled(distinct, t.BOOLEAN)


# -- functions, CASE, CAST --------------------------------------------------------------

def _function(expr: ast.FunctionCall, scope: Scope) -> Compiled:
    if is_aggregate(expr):
        raise SqlAnalysisError(at(expr.pos, f"Use of aggregate function {expr.name} requires "
                                            f"a GROUP BY clause."))
    if is_table_function(expr):
        raise SqlAnalysisError(at(expr.pos, f"Table function {expr.name} can only be used in "
                                            f"the SELECT clause: {text(expr)}"))
    fn = functions.REGISTRY.get(expr.name)
    user = udfs.active().get(expr.name, "SCALAR")
    if user is not None:
        return _user_function(expr, user, scope)
    if fn is None:
        raise SqlAnalysisError(at(expr.pos, f"Can't find any functions with the name "
                                            f"'{expr.name}'"))
    if expr.star or len(expr.args) < fn.min_args or (
            fn.max_args is not None and len(expr.args) > fn.max_args):
        wanted = (f"{fn.min_args}" if fn.max_args == fn.min_args else
                  f"{fn.min_args} or more" if fn.max_args is None else
                  f"{fn.min_args} to {fn.max_args}")
        raise SqlAnalysisError(at(expr.pos, f"Function {expr.name} takes {wanted} "
                                            f"argument(s), got {len(expr.args)}"))
    args = [compile_expr(a, scope) for a in expr.args]
    arg_types = [a.type for a in args]
    try:
        result = fn.returns(arg_types)
    except functions.FunctionTypeError as exc:
        raise SqlAnalysisError(at(expr.pos, f"Function {expr.name} {exc}: {text(expr)}"))\
            from None
    impl = fn.impl(arg_types, result)
    fns = [a.fn for a in args]
    call: Callable[[Row], Any]
    if fn.strict and len(fns) == 2:  # the common arities without a list per call
        call = _nullable2(fns[0], fns[1], impl)
    elif fn.strict and len(fns) == 1:
        only = fns[0]

        def call(row: Row) -> Any:
            x = only(row)
            return None if x is None else impl(x)
    elif fn.strict:
        def call(row: Row) -> Any:
            values = [f(row) for f in fns]
            return None if None in values else impl(*values)
    else:
        def call(row: Row) -> Any:
            return impl(*[f(row) for f in fns])
    return Compiled(_guard(call), result)


def user_call(expr: ast.FunctionCall, entry: udfs.UserFunction,
              scope: Scope) -> tuple[udfs.Overload, list[Compiled]]:
    """The overload of a user function that ``expr``'s argument types pick, and the compiled
    arguments; ksqlDB's error naming the types given and the signatures accepted if none."""
    if expr.star:
        raise SqlAnalysisError(at(expr.pos, f"Function {expr.name} does not take *"))
    args = [compile_expr(a, scope) for a in expr.args]
    overload = udfs.resolve(entry, [a.type for a in args])
    if overload is None:
        given = ", ".join(str(a.type) for a in args)
        raise SqlAnalysisError(at(expr.pos, f"Function '{expr.name}' does not accept "
                                            f"parameters ({given}). Valid alternatives are: "
                                            f"{udfs.signatures(entry)}"))
    return overload, args


def argument_reader(args: list[Compiled], sig: udfs.Signature) -> Callable[[Row], list[Any] | None]:
    """``fn(row)``: the call's Python arguments, or None where a NULL reaches a parameter
    that is not Optional (the call is then NULL)."""
    params, nullable = udfs.expanded(sig, len(args))
    readers = []
    for a, p, optional in zip(args, params, nullable, strict=True):
        convert = udfs.converter(a.type, p)
        readers.append((a.fn, convert, optional))

    def read(row: Row) -> list[Any] | None:
        values = []
        for fn, convert, optional in readers:
            v = fn(row)
            if v is None:
                if not optional:
                    return None
            elif convert is not None:
                v = convert(v)
            values.append(v)
        return values
    return read


def failed(name: str, pos: ast.Pos, exc: Exception) -> udfs.UdfFailed:
    """A user function's exception as the error the record's error policy sees."""
    return udfs.UdfFailed(at(pos, f"Function {name} failed: {type(exc).__name__}: {exc}"))


def _user_function(expr: ast.FunctionCall, entry: udfs.UserFunction,
                   scope: Scope) -> Compiled:
    overload, args = user_call(expr, entry, scope)
    read = argument_reader(args, overload.signature)
    fn, check = overload.call, udfs.result_checker(overload.signature.returns)
    name, pos = expr.name, expr.pos

    def call(row: Row) -> Any:
        values = read(row)
        if values is None:
            return None
        try:
            result = fn(*values)
            return None if result is None else check(result)
        except Exception as exc:  # the user's code: any error is the record's
            raise failed(name, pos, exc) from exc
    return Compiled(call, overload.signature.returns)


def _time_round(expr: ast.TimeRound, scope: Scope) -> Compiled:
    inner = compile_expr(expr.operand, scope)
    if inner.type not in (t.BIGINT, t.INTEGER, t.NULL):
        raise SqlAnalysisError(at(expr.pos, f"{expr.function}(... TO {expr.unit}) takes a "
                                            f"time in milliseconds (BIGINT), not {inner.type}: "
                                            f"{text(expr)}"))
    fn, unit = inner.fn, expr.unit_ms
    if expr.function == "CEIL":
        return Compiled(lambda row: None if (v := fn(row)) is None else -(-v // unit) * unit,
                        t.BIGINT)
    return Compiled(lambda row: None if (v := fn(row)) is None else v // unit * unit, t.BIGINT)


def _case(expr: ast.Case, scope: Scope) -> Compiled:
    conditions = [_boolean(c, scope, "WHEN") for c, _ in expr.whens]
    results = [compile_expr(r, scope) for _, r in expr.whens]
    default = compile_expr(expr.default, scope) if expr.default is not None else None
    types = [r.type for r in results] + ([default.type] if default else [])
    if all(ty == t.NULL for ty in types):
        raise SqlAnalysisError(at(expr.pos, "Invalid Case expression. All case branches have "
                                            "NULL type"))
    try:
        result = functions._common_type(types)
    except functions.FunctionTypeError:
        raise SqlAnalysisError(at(expr.pos, f"Invalid Case expression. Type for all "
                                            f"'THEN' clauses should be the same. "
                                            f"Got {', '.join(map(str, types))}")) from None
    convert = [_converter(r.type, result) for r in results]
    pairs = [(c, r.fn, conv) for c, r, conv in zip(conditions, results, convert, strict=True)]
    otherwise = default.fn if default else (lambda _row: None)
    otherwise_conv = _converter(default.type, result) if default else _identity

    def run(row: Row) -> Any:
        for cond, value, conv in pairs:
            if cond(row) is True:
                v = value(row)
                return None if v is None else conv(v)
        v = otherwise(row)
        return None if v is None else otherwise_conv(v)
    return Compiled(run, result)


def _identity(v: Any) -> Any:
    return v


def _converter(source: SqlType, target: SqlType) -> Callable[[Any], Any]:
    """How a non-null value of ``source`` becomes ``target`` (widening only)."""
    if source == target or source == t.NULL:
        return _identity
    if target.name == "DOUBLE":
        return float
    if target.name == "DECIMAL":
        return lambda v: t.quantize(Decimal(v), target)
    return _identity


def _cast(expr: ast.Cast, scope: Scope) -> Compiled:
    inner = compile_expr(expr.operand, scope)
    target = t.from_name(expr.target)
    convert = cast_function(inner.type, target)
    if convert is None:
        raise SqlAnalysisError(at(expr.pos, f"Cast of {inner.type} to {target} is not "
                                            f"supported: {text(expr)}"))
    fn = inner.fn
    return Compiled(_guard(lambda row: None if (v := fn(row)) is None else convert(v)), target)


def cast_function(source: SqlType, target: SqlType) -> Callable[[Any], Any] | None:
    """How CAST turns a non-null ``source`` value into ``target``; None: not allowed."""
    s, d = source.name, target.name
    if s == "NULL" or source == target:
        return _identity
    if d == "STRING":
        return t.to_text
    if s == "STRING":
        return {"INTEGER": lambda v: _checked_int(int(v.strip()), t.wrap_int),
                "BIGINT": lambda v: _checked_int(int(v.strip()), t.wrap_long),
                "DOUBLE": lambda v: float(v.strip()),
                "DECIMAL": lambda v: t.quantize(t.parse_decimal(v), target),
                "BOOLEAN": lambda v: v.strip().lower() == "true"}.get(d)
    if source.numeric and target.numeric:
        if d == "INTEGER":
            return lambda v: t.wrap_int(int(v))
        if d == "BIGINT":
            return lambda v: t.wrap_long(int(v))
        if d == "DOUBLE":
            return float
        return lambda v: t.quantize(Decimal(repr(v)) if isinstance(v, float) else
                                    Decimal(v), target)
    return None


def _checked_int(v: int, wrap: Callable[[int], int]) -> int:
    if wrap(v) != v:
        raise ValueError(f"{v} is out of range")
    return v


_HANDLERS: dict[type, Callable[[Any, Scope], Compiled]] = {
    ast.Literal: _literal, ast.ColumnRef: _column, ast.Arithmetic: _arithmetic,
    ast.Unary: _unary, ast.Comparison: _comparison, ast.Logical: _logical, ast.Not: _not,
    ast.Between: _between, ast.InList: _in_list, ast.Like: _like, ast.IsNull: _is_null,
    ast.IsDistinct: _is_distinct, ast.FunctionCall: _function, ast.Case: _case,
    ast.Cast: _cast, ast.TimeRound: _time_round,
}


def children(expr: ast.Expr) -> list[ast.Expr]:
    """The direct sub-expressions of ``expr``."""
    out: list[ast.Expr] = []
    for value in vars(expr).values():
        if isinstance(value, ast.Expr):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, ast.Expr):
                    out.append(item)
                elif isinstance(item, tuple):
                    out.extend(x for x in item if isinstance(x, ast.Expr))
    return out


def walk(expr: ast.Expr) -> list[ast.Expr]:
    """``expr`` and every sub-expression, outermost first."""
    out = [expr]
    for child in children(expr):
        out.extend(walk(child))
    return out


def unqualify(expr: ast.Expr, qualifiers: frozenset[str]) -> ast.Expr:
    """``expr`` with ``source.column`` references to this query's source (its name or alias)
    written as bare ``column``, so equal expressions compare equal however they are spelled;
    a qualifier naming another source is refused."""
    def bare(column: ast.ColumnRef) -> ast.Expr:
        if column.source is None:
            return column
        if column.source not in qualifiers:
            raise SqlAnalysisError(at(column.pos, f"unknown source {column.source} in "
                                                  f"{column.source}.{column.name}"))
        return dataclasses.replace(column, source=None)
    return map_columns(expr, bare)


def map_columns(expr: ast.Expr, f: Callable[[ast.ColumnRef], ast.Expr]) -> ast.Expr:
    """``expr`` with each column reference replaced by ``f(column)``."""
    if isinstance(expr, ast.ColumnRef):
        return f(expr)
    changes: dict[str, Any] = {}
    for name, value in vars(expr).items():
        if isinstance(value, ast.Expr):
            changes[name] = map_columns(value, f)
        elif isinstance(value, tuple) and value and isinstance(value[0], ast.Expr | tuple):
            changes[name] = tuple(
                tuple(map_columns(x, f) for x in item) if isinstance(item, tuple)
                else map_columns(item, f) for item in value)
    return dataclasses.replace(expr, **changes) if changes else expr
