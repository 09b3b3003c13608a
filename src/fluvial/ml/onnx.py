"""ONNX models scored by ONNX Runtime (``pip install 'fluvial[models]'``): any model exported
to ONNX (scikit-learn pipelines, XGBoost, LightGBM, PyTorch), one session per model.

The model file is of type ``onnx``; its payload is the ONNX model, base64. The graph takes
one input, the encoded feature matrix (rows by ``features``, float or double; the envelope's
``categories`` encode categorical features as their codes, as for LightGBM), and gives
P(positive) in an output named ``probabilities`` (or its last output): a column per class,
the positive one last, or one value per row.

The session is set for a streaming process: one intra-op and one inter-op thread (fluvial
scales with processes; a thread pool's hand-offs cost more than they save on a poll batch),
sequential execution, the memory arena kept (its blocks are reused batch after batch) and
memory patterns off (they are planned for one input shape; poll batches vary).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fluvial.ml.model import (
    MatrixModel,
    ModelError,
    ModelInfo,
    dump_envelope,
    register_model_type,
)

TYPE = "onnx"
OUTPUT = "probabilities"


def session_options(threads: int = 1) -> Any:
    """ONNX Runtime's settings for scoring inside a stream processor."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting threads between batches when threads > 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxModel(MatrixModel):
    """An ONNX model in an ONNX Runtime session; implements ``Model``."""

    def __init__(self, info: ModelInfo, onnx_bytes: bytes, threads: int = 1) -> None:
        super().__init__(info)
        try:
            import onnxruntime
        except ImportError as exc:
            raise ModelError(f"model type {TYPE!r} needs onnxruntime: pip install "
                             f"'fluvial[models]' ({exc})") from None
        self.onnx_bytes = onnx_bytes
        try:
            self.session = onnxruntime.InferenceSession(onnx_bytes, session_options(threads),
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"model {info.name} {info.version}: ONNX Runtime cannot load "
                             f"it: {exc}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"the ONNX model takes {len(inputs)} inputs; fluvial gives one, "
                             f"the feature matrix")
        self._input = inputs[0].name
        self._dtype = {"tensor(float)": np.float32,
                       "tensor(double)": np.float64}.get(inputs[0].type)
        if self._dtype is None:
            raise ModelError(f"the ONNX model's input is {inputs[0].type}; fluvial gives "
                             f"float or double")
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != len(info.features):
            raise ModelError(f"the ONNX model takes {width} features, its metadata names "
                             f"{len(info.features)}")
        named = [o for o in outputs if o.name == OUTPUT]
        out = named[0] if named else outputs[-1]
        if not out.type.startswith("tensor("):
            raise ModelError(f"the ONNX model's output {out.name!r} is {out.type}, not a "
                             f"tensor (export classifiers with zipmap=False)")
        self._output = out.name

    @classmethod
    def from_onnx(cls, onnx_bytes: bytes, *, name: str, version: str, features: Sequence[str],
                  categories: Mapping[str, Sequence[Any]] | None = None,
                  threshold: float = 0.5, classes: tuple[str, str] = ("NO", "YES"),
                  metrics: Mapping[str, Any] | None = None,
                  training: Mapping[str, Any] | None = None) -> OnnxModel:
        """Wrap an ONNX model exported by any library."""
        info = ModelInfo(TYPE, name, version, tuple(features), float(threshold),
                         {k: list(v) for k, v in (categories or {}).items()}, classes,
                         dict(metrics or {}), dict(training or {}))
        return cls(info, onnx_bytes)

    @classmethod
    def from_lightgbm(cls, model: Any, version: str | None = None) -> OnnxModel:
        """A ``LightGBMModel`` exported to ONNX (onnxmltools; float32 inputs and thresholds,
        so scores differ from LightGBM's by up to ~1e-6); version ``<its version>-onnx``
        unless given."""
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        graph = convert_lightgbm(model.booster, name=model.name, zipmap=False,
                                 initial_types=[("features",
                                                 FloatTensorType([None, len(model.features)]))])
        info = replace(model.info, type=TYPE, version=version or f"{model.version}-onnx")
        return cls(info, graph.SerializeToString())

    def to_bytes(self) -> bytes:
        return dump_envelope(self.info, base64.b64encode(self.onnx_bytes).decode("ascii"))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        (out,) = self.session.run([self._output],
                                  {self._input: np.asarray(matrix, dtype=self._dtype)})
        out = np.asarray(out)
        if out.ndim == 2:
            out = out[:, -1]
        return out.astype(np.float64, copy=False)

    def __repr__(self) -> str:
        return (f"OnnxModel(name={self.name!r}, version={self.version!r}, "
                f"threshold={self.threshold})")


def _load(info: ModelInfo, payload: str) -> OnnxModel:
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelError(f"model file: the ONNX payload is not base64: {exc}") from None
    return OnnxModel(info, data)


register_model_type(TYPE, _load)
