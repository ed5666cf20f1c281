"""The stall share of unlabelled stacks, and the decision threshold for that share (label shift).

Labelled sets are enriched for stalls (≈ 20 %) while the stacks a lab decides have far fewer
(≈ 1–5 %). A threshold that maximises MCC on the labelled set's out-of-fold scores is tuned for
the wrong prior: at 5 % stalls it raises too many false alarms. Under *label shift* (the classes'
score distributions stay, only their mix changes) the new mix can be estimated from the new
stacks' scores alone, and the threshold re-chosen for it.

Method: Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a classifier to new a
priori probabilities: a simple procedure", Neural Computation 14(1). Its EM needs posteriors that
are calibrated on the reference, so the out-of-fold scores are first calibrated by isotonic
regression against their labels (Alexandari et al. 2020, "Maximum likelihood with bias-corrected
calibration is hard-to-beat at label shift adaptation", show calibration is what makes EM work).
The interval is a percentile bootstrap that redraws both the reference (per class: its share is
fixed by how the lab sampled it, not random) and the new stacks, refitting the calibration each
time, so it covers calibration error as well as the new stacks' sampling noise.

Why written here: the maintained quantification library (QuaPy) wraps a fitted scikit-learn
classifier rather than scores, has no interval for EM on fixed scores, and pulls in matplotlib,
xlrd, ucimlrepo and the unmaintained ``abstention`` package; the EM itself is a dozen lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression

METHOD = "SLD-EM on isotonic-calibrated scores, percentile bootstrap"
_EPS = 1e-6


@dataclass(frozen=True)
class ShareEstimate:
    """Estimated stall share of the new stacks with its bootstrap interval.

    ``reference_share`` is the labelled reference's stall share (the prior the scores were
    calibrated under); ``n_new`` the number of new stacks the estimate rests on.
    """

    share: float
    low: float
    high: float
    reference_share: float
    n_new: int
    method: str


def estimate_stall_share(reference_scores, reference_labels, new_scores, *, confidence: float = 0.95,
                         n_boot: int = 200, random_state: int = 0) -> ShareEstimate:
    """Estimate the stall share of ``new_scores`` from a labelled reference (label shift, SLD EM).

    Parameters
    ----------
    reference_scores, reference_labels
        Out-of-fold probabilities and 0/1 labels (1 = stalled) of the labelled stacks: scores
        from the same predictor that scored the new stacks, never in-sample ones.
    new_scores
        Probabilities of the unlabelled stacks whose stall share is wanted.
    confidence
        Two-sided coverage of the percentile interval ``[low, high]``.
    n_boot
        Bootstrap redraws (0 gives the point estimate as both ends).
    random_state
        Seed of the bootstrap, so a rerun prints the same interval.

    Returns
    -------
    ShareEstimate

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref_y = np.r_[np.ones(400, int), np.zeros(1600, int)]
    >>> ref_p = np.where(ref_y == 1, rng.beta(5, 2, 2000), rng.beta(2, 5, 2000))
    >>> new_p = np.r_[rng.beta(5, 2, 100), rng.beta(2, 5, 1900)]  # 5 % stalls
    >>> est = estimate_stall_share(ref_p, ref_y, new_p, n_boot=50)
    >>> est.reference_share, est.low < 0.05 < est.high, abs(est.share - 0.05) < 0.02
    (0.2, True, True)
    """
    scores, labels = _reference(reference_scores, reference_labels)
    new = _scores(new_scores, "new_scores")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    share = _share_em(scores, labels, new)
    draws = _bootstrap(scores, labels, new, n_boot, np.random.default_rng(random_state))
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(draws, [alpha, 1 - alpha]) if len(draws) else (share, share))
    return ShareEstimate(share=share, low=float(min(low, share)), high=float(max(high, share)),
                         reference_share=float(labels.mean()), n_new=len(new), method=METHOD)


def threshold_for_share(reference_scores, reference_labels, share: float) -> float:
    """The MCC-optimal threshold (stalled when ``p >= t``) if stalls made up ``share`` of the reference.

    Each reference stall counts ``share / reference_share`` and each flowing stack
    ``(1 - share) / (1 - reference_share)``, so the weighted confusion counts are those expected
    on stacks at the new share (label shift keeps each class's scores). Cuts are tried between
    every two distinct scores and the midpoint returned, as ``training.evaluation`` does, so at
    the reference's own share this is the run's out-of-fold threshold.

    Examples
    --------
    >>> p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    >>> y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    >>> round(threshold_for_share(p, y, 0.5), 2), round(threshold_for_share(p, y, 0.05), 2)
    (0.25, 0.75)
    """
    scores, labels = _reference(reference_scores, reference_labels)
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), not {share}")
    prior = labels.mean()
    weights = np.where(labels == 1, share / prior, (1 - share) / (1 - prior))
    return _best_weighted_mcc_cut(scores, labels, weights)


def _reference(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validated reference arrays; both classes must be present."""
    p = _scores(scores, "reference_scores")
    y = np.asarray(labels)
    if y.shape != p.shape or not np.isin(y, (0, 1)).all():
        raise ValueError("reference_labels must be 0/1, one per reference score")
    y = y.astype(int)
    if y.min() == y.max():
        raise ValueError("the reference needs both stalled and flowing stacks")
    return p, y


def _scores(values, name: str) -> np.ndarray:
    """A non-empty 1-D float array of probabilities in [0, 1]."""
    p = np.asarray(values, dtype=float).ravel()
    if len(p) == 0 or not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError(f"{name} must be a non-empty set of probabilities in [0, 1]")
    return p


def _calibrator(scores: np.ndarray, labels: np.ndarray) -> IsotonicRegression:
    """Isotonic map from score to P(stalled) under the reference's prior."""
    return IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip").fit(scores, labels)


def _share_em(scores: np.ndarray, labels: np.ndarray, new: np.ndarray) -> float:
    """One SLD estimate: calibrate on the reference, then EM on the new stacks' posteriors."""
    posteriors = _calibrator(scores, labels).predict(new)
    return _em_prior(posteriors, float(labels.mean()))


def _em_prior(posteriors: np.ndarray, prior: float, *, tol: float = 1e-8, max_iter: int = 10_000) -> float:
    """Saerens et al.'s EM: re-weight posteriors by new/old prior ratios until the mean is stable.

    Isotonic posteriors take few distinct values, so the EM runs on those with their counts.
    """
    post, counts = np.unique(np.clip(posteriors, _EPS, 1 - _EPS), return_counts=True)
    weights = counts / counts.sum()
    share = prior
    for _ in range(max_iter):
        stalled = post * (share / prior)
        adjusted = stalled / (stalled + (1 - post) * ((1 - share) / (1 - prior)))
        updated = float(adjusted @ weights)
        if abs(updated - share) < tol:
            return updated
        share = updated
    return share


def _bootstrap(scores: np.ndarray, labels: np.ndarray, new: np.ndarray, n_boot: int,
               rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` SLD estimates on redrawn references (per class) and redrawn new stacks."""
    by_class = [np.flatnonzero(labels == k) for k in (0, 1)]
    draws = np.empty(n_boot)
    for b in range(n_boot):
        ref = np.concatenate([rng.choice(idx, size=len(idx)) for idx in by_class])
        draws[b] = _share_em(scores[ref], labels[ref], rng.choice(new, size=len(new)))
    return draws


def _best_weighted_mcc_cut(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Midpoint of the cut between distinct scores that maximises MCC of the weighted counts."""
    order = np.argsort(-scores, kind="stable")
    ps, ys, ws = scores[order], labels[order], weights[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # last index of each distinct score
    tp = np.cumsum(ws * ys)[last]
    fp = np.cumsum(ws * (1 - ys))[last]
    fn, tn = (ws * ys).sum() - tp, (ws * (1 - ys)).sum() - fp
    fn, tn = np.maximum(fn, 0.0), np.maximum(tn, 0.0)  # float sums may undershoot zero
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)
    best = int(np.argmax(mcc))
    below = ps[last[best] + 1] if last[best] + 1 < len(ps) else 0.0
    return float((ps[last[best]] + below) / 2)
