"""Binary metrics for model selection: AUC, and MCC with sensitivity/specificity at the best threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from core.metrics import mcc, sensitivity_specificity


def best_mcc_threshold(labels: Sequence[int], probs: Sequence[float]) -> tuple[float, float]:
    """The threshold ``t`` (stalled when ``p >= t``) maximising MCC, and that MCC.

    Every cut between two distinct scores is tried in one vectorised pass; the threshold is the
    midpoint of the cut, which generalises better than a score that sits exactly on it.
    """
    y, p = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # last index of each distinct score
    tp = np.cumsum(ys)[last].astype(float)
    fp = (last + 1 - tp).astype(float)
    pos, neg = ys.sum(), len(ys) - ys.sum()
    fn, tn = pos - tp, neg - fp
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)
    best = int(np.argmax(mcc))
    below = ps[last[best] + 1] if last[best] + 1 < len(ps) else 0.0
    return float((ps[last[best]] + below) / 2), float(mcc[best])


def score_report(labels: Sequence[int], probs: Sequence[float], threshold: float | None = None) -> dict[str, float]:
    """Loss, AUC, MCC, sensitivity and specificity; at ``threshold`` or else the best-MCC one."""
    y, p = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    report = {"loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))}
    if len(np.unique(y)) < 2:
        return report | {"auc": float("nan"), "mcc": float("nan"), "threshold": float("nan"),
                         "sensitivity": float("nan"), "specificity": float("nan")}
    if threshold is None:
        threshold, _ = best_mcc_threshold(y, p)
    pred = (p >= threshold).astype(int)
    sensitivity, specificity = sensitivity_specificity(y, pred)
    return report | {"auc": float(roc_auc_score(y, p)), "mcc": mcc(y, pred), "threshold": float(threshold),
                     "sensitivity": sensitivity, "specificity": specificity}
