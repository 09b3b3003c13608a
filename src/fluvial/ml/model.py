"""The model interface, and the model file: one JSON envelope, metadata and model together.

A model scores a *feature batch*: a mapping of feature name → column (a list or a numpy
array, one value per record), holding raw values: numbers (``None`` = missing) and, for
categorical features, the category values themselves (strings). The model turns them into
its own encoding, so the caller never needs the model's category codes.

The file (also the value published to a models topic) is UTF-8 JSON, one object::

    {"format": "fluvial-model", "format_version": 1,
     "type": "lightgbm",                 # picks the loader
     "name": "airline-delay",            # the models-topic key
     "version": "3f2a…",                 # carried by every output
     "features": ["Year", …],            # model order
     "categories": {"UniqueCarrier": ["AA", …], …},
     "threshold": 0.5,                   # P(positive) >= threshold → positive
     "classes": ["NO", "YES"],           # negative, positive
     "metrics": {…}, "training": {…},    # free-form, kept as given
     "model": "…"}                       # the type's own payload (LightGBM: its model text)

Keys are sorted, so equal models give equal bytes. A gzipped envelope loads as well.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import orjson

from fluvial.errors import FluvialError

FORMAT = "fluvial-model"
FORMAT_VERSION = 1

FeatureBatch = Mapping[str, Sequence[Any] | np.ndarray]


class ModelError(FluvialError, ValueError):
    """A model file that cannot be read, or a feature batch a model cannot score."""


@runtime_checkable
class Model(Protocol):
    """What the scoring operator needs from a model; implement it for another model type.

    ``predict_proba`` must score each record on its own: a record's result may not depend on
    the other records of the batch (the operator relies on it to isolate failing records, and
    promises batch results equal to per-record ones).
    """

    name: str
    version: str
    features: tuple[str, ...]
    threshold: float

    def predict_proba(self, batch: FeatureBatch) -> np.ndarray:
        """P(positive) for each record of the batch: a float64 array, one value per row."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """The envelope's metadata (everything but the payload)."""

    type: str
    name: str
    version: str
    features: tuple[str, ...]
    threshold: float
    categories: dict[str, list[Any]] = field(default_factory=dict)
    classes: tuple[str, str] = ("NO", "YES")
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "version": self.version,
                "features": list(self.features), "threshold": self.threshold,
                "categories": self.categories, "classes": list(self.classes),
                "metrics": self.metrics, "training": self.training}


def dump_envelope(info: ModelInfo, payload: str) -> bytes:
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **info.to_dict(),
           "model": payload}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def read_envelope(data: bytes) -> tuple[ModelInfo, str]:
    """Bytes of a model file → (metadata, payload); raises ``ModelError`` saying why."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ModelError(f"model file: bad gzip data: {exc}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ModelError(f"model file is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"not a fluvial model file (no \"format\": {FORMAT!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"model file format_version {doc.get('format_version')!r} is not "
                         f"supported (this fluvial reads {FORMAT_VERSION})")
    missing = [k for k in ("type", "name", "version", "features", "threshold", "model")
               if k not in doc]
    if missing:
        raise ModelError(f"model file lacks {', '.join(missing)}")
    try:
        info = ModelInfo(
            type=str(doc["type"]), name=str(doc["name"]), version=str(doc["version"]),
            features=tuple(str(f) for f in doc["features"]),
            threshold=float(doc["threshold"]),
            categories={str(k): list(v) for k, v in (doc.get("categories") or {}).items()},
            classes=tuple(doc.get("classes") or ("NO", "YES")),
            metrics=dict(doc.get("metrics") or {}), training=dict(doc.get("training") or {}))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"model file metadata is malformed: {exc}") from None
    if len(info.classes) != 2:
        raise ModelError(f"model file: \"classes\" must name 2 classes (negative, positive), "
                         f"got {list(info.classes)}")
    unknown = set(info.categories) - set(info.features)
    if unknown:
        raise ModelError(f"model file has categories for unknown features: {sorted(unknown)}")
    if not isinstance(doc["model"], str):
        raise ModelError("model file: \"model\" must be a string")
    return info, doc["model"]


Loader = Callable[[ModelInfo, str], Model]
#: The slow, idempotent part of loading a type (compiling it), run off the scoring thread.
Builder = Callable[[ModelInfo, str], object]
#: Whether ``Builder`` has already run for this file (its output is in the cache dir).
Built = Callable[[ModelInfo, str], bool]


@dataclass(frozen=True)
class ModelType:
    """How ``load_model`` reads one ``"type"``; ``build``/``built`` for types that must be
    compiled first, so that a models topic can compile a new version while the previous one
    keeps scoring."""

    load: Loader
    build: Builder | None = None
    built: Built | None = None

    def ready(self, info: ModelInfo, payload: str) -> bool:
        """True when ``load`` is quick: nothing to build, or built already."""
        return self.build is None or (self.built is not None and self.built(info, payload))


_TYPES: dict[str, ModelType] = {}
#: Types that fluvial ships, registered when their module is first imported.
_BUILTIN_TYPES = {"lightgbm": "fluvial.ml.lgbm", "lightgbm-compiled": "fluvial.ml.compiled",
                  "onnx": "fluvial.ml.onnx"}


def register_model_type(type_name: str, loader: Loader, *, build: Builder | None = None,
                        built: Built | None = None) -> None:
    """Teach ``load_model`` a model type: ``loader(info, payload) -> Model``. A type that is
    compiled before it scores passes ``build(info, payload)`` (compile into a cache; safe to
    call from another thread) and ``built(info, payload)`` (already compiled?)."""
    _TYPES[type_name] = ModelType(loader, build, built)


def model_type(info: ModelInfo) -> ModelType:
    """The registered type of a model file; ``ModelError`` if none reads it."""
    if info.type not in _TYPES and info.type in _BUILTIN_TYPES:
        import importlib

        importlib.import_module(_BUILTIN_TYPES[info.type])  # registers itself
    found = _TYPES.get(info.type)
    if found is None:
        raise ModelError(f"model type {info.type!r} is unknown; known: "
                         f"{', '.join(sorted({*_TYPES, *_BUILTIN_TYPES}))} "
                         f"(register_model_type adds one)")
    return found


def _read_source(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return Path(source).read_bytes()


def load_model(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> Model:
    """A model from a file's bytes or its path, whatever its type (``"type"`` picks); a type
    that needs compiling is compiled here (once: the result is cached)."""
    info, payload = read_envelope(_read_source(source))
    kind = model_type(info)
    if kind.build is not None and not kind.ready(info, payload):
        kind.build(info, payload)
    return kind.load(info, payload)


class MatrixModel:
    """The part every fluvial backend shares: metadata, and raw features → a float64 matrix
    (``encode``) that the backend's ``predict_matrix`` scores. ``predict_row`` is the
    one-record path: it skips the column building that a batch of one would pay for."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.name = info.name
        self.version = info.version
        self.features = info.features
        self.threshold = info.threshold
        self.categories = info.categories
        self.classes = info.classes
        self._index = category_index(info.categories)
        nan = float("nan")
        # per feature: its category → code (as a float) lookup, or None for a number
        self._row_plan = tuple((f, {v: float(i) for v, i in self._index[f].items()}.get
                                if f in self._index else None) for f in info.features)
        self._nan = nan

    def encode(self, batch: FeatureBatch) -> np.ndarray:
        return encode(batch, self.features, self.categories, self._index)

    def encode_row(self, row: Mapping[str, Any]) -> list[float]:
        """One record's raw features → its encoded values, as ``encode`` would give them."""
        nan = self._nan
        try:
            return [nan if (v := row[f]) is None else float(v) if code is None
                    else code(v, nan) for f, code in self._row_plan]
        except (KeyError, TypeError, ValueError):
            # the batch encoder names the feature and says why
            self.encode({f: [row[f]] for f in self.features if f in row})
            raise

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """P(positive) for rows already encoded by ``encode``."""
        raise NotImplementedError

    def predict_proba(self, batch: FeatureBatch) -> np.ndarray:
        return self.predict_matrix(self.encode(batch))

    def predict_row(self, row: Mapping[str, Any]) -> float:
        """P(positive) of one record (``{feature: raw value}``): equal, bit for bit, to its
        score in a batch."""
        x = np.array([self.encode_row(row)], dtype=np.float64)
        return float(self.predict_matrix(x)[0])

    def to_bytes(self) -> bytes:
        """The model file (see above): what ``save`` writes and models topics carry."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model file (atomically: a reader never sees half of it)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(p)
        return p


def encode(batch: FeatureBatch, features: Sequence[str],
           categories: Mapping[str, Sequence[Any]],
           index: Mapping[str, Mapping[Any, int]] | None = None) -> np.ndarray:
    """Raw feature columns → a float64 matrix (rows = records, columns = ``features``).

    Numbers stay numbers, ``None`` becomes NaN (missing). A categorical feature's value
    becomes its position in ``categories[feature]``; a value not in the list (an unseen
    carrier or airport), or ``None``, becomes NaN: scored as missing, never an error.
    A value that is neither a number nor NaN-able raises ``ModelError`` naming the feature.
    """
    if index is None:
        index = category_index(categories)
    columns = []
    n = -1
    for name in features:
        try:
            col = batch[name]
        except KeyError:
            raise ModelError(f"feature {name!r} is missing from the batch") from None
        if n < 0:
            n = len(col)
        elif len(col) != n:
            raise ModelError(f"feature {name!r} has {len(col)} values, others {n}")
        if name in index:
            get = index[name].get
            try:
                columns.append(np.array([get(v) for v in col], dtype=np.float64))
            except TypeError as exc:  # an unhashable value
                raise ModelError(f"feature {name!r} needs category values: {exc}") from None
        else:
            try:
                columns.append(np.asarray(col, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise ModelError(f"feature {name!r} needs numbers: {exc}") from None
    if not columns:
        return np.empty((0, 0), dtype=np.float64)
    return np.column_stack(columns)


def category_index(categories: Mapping[str, Sequence[Any]]) -> dict[str, dict[Any, int]]:
    return {name: {v: i for i, v in enumerate(values)} for name, values in categories.items()}


def fit_categories(batch: FeatureBatch, categorical: Sequence[str]) -> dict[str, list[Any]]:
    """The category list of each categorical feature: its distinct values, sorted, no None."""
    return {name: sorted({v for v in batch[name] if v is not None}, key=str)
            for name in categorical}
