"""Python functions in SQL: scalar UDFs, aggregate UDAFs and table UDTFs (see docs/sql.md).

The decorators only mark a function (or a UDAF class) with its SQL name and description;
nothing is registered globally. A ``FunctionRegistry`` collects marked functions (``add``, or
``load_module`` for every marked one of a module) and is handed to an ``Engine``
(``Engine(functions=...)``, ``prepare(..., functions=...)``, ``--udf-module``). While an
engine plans a statement its registry is the one in force (``using``), so two engines with
different functions never see each other's.

SQL types come from the annotations: ``bool`` BOOLEAN, ``int`` BIGINT (Python has one
integer type; an INT argument widens to it), ``float`` DOUBLE, ``str`` STRING, ``bytes``
BYTES, ``Decimal`` DECIMAL, ``datetime`` TIMESTAMP, ``list[T]`` ARRAY<T>, ``dict[str, T]``
MAP<STRING, T>; ``Optional[T]`` (``T | None``) a parameter that receives NULLs: a NULL for
any other parameter gives NULL without calling the function.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fluvial.sql import functions
from fluvial.sql import types as t
from fluvial.sql.types import SqlType

_MARK = "__fluvial_sql_function__"
KINDS = ("SCALAR", "AGGREGATE", "TABLE")


class UdfError(TypeError):
    """A decorated function whose annotations or shape SQL cannot use."""


class UdfFailed(Exception):
    """A user function raised on a record; the message names the function and where it is
    called (line:column), and the record goes to the app's error policy."""


@dataclass(frozen=True)
class Signature:
    params: tuple[SqlType, ...]
    nullable: tuple[bool, ...]  # the parameter accepts NULL (``Optional``)
    returns: SqlType
    variadic: bool = False  # the last parameter is ``*args``

    def arguments(self) -> str:
        """The parameter types as SQL writes them (``...`` after a variadic one)."""
        shown = ["DECIMAL" if p == ANY_DECIMAL else str(p) for p in self.params]
        if self.variadic:
            shown[-1] += "..."
        return ", ".join(shown)

    def __str__(self) -> str:
        return f"({self.arguments()}) -> {self.returns}"


@dataclass(frozen=True)
class Overload:
    signature: Signature
    call: Callable[..., Any]  # the Python function (a UDAF: the class)


@dataclass
class UserFunction:
    """One SQL name: its kind, description and overloads (one per decorated function)."""

    name: str
    kind: str  # SCALAR | AGGREGATE | TABLE
    description: str
    overloads: list[Overload] = field(default_factory=list)


@dataclass(frozen=True)
class _Mark:
    name: str
    kind: str
    description: str
    returns: SqlType | None


def _decorator(kind: str, name: str | Callable[..., Any] | None, description: str,
               returns: SqlType | None) -> Any:
    """The decorator marking a function (or, bare, ``name`` is the function: ``@udf``)."""
    if callable(name):
        return _decorator(kind, None, description, returns)(name)

    def mark(target: Any) -> Any:
        sql_name = (name or target.__name__).upper()
        setattr(target, _MARK, _Mark(sql_name, kind, description or
                                     (inspect.getdoc(target) or "").split("\n")[0], returns))
        _signature(target, kind, returns, sql_name)  # refuse bad annotations at once
        return target
    return mark


def udf(name: str | Callable[..., Any] | None = None, *, description: str = "",
        returns: SqlType | None = None) -> Any:
    """Mark a function as the scalar SQL function ``name`` (default: its own name);
    ``returns`` gives the SQL type where the annotation cannot (a DECIMAL's precision).
    Bare, ``@udf`` marks the function under its own name."""
    return _decorator("SCALAR", name, description, returns)


def udaf(name: str | Callable[..., Any] | None = None, *, description: str = "",
         returns: SqlType | None = None) -> Any:
    """Mark a class as the aggregate SQL function ``name``. Its methods, as ksqlDB's UDAF:
    ``initialize() -> A``, ``aggregate(value, aggregate: A) -> A``, ``merge(a: A, b: A) ->
    A`` (two session windows meeting), ``map(aggregate: A) -> result``, and optionally
    ``undo(value, aggregate: A) -> A`` (a row leaving the group, for tables). ``A`` must be
    JSON-safe (numbers, strings, lists, dicts): it is kept in a state store."""
    return _decorator("AGGREGATE", name, description, returns)


def udtf(name: str | Callable[..., Any] | None = None, *, description: str = "",
         returns: SqlType | None = None) -> Any:
    """Mark a function returning ``list[T]`` as the table SQL function ``name``: each element
    is one output row, as ksqlDB's EXPLODE; ``T`` is the column's type."""
    return _decorator("TABLE", name, description, returns)


# -- types from annotations -----------------------------------------------------------------

_SIMPLE: dict[Any, SqlType] = {bool: t.BOOLEAN, int: t.BIGINT, float: t.DOUBLE, str: t.STRING,
                               bytes: t.BYTES, datetime.datetime: t.TIMESTAMP}
ANY_DECIMAL = t.decimal(38, 18)  # a Decimal parameter: any DECIMAL argument fits


def sql_type(annotation: Any, where: str) -> tuple[SqlType, bool]:
    """The SQL type of a Python annotation, and whether it admits None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise UdfError(f"{where}: {annotation} is a union; SQL takes one type (or "
                           f"Optional[T])")
        return sql_type(members[0], where)[0], True
    if annotation in _SIMPLE:
        return _SIMPLE[annotation], False
    if annotation is Decimal:
        return ANY_DECIMAL, False
    if origin is list or annotation is list:
        (element,) = typing.get_args(annotation) or (None,)
        if element is None:
            raise UdfError(f"{where}: list needs its element type, e.g. list[int]")
        return t.array(sql_type(element, where)[0]), False
    if origin is dict or annotation is dict:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[0] is not str:
            raise UdfError(f"{where}: a dict needs str keys and a value type, e.g. "
                           f"dict[str, int] (SQL maps have STRING keys)")
        return t.map_of(sql_type(args[1], where)[0]), False
    raise UdfError(f"{where}: {annotation!r} has no SQL type; use bool, int, float, str, "
                   f"bytes, Decimal, datetime, list[T], dict[str, T] or Optional[T]")


def _hints(fn: Callable[..., Any], where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except NameError as exc:
        raise UdfError(f"{where}: an annotation cannot be resolved: {exc}") from None


def _signature(target: Any, kind: str, returns: SqlType | None, name: str) -> Signature:
    if kind == "AGGREGATE":
        return _udaf_signature(target, returns, name)
    where = f"{kind.lower()} function {name}"
    if not callable(target) or inspect.isclass(target):
        raise UdfError(f"{where}: @{'udf' if kind == 'SCALAR' else 'udtf'} takes a function")
    hints = _hints(target, where)
    params: list[SqlType] = []
    nullable: list[bool] = []
    variadic = False
    for p in inspect.signature(target).parameters.values():
        if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
            raise UdfError(f"{where}: parameter {p.name} is keyword-only; SQL passes "
                           f"arguments by position")
        if p.name not in hints:
            raise UdfError(f"{where}: parameter {p.name} has no type annotation")
        type_, optional = sql_type(hints[p.name], f"{where}, parameter {p.name}")
        params.append(type_)
        nullable.append(optional)
        variadic = p.kind == p.VAR_POSITIONAL
    if returns is None:
        if "return" not in hints:
            raise UdfError(f"{where}: the return type has no annotation")
        returns, _ = sql_type(hints["return"], f"{where}, return type")
        if kind == "TABLE":
            if returns.name != "ARRAY":
                raise UdfError(f"{where}: a table function returns list[T] (one row per "
                               f"element), not {returns}")
            returns = returns.items[0]
        _check_decimal_result(returns, where)
    return Signature(tuple(params), tuple(nullable), returns, variadic)


def _udaf_signature(cls: Any, returns: SqlType | None, name: str) -> Signature:
    where = f"aggregate function {name}"
    if not inspect.isclass(cls):
        raise UdfError(f"{where}: @udaf takes a class with initialize, aggregate, merge and "
                       f"map methods")
    methods: dict[str, Any] = {m: getattr(cls, m, None)
                               for m in ("initialize", "aggregate", "merge", "map")}
    missing = [m for m, method in methods.items() if not callable(method)]
    if missing:
        raise UdfError(f"{where}: class {cls.__name__} lacks {', '.join(missing)}")
    aggregate, result = methods["aggregate"], methods["map"]
    hints = _hints(aggregate, f"{where}, aggregate()")
    params = [p for p in inspect.signature(aggregate).parameters.values()
              if p.name != "self"]
    if len(params) != 2:
        raise UdfError(f"{where}: aggregate(self, value, aggregate) takes the value and the "
                       f"aggregate so far")
    if params[0].name not in hints:
        raise UdfError(f"{where}: aggregate()'s value parameter {params[0].name} has no "
                       f"type annotation")
    value_type, optional = sql_type(hints[params[0].name], f"{where}, aggregate() value")
    if returns is None:
        result_hints = _hints(result, f"{where}, map()")
        if "return" not in result_hints:
            raise UdfError(f"{where}: map()'s return type has no annotation")
        returns, _ = sql_type(result_hints["return"], f"{where}, map() return type")
        _check_decimal_result(returns, where)
    return Signature((value_type,), (optional,), returns)


def _check_decimal_result(returns: SqlType, where: str) -> None:
    if returns == ANY_DECIMAL:
        raise UdfError(f"{where}: a Decimal result needs its precision and scale: "
                       f"returns=fluvial.sql.types.decimal(p, s)")


# -- the registry -----------------------------------------------------------------------

class FunctionRegistry:
    """The user functions one engine knows, by upper-cased SQL name."""

    def __init__(self, functions: Sequence[Any] = ()) -> None:
        self.functions: dict[str, UserFunction] = {}
        for fn in functions:
            self.add(fn)

    def add(self, target: Any) -> FunctionRegistry:
        """Add a decorated function or UDAF class; one name may have several overloads."""
        mark = getattr(target, _MARK, None)
        if not isinstance(mark, _Mark):
            raise UdfError(f"{target!r} is not marked with @udf, @udaf or @udtf")
        if mark.name in functions.REGISTRY or mark.name in BUILTIN_AGGREGATES or \
                mark.name in BUILTIN_TABLE_FUNCTIONS:
            raise UdfError(f"function {mark.name} is built in; give the Python one another "
                           f"name")
        entry = self.functions.setdefault(mark.name, UserFunction(mark.name, mark.kind,
                                                                  mark.description))
        if entry.kind != mark.kind:
            raise UdfError(f"function {mark.name} is already a {entry.kind.lower()} function; "
                           f"{target.__qualname__} would make it a {mark.kind.lower()} one")
        signature = _signature(target, mark.kind, mark.returns, mark.name)
        if any(o.signature.params == signature.params for o in entry.overloads):
            raise UdfError(f"function {mark.name} already has the signature "
                           f"({', '.join(map(str, signature.params))})")
        entry.overloads.append(Overload(signature, target))
        entry.description = entry.description or mark.description
        return self

    def load_module(self, module: str) -> FunctionRegistry:
        """Import ``module`` and add every marked function and class it defines."""
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise UdfError(f"--udf-module {module}: cannot import it: {exc}") from None
        found = [v for v in vars(loaded).values() if isinstance(getattr(v, _MARK, None), _Mark)
                 and getattr(v, "__module__", None) == loaded.__name__]
        if not found:
            raise UdfError(f"--udf-module {module}: it defines no function marked with "
                           f"@fluvial.sql.udf, @udaf or @udtf")
        for value in found:
            self.add(value)
        return self

    @classmethod
    def from_modules(cls, modules: Sequence[str]) -> FunctionRegistry:
        registry = cls()
        for module in modules:
            registry.load_module(module)
        return registry

    def get(self, name: str, kind: str | None = None) -> UserFunction | None:
        entry = self.functions.get(name)
        return entry if entry is not None and (kind is None or entry.kind == kind) else None


BUILTIN_AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})
BUILTIN_TABLE_FUNCTIONS = frozenset({"EXPLODE"})  # the planner compiles them itself

_ACTIVE: ContextVar[FunctionRegistry | None] = ContextVar("fluvial_sql_functions",
                                                          default=None)
_NONE = FunctionRegistry()  # in force outside an engine's planning: no user functions


@contextlib.contextmanager
def using(registry: FunctionRegistry | None) -> Iterator[None]:
    """``registry`` in force while a statement is planned (the engine's own)."""
    token = _ACTIVE.set(registry)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active() -> FunctionRegistry:
    return _ACTIVE.get() or _NONE


# -- calling them -----------------------------------------------------------------------

_WIDENS = {"INTEGER": ("BIGINT", "DECIMAL", "DOUBLE"), "BIGINT": ("DECIMAL", "DOUBLE"),
           "DECIMAL": ("DOUBLE",)}


def fits(arg: SqlType, param: SqlType) -> bool:
    """An argument of type ``arg`` may be passed for ``param`` (equal, NULL, or widened as
    ksqlDB widens a UDF's arguments: INT to BIGINT to DECIMAL to DOUBLE)."""
    if arg == t.NULL or arg == param:
        return True
    if param == ANY_DECIMAL and arg.name == "DECIMAL":
        return True
    if arg.name in ("ARRAY", "MAP") and arg.name == param.name:
        return all(fits(a, p) for a, p in zip(arg.items, param.items, strict=True))
    return param.name in _WIDENS.get(arg.name, ())


def converter(arg: SqlType, param: SqlType) -> Callable[[Any], Any] | None:
    """How an argument's value becomes the parameter's Python value (None: as it is)."""
    if param.name == "DOUBLE" and arg.name in ("INTEGER", "BIGINT", "DECIMAL"):
        return float
    if param.name == "DECIMAL" and arg.name in ("INTEGER", "BIGINT"):
        return Decimal
    return None


def resolve(entry: UserFunction, arg_types: Sequence[SqlType]) -> Overload | None:
    """The overload taking ``arg_types``: an exact match first, then one by widening."""
    def matches(sig: Signature, exact: bool) -> bool:
        params = list(sig.params)
        if sig.variadic:
            if len(arg_types) < len(params) - 1:
                return False
            params = params[:-1] + [params[-1]] * (len(arg_types) - len(params) + 1)
        if len(params) != len(arg_types):
            return False
        return all((a == p or a == t.NULL) if exact else fits(a, p)
                   for a, p in zip(arg_types, params, strict=True))
    for exact in (True, False):
        for overload in entry.overloads:
            if matches(overload.signature, exact):
                return overload
    return None


def signatures(entry: UserFunction) -> str:
    """The signatures ``entry`` accepts, for an error message."""
    return "; ".join(f"{entry.name}{o.signature}" for o in entry.overloads)


def expanded(sig: Signature, count: int) -> tuple[tuple[SqlType, ...], tuple[bool, ...]]:
    """Parameter types and nullability for ``count`` arguments (``*args`` repeated)."""
    if not sig.variadic:
        return sig.params, sig.nullable
    extra = count - len(sig.params) + 1
    return (sig.params[:-1] + (sig.params[-1],) * extra,
            sig.nullable[:-1] + (sig.nullable[-1],) * extra)


def result_checker(returns: SqlType) -> Callable[[Any], Any]:
    """The function's result as the SQL type holds it; a wrong Python type raises."""
    kind = returns.name
    if kind == "DOUBLE":
        return lambda v: float(v) if isinstance(v, int | float | Decimal) and \
            not isinstance(v, bool) else _wrong(v, returns)
    if kind in ("INTEGER", "BIGINT"):
        wrap = t.wrap_int if kind == "INTEGER" else t.wrap_long

        def integer(v: Any) -> int:
            if not isinstance(v, int) or isinstance(v, bool) or wrap(v) != v:
                _wrong(v, returns)
            return int(v)
        return integer
    if kind == "DECIMAL":
        return lambda v: t.quantize(Decimal(v), returns) if isinstance(v, int | Decimal) \
            else _wrong(v, returns)
    python = {"STRING": str, "BOOLEAN": bool, "BYTES": bytes, "ARRAY": list, "MAP": dict,
              "TIMESTAMP": datetime.datetime}[kind]
    return lambda v: v if isinstance(v, python) else _wrong(v, returns)


def _wrong(value: Any, returns: SqlType) -> Any:
    raise TypeError(f"returned {value!r}, which is not a {returns}")
