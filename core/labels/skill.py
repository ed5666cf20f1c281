"""How good the humans are: reviewer skill from known-answer stacks, skill-weighted labels, and
the error rates of the final human label that the triage guarantee counts.

Stall Catchers mixes "calibration" movies whose answer is known into every volunteer's queue; a
reviewer's answers on them measure that reviewer. Here:

* :class:`ReviewerSkill` turns known-answer reviews into per-reviewer Beta posteriors of
  sensitivity and specificity (a table for the dashboard).
* :class:`DawidSkene` combines k > 1 reviews of a stack into P(stalled) weighted by skill
  (Dawid & Skene 1979, two-coin model), semi-supervised: stacks with a known answer keep it.
* :class:`HumanErrorRates` is what ``core.policy.triage`` needs: Beta beliefs about the miss and
  false-alarm rates of the *final* human label of a routed stack, with the basis they rest on.

The prior (stated once, here): a reviewer's sensitivity ~ Beta(8.5, 1.5) and specificity ~
Beta(9.5, 0.5), i.e. "typically 0.85 and 0.95, worth 10 known answers each". That is centred on
trained volunteers rather than on experts, and weak, so a reviewer's own answers dominate after a
few dozen known answers. The final-label error prior is deliberately pessimistic (miss rate ~
Beta(1, 9), mean 0.10; false-alarm rate ~ Beta(1, 19), mean 0.05; issue 13 measured the crowd's
specificity on routed stacks at about 0.977): without known answers the tool promises only what
such humans would deliver. Known-answer stacks must look like the routed ones (drawn from the
same score band): humans err more on hard stacks, and easy known answers would flatter them.

A library was considered: crowd-kit 1.4.2 has a Dawid–Skene with known labels, but it requires
transformers, nltk and pyarrow; the EM here is a few dozen lines on numpy.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta

from core.metrics import binary_array

log = logging.getLogger(__name__)

_UNSURE = "; drop unsure answers first"

PRIOR_SENSITIVITY = (8.5, 1.5)
"""Beta prior of one reviewer's sensitivity: mean 0.85, worth 10 known stalled stacks."""
PRIOR_SPECIFICITY = (9.5, 0.5)
"""Beta prior of one reviewer's specificity: mean 0.95, worth 10 known flowing stacks."""


@dataclass(frozen=True)
class ErrorRate:
    """A Beta(a, b) belief about an error rate: ``a`` pseudo-errors and ``b`` pseudo-correct
    answers (prior plus observed). ``a == 0`` stands for a rate known to be zero (used only to
    compare with the old humans-are-perfect assumption)."""

    a: float
    b: float

    def __post_init__(self) -> None:
        if self.a < 0 or self.b < 0 or (self.a > 0 and self.b == 0):
            raise ValueError(f"ErrorRate needs a >= 0 and b > 0 (a = 0: known zero), got a={self.a}, b={self.b}")

    @property
    def certain_zero(self) -> bool:
        """True when the rate is zero with certainty."""
        return self.a == 0

    @property
    def mean(self) -> float:
        """Posterior mean of the rate."""
        return 0.0 if self.certain_zero else self.a / (self.a + self.b)

    def upper(self, confidence: float) -> float:
        """One-sided upper credible bound: the rate is below it with probability ``confidence``."""
        return 0.0 if self.certain_zero else float(beta.ppf(confidence, self.a, self.b))

    def observe(self, errors: int, trials: int) -> "ErrorRate":
        """The posterior after ``errors`` errors in ``trials`` more answers."""
        return ErrorRate(self.a + errors, self.b + trials - errors)


PRIOR_MISS = ErrorRate(1.0, 9.0)
"""Prior of the final human label's miss rate on routed stacks: mean 0.10, worth 10 stalls."""
PRIOR_FALSE_ALARM = ErrorRate(1.0, 19.0)
"""Prior of the final human label's false-alarm rate on routed stacks: mean 0.05, worth 20 stacks."""


@dataclass(frozen=True)
class HumanErrorRates:
    """Beliefs about how often the final human label of a routed stack is wrong.

    ``miss``: P(humans say flowing | stalled); ``false_alarm``: P(humans say stalled | flowing);
    ``basis`` says what they rest on, for reports ("prior (no known-answer reviews yet)",
    "312 known-answer reviews by 4 reviewers").
    """

    miss: ErrorRate
    false_alarm: ErrorRate
    basis: str

    @classmethod
    def prior(cls) -> "HumanErrorRates":
        """The stated prior (:data:`PRIOR_MISS`, :data:`PRIOR_FALSE_ALARM`): the default."""
        return cls(PRIOR_MISS, PRIOR_FALSE_ALARM, "prior (no known-answer reviews yet): miss rate ~ Beta(1, 9), "
                                                  "false-alarm rate ~ Beta(1, 19)")

    @classmethod
    def perfect(cls) -> "HumanErrorRates":
        """Humans never wrong, with certainty: the old assumption, for comparisons only."""
        return cls(ErrorRate(0.0, 1.0), ErrorRate(0.0, 1.0), "humans assumed perfect")

    @classmethod
    def from_known_answers(cls, answer: np.ndarray | list, truth: np.ndarray | list, *,
                           reviewers: np.ndarray | list | None = None,
                           prior: "HumanErrorRates | None" = None) -> "HumanErrorRates":
        """Update a prior with human labels of known-answer stacks.

        Parameters
        ----------
        answer
            The human label of each known-answer stack, produced exactly as a routed stack's
            final label is (one review when k = 1; for k > 1 the aggregated label computed
            *without* the known answer, e.g. :meth:`DawidSkene.predict`). 0/1.
        truth
            The known answers, 0/1.
        reviewers
            Optional reviewer per answer (only counted for the basis text).
        prior
            The prior to update (default :meth:`prior`).
        """
        answer, truth = binary_array(answer, "answer", hint=_UNSURE), binary_array(truth, "truth")
        if answer.shape != truth.shape:
            raise ValueError(f"{len(answer)} answers but {len(truth)} known answers")
        prior = prior if prior is not None else cls.prior()
        stalled, flowing = truth == 1, truth == 0
        miss = prior.miss.observe(int((answer[stalled] == 0).sum()), int(stalled.sum()))
        false_alarm = prior.false_alarm.observe(int((answer[flowing] == 1).sum()), int(flowing.sum()))
        who = f" by {len(pd.unique(np.asarray(reviewers)))} reviewers" if reviewers is not None else ""
        basis = (f"{len(answer)} known answers{who} ({int(stalled.sum())} stalled, {int(flowing.sum())} flowing) "
                 f"updating the prior")
        return cls(miss, false_alarm, basis)

    def as_dict(self) -> dict[str, object]:
        """Plain values for reports and storage."""
        return {"basis": self.basis, **{f"{name}_{k}": v for name in ("miss", "false_alarm")
                                        for k, v in asdict(getattr(self, name)).items()}}


def _columns(reviews: pd.DataFrame, needed: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in needed if c not in reviews.columns]
    if missing:
        raise ValueError(f"reviews: missing column(s) {', '.join(missing)}; expected {', '.join(needed)}")
    out = reviews[list(needed)].reset_index(drop=True)
    for column in needed[-2:] if "truth" in needed else needed[-1:]:
        out[column] = binary_array(out[column].to_numpy(), column, hint=_UNSURE)
    return out


def _check_prior(name: str, prior: tuple[float, float]) -> None:
    if len(prior) != 2 or min(prior) <= 0:
        raise ValueError(f"{name}: expected two positive Beta parameters (a, b), got {prior}")


class ReviewerSkill:
    """Per-reviewer sensitivity and specificity from known-answer reviews (Beta posteriors).

    Parameters
    ----------
    prior_sensitivity, prior_specificity
        Beta(a, b) priors (default :data:`PRIOR_SENSITIVITY`, :data:`PRIOR_SPECIFICITY`).
    confidence
        Coverage of the equal-tailed intervals in :meth:`table`.

    Attributes
    ----------
    skill_ : pandas.DataFrame
        Indexed by reviewer: ``n_known_stalled``, ``n_known_flowing`` and the posterior Beta
        parameters ``sensitivity_a``, ``sensitivity_b``, ``specificity_a``, ``specificity_b``.

    Examples
    --------
    >>> reviews = pd.DataFrame({"reviewer": ["ann"] * 4, "answer": [1, 1, 0, 0], "truth": [1, 0, 0, 0]})
    >>> row = ReviewerSkill().fit(reviews).table().iloc[0]
    >>> int(row.n_known_stalled), int(row.n_known_flowing), round(float(row.sensitivity_mean), 3)
    (1, 3, 0.864)
    """

    def __init__(self, *, prior_sensitivity: tuple[float, float] = PRIOR_SENSITIVITY,
                 prior_specificity: tuple[float, float] = PRIOR_SPECIFICITY, confidence: float = 0.95) -> None:
        self.prior_sensitivity = prior_sensitivity
        self.prior_specificity = prior_specificity
        self.confidence = confidence

    def fit(self, reviews: pd.DataFrame) -> "ReviewerSkill":
        """Learn ``skill_`` from long-format reviews with columns ``reviewer``, ``answer`` (0/1)
        and ``truth`` (the known answer, 0/1); returns ``self``."""
        _check_prior("prior_sensitivity", self.prior_sensitivity)
        _check_prior("prior_specificity", self.prior_specificity)
        reviews = _columns(reviews, ("reviewer", "answer", "truth"))
        stalled = reviews["truth"] == 1
        counts = pd.DataFrame({
            "n_known_stalled": stalled, "found": stalled & (reviews["answer"] == 1),
            "n_known_flowing": ~stalled, "kept": ~stalled & (reviews["answer"] == 0),
            "reviewer": reviews["reviewer"]}).groupby("reviewer", sort=True).sum()
        (sa, sb), (pa, pb) = self.prior_sensitivity, self.prior_specificity
        self.skill_ = pd.DataFrame({
            "n_known_stalled": counts["n_known_stalled"].astype(int),
            "n_known_flowing": counts["n_known_flowing"].astype(int),
            "sensitivity_a": sa + counts["found"], "sensitivity_b": sb + counts["n_known_stalled"] - counts["found"],
            "specificity_a": pa + counts["kept"], "specificity_b": pb + counts["n_known_flowing"] - counts["kept"]})
        log.info("reviewer skill from %d known-answer reviews by %d reviewers", len(reviews), len(self.skill_))
        return self

    def table(self) -> pd.DataFrame:
        """One row per reviewer: known answers and the mean and interval of each rate."""
        if not hasattr(self, "skill_"):
            raise RuntimeError("ReviewerSkill is not fitted yet: call fit() first")
        tail = (1 - self.confidence) / 2
        out = self.skill_[["n_known_stalled", "n_known_flowing"]].copy()
        for rate in ("sensitivity", "specificity"):
            a, b = self.skill_[f"{rate}_a"], self.skill_[f"{rate}_b"]
            out[f"{rate}_mean"] = a / (a + b)
            out[f"{rate}_low"] = beta.ppf(tail, a, b)
            out[f"{rate}_high"] = beta.ppf(1 - tail, a, b)
        return out.reset_index()


class DawidSkene:
    """Skill-weighted labels from several reviews per stack (two-coin Dawid–Skene EM).

    Each reviewer has a sensitivity and a specificity; a stack's log-odds of being stalled is the
    prior log-odds plus, per review, ``log(sens / (1 - spec))`` for "stalled" or
    ``log((1 - sens) / spec)`` for "flowing". EM alternates these posteriors with skill updates
    (posterior means under the Beta priors). Stacks with a known answer are clamped to it, so
    known-answer reviews pin the skills down (semi-supervised).

    Parameters
    ----------
    prior_sensitivity, prior_specificity
        Beta priors of every reviewer's skill (the same as :class:`ReviewerSkill`'s).
    threshold
        ``labels_`` / :meth:`predict` say stalled when P(stalled) >= threshold.
    max_iter, tol
        EM stops after ``max_iter`` rounds or when no P(stalled) moves by more than ``tol``.

    Attributes
    ----------
    skill_ : pandas.DataFrame
        Indexed by reviewer: ``sensitivity``, ``specificity``, ``n_reviews``.
    prevalence_ : float
        Estimated share of stalled stacks.
    proba_ : pandas.Series
        P(stalled) per stack (known answers: 0 or 1).
    labels_ : pandas.Series
        0/1 per stack.
    n_iter_ : int
        EM rounds run.
    """

    def __init__(self, *, prior_sensitivity: tuple[float, float] = PRIOR_SENSITIVITY,
                 prior_specificity: tuple[float, float] = PRIOR_SPECIFICITY, threshold: float = 0.5,
                 max_iter: int = 200, tol: float = 1e-6) -> None:
        self.prior_sensitivity = prior_sensitivity
        self.prior_specificity = prior_specificity
        self.threshold = threshold
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, reviews: pd.DataFrame, truth: pd.Series | None = None) -> "DawidSkene":
        """Learn skills and labels from long-format ``reviews`` (columns ``stack``, ``reviewer``,
        ``answer`` 0/1) and optional known answers ``truth`` (a Series: stack → 0/1)."""
        _check_prior("prior_sensitivity", self.prior_sensitivity)
        _check_prior("prior_specificity", self.prior_specificity)
        reviews = _columns(reviews, ("stack", "reviewer", "answer"))
        stack_codes, stacks = pd.factorize(reviews["stack"], sort=True)
        reviewer_codes, reviewers = pd.factorize(reviews["reviewer"], sort=True)
        answer = reviews["answer"].to_numpy(float)
        known = np.full(len(stacks), np.nan)
        if truth is not None:
            truth = truth[truth.index.isin(stacks)]
            known[stacks.get_indexer(truth.index)] = binary_array(truth.to_numpy(), "truth")
        clamped = ~np.isnan(known)
        (sa, sb), (pa, pb) = self.prior_sensitivity, self.prior_specificity
        sens = np.full(len(reviewers), sa / (sa + sb))
        spec = np.full(len(reviewers), pa / (pa + pb))
        prevalence = 0.5
        proba = np.full(len(stacks), 0.5)
        for self.n_iter_ in range(1, self.max_iter + 1):
            new = self._posterior(stack_codes, reviewer_codes, answer, sens, spec, prevalence, len(stacks))
            new = np.where(clamped, known, new)
            moved = float(np.abs(new - proba).max()) if len(new) else 0.0
            proba = new
            q = proba[stack_codes]
            sens = (sa + np.bincount(reviewer_codes, q * answer, len(reviewers))) / (
                sa + sb + np.bincount(reviewer_codes, q, len(reviewers)))
            spec = (pa + np.bincount(reviewer_codes, (1 - q) * (1 - answer), len(reviewers))) / (
                pa + pb + np.bincount(reviewer_codes, 1 - q, len(reviewers)))
            prevalence = (1 + proba.sum()) / (2 + len(proba))
            if moved < self.tol:
                break
        self.skill_ = pd.DataFrame({"sensitivity": sens, "specificity": spec,
                                    "n_reviews": np.bincount(reviewer_codes, minlength=len(reviewers))},
                                   index=pd.Index(reviewers, name="reviewer"))
        self.prevalence_ = float(prevalence)
        self.proba_ = pd.Series(proba, index=pd.Index(stacks, name="stack"), name="p_stalled")
        self.labels_ = (self.proba_ >= self.threshold).astype(np.int8).rename("label")
        log.info("Dawid-Skene: %d stacks, %d reviewers, %d known answers, %d EM rounds",
                 len(stacks), len(reviewers), int(clamped.sum()), self.n_iter_)
        return self

    @staticmethod
    def _posterior(stack_codes: np.ndarray, reviewer_codes: np.ndarray, answer: np.ndarray, sens: np.ndarray,
                   spec: np.ndarray, prevalence: float, n_stacks: int) -> np.ndarray:
        s, p = sens[reviewer_codes], spec[reviewer_codes]
        evidence = np.where(answer == 1, np.log(s) - np.log1p(-p), np.log1p(-s) - np.log(p))
        logit = np.log(prevalence) - np.log1p(-prevalence) + np.bincount(stack_codes, evidence, n_stacks)
        return 1 / (1 + np.exp(-logit))

    def predict_proba(self, reviews: pd.DataFrame) -> pd.Series:
        """P(stalled) per stack from its reviews alone under the fitted skills (known answers are
        not used: this is what the humans say). Unknown reviewers count with the prior means."""
        if not hasattr(self, "skill_"):
            raise RuntimeError("DawidSkene is not fitted yet: call fit() first")
        reviews = _columns(reviews, ("stack", "reviewer", "answer"))
        stack_codes, stacks = pd.factorize(reviews["stack"], sort=True)
        (sa, sb), (pa, pb) = self.prior_sensitivity, self.prior_specificity
        skill = self.skill_.reindex(pd.unique(reviews["reviewer"]))
        skill = skill.fillna({"sensitivity": sa / (sa + sb), "specificity": pa / (pa + pb)})
        codes = skill.index.get_indexer(reviews["reviewer"])
        proba = self._posterior(stack_codes, codes, reviews["answer"].to_numpy(float),
                                skill["sensitivity"].to_numpy(), skill["specificity"].to_numpy(),
                                self.prevalence_, len(stacks))
        return pd.Series(proba, index=pd.Index(stacks, name="stack"), name="p_stalled")

    def predict(self, reviews: pd.DataFrame) -> pd.Series:
        """0/1 label per stack from its reviews alone (see :meth:`predict_proba`)."""
        return (self.predict_proba(reviews) >= self.threshold).astype(np.int8).rename("label")


def out_of_fold_labels(reviews: pd.DataFrame, truth: pd.Series, *, folds: int = 5, random_state: int = 0,
                       **params: object) -> pd.Series:
    """Skill-weighted labels of known-answer stacks, each from a :class:`DawidSkene` fitted
    without that stack's known answer (cross-fitting over ``folds`` groups of stacks).

    A label rule scored on the very answers it learnt the skills from looks better than it is on
    new stacks; labelling each known-answer stack by a rule that never saw its truth gives the
    honest (slightly pessimistic) error rates :meth:`HumanErrorRates.from_known_answers` needs.
    ``reviews`` holds every review to fit on (columns ``stack``, ``reviewer``, ``answer``; other
    stacks' reviews may ride along unlabelled), ``truth`` the known answers (stack → 0/1); ``params``
    go to :class:`DawidSkene`. Returns 0/1 per known-answer stack (that has reviews).
    """
    stacks = truth.index[truth.index.isin(reviews["stack"])]
    if len(stacks) < folds:
        raise ValueError(f"{len(stacks)} known-answer stacks with reviews: fewer than folds={folds}")
    fold = np.random.default_rng(random_state).permutation(len(stacks)) % folds
    labels = []
    for k in range(folds):
        held_out = stacks[fold == k]
        model = DawidSkene(**params).fit(reviews, truth.drop(held_out))
        labels.append(model.labels_[held_out])
    return pd.concat(labels).sort_index()
