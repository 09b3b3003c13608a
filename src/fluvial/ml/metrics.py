"""Classifier quality, with numpy only: AUC, accuracy, a threshold that maximizes accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def roc_auc(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (ties count half): P(score of a positive > of a negative)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"{y.shape[0]} labels but {s.shape[0]} scores")
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both positive and negative labels")
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank of each run of equal scores (ranks from 1)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    rank_sum = ranks[y].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def accuracy(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray,
             threshold: float) -> float:
    """Share of records where ``score >= threshold`` equals the label."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        raise ValueError("accuracy of no records")
    return float(np.mean((s >= threshold) == y))


def best_threshold(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray,
                   candidates: Sequence[float] | np.ndarray | None = None) -> float:
    """The candidate threshold (default 0.05, 0.055 … 0.95) with the highest accuracy; the
    one nearest 0.5 among equals."""
    grid = np.round(np.linspace(0.05, 0.95, 181), 4) if candidates is None \
        else np.asarray(candidates, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    best, best_acc = 0.5, -1.0
    for t in sorted(grid, key=lambda t: abs(t - 0.5)):
        acc = float(np.mean((s >= t) == y))
        if acc > best_acc:
            best, best_acc = float(t), acc
    return best
