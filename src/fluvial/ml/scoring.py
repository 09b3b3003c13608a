"""Scoring inside a topology, a batch at a time.

``score(stream, model, featurize=..., output=...)`` adds a processor that, for each batch:

1. takes the model (and the shadow model) once: a swap lands between batches, never in one;
2. featurizes every record (``featurize(value) -> {feature: raw value}``); a record whose
   featurization fails goes to the task's error policy (stop / skip / dead-letter), the rest
   of the batch goes on;
3. builds one feature batch (columns) and calls the model once (vectorized); should that
   fail, it scores the records one by one to find, and hand to the error policy, the ones
   that fail;
4. builds each output value with ``output(value, prediction)``; the prediction carries the
   model's name and version, and so does the ``fluvial.model.version`` header.

With ``featurize_batch(values) -> {feature: column}`` steps 2 and 3 are first tried on the
whole batch at once (a column-wise parser can be several times cheaper a record than one
``featurize`` call each); if that raises, or the model call on its columns does, the batch
takes the per-record path above, so that the error policy sees exactly the failing records.

Scores are those of scoring each record alone (``Model.predict_proba`` is per-row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from fluvial.dsl.stream import Stream
from fluvial.errors import FluvialError
from fluvial.ml import exporter
from fluvial.ml.model import FeatureBatch, Model, ModelError
from fluvial.ml.sources import ModelReader, ModelSource, as_source
from fluvial.processing.processor import Processor, ProcessorContext
from fluvial.record import Record

log = logging.getLogger("fluvial.ml")

VERSION_HEADER = "fluvial.model.version"


class ModelUnavailableError(FluvialError):
    """No model to score with yet (nothing published under its name, or withdrawn)."""


class Prediction(NamedTuple):
    """One record's score. ``positive`` is ``probability >= threshold``; ``label`` is the
    model's class name for it (``"YES"``/``"NO"`` by default).

    A named tuple, built with ``tuple.__new__``, because one is made per record scored: a
    frozen dataclass cost five times as much."""

    probability: float
    positive: bool
    label: str
    threshold: float
    model: str
    version: str
    shadow: Prediction | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prediction": self.label, "probability": self.probability,
                               "threshold": self.threshold, "model": self.model,
                               "model_version": self.version}
        if self.shadow is not None:
            out["shadow"] = self.shadow.as_dict()
        return out


@dataclass(eq=False)  # compared and hashed by identity: the exporter tracks it weakly
class ScoringMetrics:
    """Counters of one ``score`` operator, summed over the tasks of this process."""

    batches: int = 0
    scored: int = 0
    failed: int = 0             # records handed to the error policy
    unavailable: int = 0        # of which: no model yet
    swaps: int = 0              # times the model in use changed between batches
    model_version: str | None = None
    shadow_version: str | None = None
    shadow_scored: int = 0
    shadow_agreed: int = 0      # same label as the model's
    shadow_failed: int = 0
    load_errors: int = 0        # published files that did not load
    versions: dict[str, int] = field(default_factory=dict)  # records scored per version

    @property
    def agreement_rate(self) -> float | None:
        """Share of shadow-scored records whose shadow label equals the model's."""
        return self.shadow_agreed / self.shadow_scored if self.shadow_scored else None

    def as_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "scored": self.scored, "failed": self.failed,
                "unavailable": self.unavailable, "swaps": self.swaps,
                "model_version": self.model_version, "shadow_version": self.shadow_version,
                "shadow_scored": self.shadow_scored, "shadow_agreed": self.shadow_agreed,
                "shadow_failed": self.shadow_failed,
                "shadow_agreement_rate": self.agreement_rate,
                "load_errors": self.load_errors, "versions": dict(self.versions)}


Featurize = Callable[[Any], Mapping[str, Any]]
FeaturizeBatch = Callable[[list[Any]], FeatureBatch]
Rows = list[Mapping[str, Any]]
#: A batch's scored records, their features (rows, or columns from ``featurize_batch``) and
#: scores.
Scored = tuple[list[Record], FeatureBatch | Rows, list[float]]
Output = Callable[[Any, Prediction], Any]


def default_output(value: Any, prediction: Prediction) -> dict[str, Any]:
    return {"input": value, **prediction.as_dict()}


def _identity(value: Any) -> Any:
    return value


def columns(rows: Sequence[Mapping[str, Any]], features: Sequence[str]) -> dict[str, list[Any]]:
    """Feature rows → a feature batch (columns) with ``features``."""
    try:
        return {f: [row[f] for row in rows] for f in features}
    except KeyError as exc:
        raise ModelError(f"featurize gave no value for feature {exc.args[0]!r}") from None
    except TypeError as exc:
        raise ModelError(f"featurize must return a mapping of feature → value: {exc}") from None


class ScoreProcessor(Processor):
    """The processor ``score`` adds; ``model`` is the one the last batch used."""

    fans_out = False

    def __init__(self, source: ModelSource, featurize: Featurize = _identity,
                 output: Output = default_output, shadow: ModelSource | None = None,
                 metrics: ScoringMetrics | None = None,
                 version_header: str | None = VERSION_HEADER, stage: str = "score",
                 featurize_batch: FeaturizeBatch | None = None) -> None:
        self.source = source
        self.shadow_source = shadow
        self.featurize = featurize
        self.featurize_batch = featurize_batch
        self.output = output
        self.metrics = metrics if metrics is not None else ScoringMetrics()
        self.version_header = version_header
        self.stage = stage
        self.model: Model | None = None
        self.shadow: Model | None = None
        self._reader: ModelReader | None = None
        self._shadow_reader: ModelReader | None = None
        self._load_errors = 0

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self._reader = self.source.reader(context)
        self._shadow_reader = (self.shadow_source.reader(context)
                               if self.shadow_source is not None else None)

    # -- per batch -----------------------------------------------------------------------

    def _take_models(self) -> tuple[Model | None, Model | None]:
        assert self._reader is not None
        m = self.metrics
        model = self._reader.current()
        shadow = self._shadow_reader.current() if self._shadow_reader is not None else None
        if model is not self.model:
            if self.model is not None and model is not None:
                m.swaps += 1
            self.model = model
        m.model_version = model.version if model is not None else None
        self.shadow = shadow
        m.shadow_version = shadow.version if shadow is not None else None
        errors = sum(getattr(r, "load_errors", 0) for r in (self._reader, self._shadow_reader))
        m.load_errors += errors - self._load_errors
        self._load_errors = errors
        return model, shadow

    def process(self, batch: list[Record]) -> None:
        context, m = self.context, self.metrics
        model, shadow = self._take_models()  # once per batch: swaps land between batches
        m.batches += 1
        if model is None:
            error = ModelUnavailableError(f"no model to score with yet ({self.source!r})")
            m.unavailable += len(batch)
            m.failed += len(batch)
            for r in batch:
                context.on_error(r, error, self.stage)
            return
        scored: Scored | None = None
        if self.featurize_batch is not None:
            scored = self._score_batch(model, batch)
        if scored is None:
            scored = self._score_rows(model, batch)
        records, features, probabilities = scored
        if not records:
            return
        shadows = self._shadow(shadow, features, probabilities, model.threshold)
        out = self._outputs(model, records, probabilities, shadows or [None] * len(records))
        m.scored += len(out)
        m.versions[model.version] = m.versions.get(model.version, 0) + len(out)
        if out:
            context.forward(out)

    def _outputs(self, model: Model, records: list[Record], probabilities: list[float],
                 shadows: Sequence[Prediction | None]) -> list[Record]:
        """The output records; one whose ``output`` raises goes to the error policy."""
        name, version, threshold = model.name, model.version, model.threshold
        negative, positive = getattr(model, "classes", ("NO", "YES"))
        header = (self.version_header, version.encode()) if self.version_header else None
        output, new = self.output, tuple.__new__
        out: list[Record] = []
        for r, p, shadow in zip(records, probabilities, shadows, strict=True):
            prediction = new(Prediction, (p, True, positive, threshold, name, version, shadow)
                             if p >= threshold else
                             (p, False, negative, threshold, name, version, shadow))
            try:
                value = output(r.value, prediction)
            except Exception as exc:
                self.metrics.failed += 1
                self.context.on_error(r, exc, f"{self.stage}: output")
                continue
            headers = r.headers
            if header is not None:
                headers = [*headers, header] if headers else [header]
            out.append(Record(r.key, value, r.timestamp, headers, r.topic, r.partition,
                              r.offset))
        return out

    def _score_batch(self, model: Model, batch: list[Record]) -> Scored | None:
        """``featurize_batch`` and one model call; ``None`` if either raises (a malformed
        record, say), for the per-record path to find the culprits."""
        assert self.featurize_batch is not None
        try:
            features = self.featurize_batch([r.value for r in batch])
            return batch, features, _predict(model, features, len(batch))
        except Exception as exc:
            log.debug("%s: a batch of %d goes record by record: %s", self.stage, len(batch), exc)
            return None

    def _score_rows(self, model: Model, batch: list[Record]) -> Scored:
        records, rows = self._featurize(batch)
        if not records:
            return records, rows, []
        return self._score(model, records, rows)

    def _featurize(self, batch: list[Record]) -> tuple[list[Record], Rows]:
        featurize = self.featurize
        try:
            return batch, [featurize(r.value) for r in batch]
        except Exception:
            pass
        records: list[Record] = []
        rows: Rows = []
        for r in batch:
            try:
                row = featurize(r.value)
            except Exception as exc:
                self.metrics.failed += 1
                self.context.on_error(r, exc, f"{self.stage}: featurize")
                continue
            records.append(r)
            rows.append(row)
        return records, rows

    def _score(self, model: Model, records: list[Record], rows: Rows
               ) -> tuple[list[Record], Rows, list[float]]:
        try:
            return records, rows, _predict_rows(model, rows)
        except Exception:
            pass
        kept: list[Record] = []
        kept_rows: Rows = []
        scores: list[float] = []
        for r, row in zip(records, rows, strict=True):
            try:
                scores += _predict_rows(model, [row])
            except Exception as exc:
                self.metrics.failed += 1
                self.context.on_error(r, exc, f"{self.stage}: model {model.version}")
                continue
            kept.append(r)
            kept_rows.append(row)
        return kept, kept_rows, scores

    def _shadow(self, shadow: Model | None, features: FeatureBatch | Rows,
                primary: list[float], threshold: float) -> list[Prediction] | None:
        if shadow is None:
            return None
        m, n = self.metrics, len(primary)
        try:
            probabilities = (_predict_rows(shadow, features) if isinstance(features, list)
                             else _predict(shadow, features, n))
        except Exception as exc:  # a shadow never fails a record
            m.shadow_failed += n
            log.warning("shadow model %s %s failed on a batch of %d: %s", shadow.name,
                        shadow.version, n, exc)
            return None
        negative, positive = getattr(shadow, "classes", ("NO", "YES"))
        t = shadow.threshold
        predictions = [Prediction(p, p >= t, positive if p >= t else negative, t, shadow.name,
                                  shadow.version) for p in probabilities]
        m.shadow_scored += n
        m.shadow_agreed += sum(1 for p, s in zip(primary, predictions, strict=True)
                               if (p >= threshold) == s.positive)
        return predictions


def score(stream: Stream, model: Model | ModelSource, *, featurize: Featurize | None = None,
          output: Output | None = None, shadow: Model | ModelSource | None = None,
          metrics: ScoringMetrics | None = None, version_header: str | None = VERSION_HEADER,
          name: str | None = None, featurize_batch: FeaturizeBatch | None = None) -> Stream:
    """Score ``stream``'s values with ``model`` a batch at a time; keys stay, so a later
    grouping needs no repartition.

    ``model``: a ``Model`` (fixed) or a source such as ``ModelTopic(builder, topic).model(
    name)`` (hot-swapped between batches). ``featurize(value)`` returns the raw features as a
    mapping (default: the value itself). ``featurize_batch(values)``, optional, returns the
    raw features of a whole batch's values at once, as columns (feature → sequence, one value
    per record, as ``featurize`` would give them): faster; when it raises (or the model does
    on its columns) the batch goes through ``featurize`` record by record, so the error
    policy still sees exactly the failing records. ``output(value, prediction)`` builds the
    output value (default: ``{"input": value, "prediction": …, "probability": …,
    "threshold": …, "model": …, "model_version": …}``). ``shadow`` scores alongside: its
    prediction rides in ``prediction.shadow`` and ``metrics.agreement_rate`` counts how often
    it agrees. Pass ``metrics`` (a ``ScoringMetrics``) to read the counters.
    """
    source = as_source(model)
    shadow_source = as_source(shadow) if shadow is not None else None
    shared = metrics if metrics is not None else ScoringMetrics()
    stage = name or "score"
    exporter.track(stage, shared)

    def supplier() -> ScoreProcessor:
        return ScoreProcessor(source, featurize or _identity, output or default_output,
                              shadow_source, shared, version_header, stage, featurize_batch)

    return stream.process_values(supplier, name=name)


def _predict(model: Model, batch: FeatureBatch, rows: int) -> list[float]:
    """One model call, checked to give one score per row, as floats."""
    probabilities = np.asarray(model.predict_proba(batch), dtype=np.float64)
    if probabilities.shape != (rows,):
        raise ModelError(f"model gave scores of shape {probabilities.shape} for {rows} rows")
    scores: list[float] = probabilities.tolist()
    return scores


def _predict_rows(model: Model, rows: Rows) -> list[float]:
    predict_row = getattr(model, "predict_row", None)
    if predict_row is not None and len(rows) == 1:  # no columns to build for one record
        return [float(predict_row(rows[0]))]
    return _predict(model, columns(rows, model.features), len(rows))
