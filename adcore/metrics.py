"""The detection metrics every run records, computed in this one place.

Convention (written once, used by every record): labels ``y`` are 1 for an anomaly and 0 for a normal
(in-distribution) sample, and scores are *anomaly* scores, higher = more anomalous. Then

* ``auc``: AUROC with the anomaly as the positive class, i.e. ``sklearn.metrics.roc_auc_score(y, scores)``, as
  the seeds compute it; 0.5 is chance, and it is never flipped when below 0.5;
* ``aupr_out``: average precision (area under the precision-recall curve, step-wise as scikit-learn's
  ``average_precision_score``) with the anomaly as the positive class: ``average_precision_score(y, scores)``;
* ``aupr_in``: average precision with the *normal* class as the positive one, ranked by the negated scores:
  ``average_precision_score(1 - y, -scores)``;
* ``fpr95``: the false-positive rate at 95 % true-positive rate: the fraction of normals flagged at the highest
  threshold that flags at least 95 % of the anomalies (flagged = score >= threshold; a tie at the threshold is
  flagged as a whole);
* ``detection_error``: the smallest ``0.5 (1 - TPR) + 0.5 FPR`` over all thresholds (Liang et al., ODIN), the
  misclassification probability with equal priors at the best threshold.

Outlier-detection papers disagree on which class is "positive" (see OpenOOD issue #211: FPR@95TPR and AUPR-in/out
computed with the in-distribution class positive in some code, the outliers positive in others, so that published
numbers are swapped). Here the anomaly is positive for AUROC, AUPR-out and FPR@95TPR (TPR = anomalies caught), and
AUPR-in is the one metric with the normal class positive. Swapping the roles (``1 - y``, ``-scores``) therefore
keeps ``auc``, swaps ``aupr_in`` and ``aupr_out``; ``tests/test_metrics.py`` checks all of it against
scikit-learn, ties included.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

KEYS = ("auc", "aupr_in", "aupr_out", "fpr95", "detection_error")
NAMES = {"auc": "AUROC", "aupr_in": "AUPR-in", "aupr_out": "AUPR-out", "fpr95": "FPR@95TPR",
         "detection_error": "detection error"}


def _check(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels for {len(s)} scores")
    if not np.all(np.isfinite(s)):
        raise FloatingPointError("non-finite anomaly scores")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (normal) or 1 (anomaly)")
    if len(np.unique(y)) < 2:
        raise ValueError("the metrics need both normal (0) and anomalous (1) samples")
    return y.astype(np.int64), s


def fpr_at_tpr(y: Any, scores: Any, tpr: float = 0.95) -> float:
    """The fraction of normals (y = 0) flagged at the highest threshold that flags at least ``tpr`` of the
    anomalies (y = 1); flagged = score >= threshold."""
    y, s = _check(y, scores)
    fprs, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, tpr - 1e-12, side="left")])


def detection_error(y: Any, scores: Any) -> float:
    """min over thresholds of 0.5 (1 - TPR) + 0.5 FPR (anomaly positive)."""
    y, s = _check(y, scores)
    fprs, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    return float(np.min(0.5 * (1 - tprs) + 0.5 * fprs))


def detection_metrics(y: Any, scores: Any) -> dict[str, float]:
    """``auc``, ``aupr_in``, ``aupr_out``, ``fpr95``, ``detection_error`` of anomaly ``scores`` for labels ``y``
    (1 = anomaly), with the module's convention. Raises ``FloatingPointError`` for non-finite scores."""
    y, s = _check(y, scores)
    return {"auc": float(roc_auc_score(y, s)),
            "aupr_in": float(average_precision_score(1 - y, -s)),
            "aupr_out": float(average_precision_score(y, s)),
            "fpr95": fpr_at_tpr(y, s),
            "detection_error": detection_error(y, s)}
