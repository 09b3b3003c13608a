"""LightGBM binary classifiers as fluvial models (``pip install 'fluvial[ml]'``).

Categorical features are LightGBM categorical features over integer codes: a value's code is
its position in the model's stored category list; an unseen value scores as missing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fluvial.ml.model import (
    MatrixModel,
    ModelError,
    ModelInfo,
    dump_envelope,
    read_envelope,
    register_model_type,
)

TYPE = "lightgbm"


class LightGBMModel(MatrixModel):
    """A LightGBM booster with the metadata that scoring needs; implements ``Model``.

    ``num_threads`` is LightGBM's thread count for scoring (default 1: fluvial scales with
    processes, and small batches lose more to thread start-up than they gain).
    """

    def __init__(self, booster: Any, info: ModelInfo, num_threads: int = 1) -> None:
        super().__init__(info)
        self.booster = booster
        self.num_threads = num_threads
        if booster.num_feature() != len(info.features):
            raise ModelError(f"the LightGBM model has {booster.num_feature()} features, its "
                             f"metadata names {len(info.features)}")

    # -- loading and saving ------------------------------------------------------------

    @classmethod
    def load(cls, source: bytes | bytearray | memoryview | str | os.PathLike[str],
             num_threads: int = 1) -> LightGBMModel:
        """From a model file's bytes (as published to a models topic) or its path."""
        data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) \
            else Path(source).read_bytes()
        info, payload = read_envelope(data)
        if info.type != TYPE:
            raise ModelError(f"model file is of type {info.type!r}, not {TYPE!r}")
        return cls.from_text(info, payload, num_threads)

    @classmethod
    def from_text(cls, info: ModelInfo, model_text: str, num_threads: int = 1) -> LightGBMModel:
        import lightgbm

        try:
            booster = lightgbm.Booster(model_str=model_text)
        except lightgbm.basic.LightGBMError as exc:
            raise ModelError(f"model file: LightGBM cannot read the model: {exc}") from None
        return cls(booster, info, num_threads)

    @classmethod
    def from_booster(cls, booster: Any, *, name: str, features: Sequence[str],
                     categories: Mapping[str, Sequence[Any]], threshold: float = 0.5,
                     version: str | None = None, classes: tuple[str, str] = ("NO", "YES"),
                     metrics: Mapping[str, Any] | None = None,
                     training: Mapping[str, Any] | None = None) -> LightGBMModel:
        """Wrap a trained booster. ``version`` defaults to a hash of the model and its
        scoring metadata, so the same training gives the same version."""
        import lightgbm

        info = ModelInfo(TYPE, name, "", tuple(features), float(threshold),
                         {k: list(v) for k, v in categories.items()}, classes,
                         dict(metrics or {}), dict(training or {},
                                                   lightgbm_version=lightgbm.__version__))
        text = booster.model_to_string()
        if version is None:
            version = content_version(info, text)
        return cls(booster, replace(info, version=version))

    def to_bytes(self) -> bytes:
        return dump_envelope(self.info, self.booster.model_to_string())

    # -- scoring -------------------------------------------------------------------------

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        out = self.booster.predict(matrix, num_threads=self.num_threads)
        return np.asarray(out, dtype=np.float64)

    def __repr__(self) -> str:
        return (f"LightGBMModel(name={self.name!r}, version={self.version!r}, "
                f"trees={self.booster.num_trees()}, threshold={self.threshold})")


def content_version(info: ModelInfo, payload: str) -> str:
    """12 hex digits of sha256 over what decides scores: payload, features, categories,
    threshold, classes."""
    h = hashlib.sha256()
    for part in (payload, repr(info.features), repr(sorted(info.categories.items())),
                 repr(info.threshold), repr(info.classes)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


register_model_type(TYPE, lambda info, payload: LightGBMModel.from_text(info, payload))
