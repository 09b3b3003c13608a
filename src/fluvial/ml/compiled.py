"""Compiled tree ensembles: a LightGBM model compiled to machine code (``pip install
'fluvial[models]'``: lleaves, which generates LLVM IR and compiles it through llvmlite).

The model file is of type ``lightgbm-compiled`` and carries LightGBM's model text, as a
``lightgbm`` file does: the machine code is made from it where the model runs (it depends on
the CPU), once, and cached in a directory (``$FLUVIAL_MODEL_CACHE``, default
``~/.cache/fluvial/models``) under a hash of the model text, the compiler's versions and the
host CPU. Compiling (10-60 s for 100 trees) runs in a child process; a models topic does it
while the previous version keeps scoring (``fluvial.ml.sources``).

Scores equal LightGBM's within 1e-12 (the same float64 arithmetic; only the order of adding
the trees' outputs may differ), and a row's score does not depend on its batch.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fluvial.ml.model import (
    MatrixModel,
    ModelError,
    ModelInfo,
    dump_envelope,
    register_model_type,
)

log = logging.getLogger("fluvial.ml")

TYPE = "lightgbm-compiled"
CACHE_ENV = "FLUVIAL_MODEL_CACHE"
#: lleaves releases this fix applies to (see ``_bitset_as_global_array``)
_FIXED_LLEAVES = ("1.3.0",)
#: bump when the code generated for a given model changes (part of the cache key)
_CODEGEN = "fluvial-1"
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_compiling = threading.Lock()


def _lleaves() -> Any:
    try:
        import lleaves
    except ImportError as exc:
        raise ModelError(f"model type {TYPE!r} needs lleaves: pip install 'fluvial[models]' "
                         f"({exc})") from None
    return lleaves


def _lleaves_version() -> str:
    from importlib.metadata import version

    return version("lleaves")


def cache_dir() -> Path:
    """Where compiled models are kept: ``$FLUVIAL_MODEL_CACHE`` or ~/.cache/fluvial/models."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fluvial" / "models")


def _cache_key(model_text: str) -> str:
    """What decides the machine code: the model, the compilers, the CPU."""
    import llvmlite
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:
        features = ""
    h = hashlib.sha256()
    _lleaves()
    for part in (model_text, _lleaves_version(), llvmlite.__version__,
                 llvm.get_host_cpu_name(), features, _CODEGEN):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def compiled_path(model_text: str) -> Path:
    """The object file of ``model_text`` in the cache (it may not exist yet)."""
    return cache_dir() / f"{_cache_key(model_text)}.o"


def is_compiled(info: ModelInfo, payload: str) -> bool:
    return compiled_path(payload).exists()


def compile_model(info: ModelInfo, payload: str) -> Path:
    """Compile the model into the cache (in a child process: the caller's threads keep the
    interpreter); does nothing if it is there. Raises ``ModelError`` saying why it failed."""
    target = compiled_path(payload)
    with _compiling:  # one compile at a time in this process; the file is written atomically
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".compiling-") as tmp:
            text, obj = Path(tmp) / "model.txt", Path(tmp) / "model.o"
            text.write_text(payload)
            done = subprocess.run([sys.executable, "-m", "fluvial.ml.compiled", str(text),
                                   str(obj)], capture_output=True, text=True, check=False,
                                  env=_child_env())
            if done.returncode != 0 or not obj.exists():
                why = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise ModelError(f"model {info.name} {info.version}: compiling failed "
                                 f"(exit {done.returncode}): {why}")
            os.replace(obj, target)
    log.info("model %s %s compiled into %s", info.name, info.version, target)
    return target


def _child_env() -> dict[str, str]:
    """This environment, with this fluvial first on the child's path (it may have come from
    ``sys.path`` rather than an install)."""
    import fluvial

    here = str(Path(fluvial.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


class CompiledTreeModel(MatrixModel):
    """A LightGBM model as machine code; implements ``Model``. One thread, no GIL held while
    it scores."""

    def __init__(self, info: ModelInfo, model_text: str) -> None:
        super().__init__(info)
        self.model_text = model_text
        obj = compile_model(info, model_text)
        lleaves = _lleaves()
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(model_text)
            f.flush()
            try:
                compiled = lleaves.Model(model_file=f.name)
                compiled.compile(cache=str(obj))
            except Exception as exc:
                raise ModelError(f"model {info.name} {info.version}: lleaves cannot load "
                                 f"it: {exc}") from None
        if compiled.num_feature() != len(info.features):
            raise ModelError(f"the compiled model has {compiled.num_feature()} features, its "
                             f"metadata names {len(info.features)}")
        if compiled.num_model_per_iteration() != 1:
            raise ModelError("only binary classifiers and regressors (one output) compile")
        self._compiled = compiled  # holds the machine code
        # the compiled function itself: (rows, out, first row, end row); lleaves' predict()
        # adds a few microseconds a call that a one-row call would pay each time
        self._entry = compiled._c_entry_func
        self._n = len(info.features)
        self._row = ctypes.c_double * self._n

    @classmethod
    def from_lightgbm(cls, model: Any, version: str | None = None) -> CompiledTreeModel:
        """The same trees as a ``LightGBMModel``, compiled; version ``<its version>-compiled``
        unless given."""
        info = replace(model.info, type=TYPE, version=version or f"{model.version}-compiled")
        return cls(info, model.booster.model_to_string())

    def to_bytes(self) -> bytes:
        return dump_envelope(self.info, self.model_text)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        n = matrix.shape[0]
        out = np.empty(n, dtype=np.float64)
        if n:
            if matrix.ndim != 2 or matrix.shape[1] != self._n:
                raise ModelError(f"expected rows of {self._n} features, got {matrix.shape}")
            x = np.ascontiguousarray(matrix, dtype=np.float64)
            self._entry(x.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P), 0, n)
        return out

    def predict_row(self, row: Any) -> float:
        x = self._row(*self.encode_row(row))
        out = ctypes.c_double()
        self._entry(x, ctypes.byref(out), 0, 1)
        return out.value

    def __repr__(self) -> str:
        return (f"CompiledTreeModel(name={self.name!r}, version={self.version!r}, "
                f"trees={self._compiled.num_trees()}, threshold={self.threshold})")


# -- the compiler, run as ``python -m fluvial.ml.compiled MODEL_TEXT OBJECT`` ---------------


def _bitset_as_global_array() -> None:
    """lleaves 1.3.0 tests a categorical split against a vector constant indexed at run time,
    which LLVM lowers to writing the whole vector to the stack at each visit: with the
    airline model's 2,000-value FlightNum (70 words a split, 1,640 such splits) scoring a row
    took 4-5 µs, no faster than LightGBM. Reading the word from a constant global array is
    one load: 0.8 µs a row, and the compile is 2-3 times faster. Same bits, same decisions."""
    from lleaves.compiler.codegen import codegen
    from llvmlite import ir

    if _lleaves_version() not in _FIXED_LLEAVES:
        log.warning("lleaves %s: categorical splits compiled as lleaves does (slower); "
                    "fluvial's fix is for %s", _lleaves_version(), ", ".join(_FIXED_LLEAVES))
        return
    names = itertools.count()

    def categorical_node(func: Any, builder: Any, bitset_builder: Any, node: Any,
                         bitset_block: Any, right_block: Any) -> Any:
        value = func.args[node.split_feature]  # the category, as i32 (NaN: negative)
        words = len(node.cat_threshold)
        builder.cbranch(builder.icmp_unsigned("<", value, codegen.iconst(32 * words)),
                        bitset_block, right_block)
        kind = ir.ArrayType(codegen.INT, words)
        bits = ir.GlobalVariable(func.module, kind, name=f"catbits.{next(names)}")
        bits.global_constant = True
        bits.linkage = "private"
        bits.initializer = ir.Constant(kind, [ir.Constant(codegen.INT, w)
                                              for w in node.cat_threshold])
        word_at = bitset_builder.gep(bits, [codegen.iconst(0),
                                            bitset_builder.udiv(value, codegen.iconst(32))],
                                     inbounds=True)
        word = bitset_builder.load(word_at)
        bit = bitset_builder.lshr(word, bitset_builder.urem(value, codegen.iconst(32)))
        return bitset_builder.trunc(bit, codegen.BOOL)

    codegen._populate_categorical_node_block = categorical_node


def _compile_main(model_text: str, obj: str) -> int:
    import lleaves

    _bitset_as_global_array()
    lleaves.Model(model_file=model_text).compile(cache=obj)
    return 0


register_model_type(TYPE, CompiledTreeModel, build=compile_model, built=is_compiled)


if __name__ == "__main__":
    sys.exit(_compile_main(sys.argv[1], sys.argv[2]))
