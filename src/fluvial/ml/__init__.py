"""fluvial.ml: score records with a model inside a topology, a batch at a time; models as data.

Needs the ``ml`` extra (``pip install 'fluvial[ml]'``: numpy, lightgbm). See docs/ml.md.

- ``Model``: the interface (``predict_proba(feature batch) -> P(positive)``, ``name``,
  ``version``, ``features``, ``threshold``); ``LightGBMModel`` implements it, and with the
  ``models`` extra ``fluvial.ml.compiled.CompiledTreeModel`` (LightGBM compiled to machine
  code) and ``fluvial.ml.onnx.OnnxModel`` (ONNX Runtime); ``load_model`` reads any
  registered type from a model file, whose ``"type"`` picks the backend.
- ``score(stream, model, featurize=, output=, shadow=, metrics=)``: the scoring operator.
- ``ModelTopic(builder, topic).model(name)``: a model read from a compacted topic, swapped
  live between batches; ``publish_model`` / ``withdraw_model`` write that topic.
"""

from fluvial.ml.lgbm import LightGBMModel
from fluvial.ml.metrics import accuracy, best_threshold, roc_auc
from fluvial.ml.model import (
    FeatureBatch,
    MatrixModel,
    Model,
    ModelError,
    ModelInfo,
    encode,
    fit_categories,
    load_model,
    read_envelope,
    register_model_type,
)
from fluvial.ml.scoring import (
    VERSION_HEADER,
    ModelUnavailableError,
    Prediction,
    ScoreProcessor,
    ScoringMetrics,
    default_output,
    score,
)
from fluvial.ml.sources import (
    FixedModel,
    ModelSource,
    ModelTopic,
    TopicModel,
    ensure_models_topic,
    publish_model,
    withdraw_model,
)

__all__ = [
    "VERSION_HEADER", "FeatureBatch", "FixedModel", "LightGBMModel", "MatrixModel", "Model",
    "ModelError", "ModelInfo", "ModelSource", "ModelTopic", "ModelUnavailableError", "Prediction",
    "ScoreProcessor", "ScoringMetrics", "TopicModel", "accuracy", "best_threshold",
    "default_output", "encode", "ensure_models_topic", "fit_categories", "load_model",
    "publish_model", "read_envelope", "register_model_type", "roc_auc", "score",
    "withdraw_model",
]
