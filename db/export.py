"""Final labels with their provenance, streamed to CSV or Parquet.

The final label of a stack comes from the first source that decides it; a known answer always
beats a model guess. The rule is :class:`core.policy.band.BandRule` (its ``sources``), shared with the
queue and the tuner; this module renders it in pandas and writes the reasons:

1. **human**: the reviewers decide once enough of their answers count towards the stack's k
   (below). With d stalled/flowing answers and b bad-stack answers:

   * **bad stack** (no label): b >= k, b > d and no crowd label is known;
   * **the reviewers' label**: stalled/flowing answers decide (one alone; two or more by their
     skill-weighted Dawid–Skene vote, ``db.human_labels``, with ``human_p_stalled`` =
     P(stalled); without one by majority, where a stalled/flowing tie decides nothing) once
     d + b >= k, or d >= k when a crowd label is known.

   An admin's **second look** at a likely crowd error (``db.second_look``) is a review with k = 1:
   its decisive answer labels the crowd-labelled stack, and the reason says so and names the
   crowd's answer it confirmed or corrected.

   So bad-stack answers count towards k as the queue counts them (``db.queue_levels``), but they
   never vote for a label, a tie between them and the decisive answers goes to the decisive
   answers (a stall is never turned into a bad stack by a tie), and they never displace a known
   crowd label: that label stays until k stalled/flowing answers exist.
2. **crowd**: the crowd's label from ``train_labels.csv`` (a known answer);
3. **model**: the active policy's run scored it ``p <= t_low`` (flowing) or ``p >= t_high``
   (stalled); a NULL threshold decides nothing on its side, and without an active policy the
   model decides nothing. Under a policy saved with the project gate a side decides only the
   stacks of projects it is open for (``db.project_status``); the others' ``reason`` says
   ``project not yet validated`` or ``project drifted``, with what the model would have decided;
4. **none**.

A stack's k is the rule in force when it was reviewed: the ``review.reviews_required`` of its
most recent review (NULL, from before k was recorded, reads as 1); a stack without reviews takes
the active policy's k (1 without one). Saving a policy with another k therefore relabels no stack
reviewed under the old one; the column ``reviews_required`` shows each stack's own k.

Answers to known-answer stacks (``review.known_answer``: served to measure the reviewer) never
label a stack, nor set its k; ``n_known_answer_reviews`` counts them. Every row says which source
decided and why (``reason``), with the model's probability and spread, the thresholds, the review
counts, the reviewers' agreement and who they were. The numbers in :data:`ROUNDED_COLUMNS` are
written rounded to :data:`DECIMALS` decimal places (the model's float32 scores would otherwise
print with 16 digits beside float64 ones with few); labels are decided on the unrounded values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.policy.band import BandRule
from db.human_labels import skill_weighted_labels
from db.models import CrowdAnswer, ModelRun, Prediction, Review, User, Stack
from db.project_status import PROJECT
from db.queue import QueueRule, queue_rule

CHUNK_ROWS = 100_000
EXPORT_COLUMNS = ["filename", "split", "final_label", "source", "reason", "probability", "spread", "role", "fold",
                 "model_run", "t_low", "t_high", "reviews_required", "n_reviews", "n_stalled", "n_flowing",
                 "n_unsure", "n_bad_stack", "n_known_answer_reviews", "human_p_stalled", "agreement", "reviewers",
                 "crowd_score", "crowd_label", "ingest_status"]
FORMATS = ("labels", "submission")
ROUNDED_COLUMNS = ("probability", "spread", "crowd_score", "human_p_stalled", "agreement", "t_low", "t_high")
DECIMALS = 6


def _count(answer: str):  # noqa: ANN202 - a SQL expression
    return func.sum(case((Review.answer == answer, 1), else_=0)).label(f"n_{answer}")


def _recorded_k():  # noqa: ANN202 - a scalar subquery
    """The k recorded on the stack's most recent (created or edited) review; NULL k reads as 1, no review as NULL."""
    return (select(func.coalesce(Review.reviews_required, 1))
            .where(Review.vessel_id == Stack.id, Review.known_answer.is_(False))
            .order_by(func.coalesce(Review.updated_at, Review.created_at).desc(), Review.id.desc())
            .limit(1).scalar_subquery())


def _export_query(rule: QueueRule | None):  # noqa: ANN202 - a Select
    reviews = (select(Review.vessel_id, func.count().label("n_reviews"), _count("stalled"), _count("flowing"),
                      _count("unsure"), _count("bad_stack"),
                      func.sum(case((Review.second_look.is_(True), 1), else_=0)).label("n_second_look"),
                      func.aggregate_strings(User.name, ",").label("reviewers"))
               .join(User, User.id == Review.user_id).where(Review.known_answer.is_(False))
               .group_by(Review.vessel_id).subquery())
    calibration = (select(Review.vessel_id, func.count().label("n_known_answer_reviews"))
                   .where(Review.known_answer.is_(True)).group_by(Review.vessel_id).subquery())
    run_id = rule.model_run_id if rule else None
    return (select(Stack.id.label("vessel_id"), Stack.filename, PROJECT.label("project"), Stack.split,
                   Stack.status.label("ingest_status"),
                   Prediction.probability, Prediction.spread, Prediction.role, Prediction.fold,
                   CrowdAnswer.crowd_score, CrowdAnswer.label.label("crowd_label"), reviews.c.n_reviews,
                   reviews.c.n_stalled, reviews.c.n_flowing, reviews.c.n_unsure, reviews.c.n_bad_stack,
                   reviews.c.n_second_look, reviews.c.reviewers, calibration.c.n_known_answer_reviews, _recorded_k().label("recorded_k"))
            .outerjoin(Prediction, (Prediction.vessel_id == Stack.id) & (Prediction.model_run_id == run_id))
            .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id)
            .outerjoin(reviews, reviews.c.vessel_id == Stack.id)
            .outerjoin(calibration, calibration.c.vessel_id == Stack.id)
            .order_by(Stack.filename))


def _plural(count: pd.Series, noun: str) -> pd.Series:
    """``"1 unsure review"``, ``"2 unsure reviews"`` per row."""
    return count.astype(str) + " " + noun + np.where(count == 1, "", "s")


def _noting(text: pd.Series, count: pd.Series, noun: str, separator: str) -> pd.Series:
    """``text`` followed by ``count`` ``noun``(s) where the count is not zero (alone where the text is empty)."""
    named = _plural(count, noun)
    return text.where(count == 0, named.where(text == "", text + separator + named))


def _votes(out: pd.DataFrame) -> pd.Series:
    """``"2 stalled, 1 flowing"`` per row."""
    return out["n_stalled"].astype(str) + " stalled, " + out["n_flowing"].astype(str) + " flowing"


def _review_state(out: pd.DataFrame, counted: pd.Series, k: pd.Series) -> pd.Series:
    """Why the reviews decided nothing: none, too few towards k, a tie; unsure and bad-stack answers named."""
    state = pd.Series(np.where(counted == 0, "",
                               np.where(counted < k, counted.astype(str) + " of " + k.astype(str) + " reviews",
                                        "reviewers tie (" + _votes(out) + ")")), index=out.index)
    state = _noting(state, out["n_unsure"], "unsure review", ", ")
    state = _noting(state, out["n_bad_stack"], "bad-stack report", ", ")
    return state.where(state != "", "no reviews")


def _replaced_crowd(rows: pd.DataFrame, label: pd.Series) -> pd.Series:
    """``"; crowd said stalled (45 % voted stalled), corrected"`` for rows a second look answered, ``""``
    where no crowd label was known: the provenance of a label that replaced the crowd's (``db.second_look``)."""
    said = np.where(rows["crowd_label"] == 1, "stalled", "flowing")
    share = rows["crowd_score"].map(lambda value: f" ({value:.0%} voted stalled)", na_action="ignore")
    verdict = np.where(rows["crowd_label"] == label, "confirmed", "corrected")
    text = "; crowd said " + pd.Series(said, index=rows.index) + share.astype(object).fillna("") + ", " + verdict
    return text.where(rows["crowd_label"].notna(), "")


def label_chunk(chunk: pd.DataFrame, rule: QueueRule | None, run_name: str | None = None,
                weighted: pd.Series | None = None) -> pd.DataFrame:
    """Decide the final label, source and reason for rows of the export query (pure pandas).

    ``weighted`` is P(stalled) by vessel id for stacks with several reviews
    (:func:`db.human_labels.skill_weighted_labels`); without it those stacks take the majority.
    A row's k is its ``recorded_k`` (the export query's), else ``rule``'s.
    """
    out = chunk.astype({"probability": "float64", "spread": "float64", "crowd_score": "float64",
                        "role": "string", "fold": "Int64"})
    out["model_run"] = pd.Series(run_name, index=out.index, dtype="string").where(out["probability"].notna())
    for column in ("n_reviews", "n_stalled", "n_flowing", "n_unsure", "n_bad_stack", "n_second_look",
                   "n_known_answer_reviews"):
        out[column] = out[column].fillna(0).astype("int64")
    policy = rule is not None and rule.from_policy
    band = rule.band if rule is not None else BandRule()
    whole = band  # the band before the project gate: what the model would decide
    if rule is not None and rule.gates is not None:
        low_open, high_open = rule.gates.opens(out["project"])
        band = replace(band, low_open=low_open, high_open=high_open)
    t_low = band.t_low if band.t_low is not None else np.nan
    t_high = band.t_high if band.t_high is not None else np.nan
    k = pd.to_numeric(out["recorded_k"]).fillna(band.reviews_required).astype("int64")
    out["t_low"] = t_low
    out["t_high"] = t_high
    out["reviews_required"] = k
    p = out["probability"].astype("float64")
    decisive = out["n_stalled"] + out["n_flowing"]
    majority = pd.Series(np.where(out["n_stalled"] == out["n_flowing"], np.nan, out["n_stalled"] > out["n_flowing"]),
                         index=out.index, dtype="float64")
    weighted = weighted if weighted is not None else pd.Series(dtype="float64")
    out["human_p_stalled"] = weighted.reindex(out["vessel_id"]).to_numpy()
    skill_weighted = out["human_p_stalled"].notna()
    vote = majority.where(~skill_weighted, (out["human_p_stalled"] >= 0.5).astype("float64"))
    human, bad, crowd, model, counted = band.sources(p, crowd_known=out["crowd_label"].notna(), decisive=decisive,
                                                     bad_stack=out["n_bad_stack"], voted=vote.notna(), k=k)
    low, high = model & band.flowing(p), model & band.stalled(p)
    human_label = vote.fillna(0).astype("int64")
    out["source"] = np.select([human | bad, crowd, model], ["human", "crowd", "model"], "none")
    label = np.select([human, crowd, low, high], [human_label, out["crowd_label"].fillna(-1), 0, 1], -1)
    out["final_label"] = pd.array(np.where(label >= 0, label, 0), dtype="Int64")
    out.loc[label < 0, "final_label"] = pd.NA
    out["agreement"] = np.where(decisive > 0, np.maximum(out["n_stalled"], out["n_flowing"]) / decisive.clip(lower=1),
                                np.nan)
    out["reviewers"] = out["reviewers"].map(lambda names: ",".join(sorted(names.split(","))),
                                            na_action="ignore").fillna("")
    votes = _votes(out)
    p_text = p.map(lambda value: f"p={value:.3f}", na_action="ignore").astype(object).fillna("")
    if policy:
        why_not_model = np.where(p.isna(), "no prediction", "model uncertain (" + p_text + ")")
    else:
        why_not_model = np.where(p.isna(), "no prediction", "no active policy")
    review_state = _noting(_review_state(out, counted, k), out["n_known_answer_reviews"], "known-answer review", "; ")
    low_text, high_text = p_text + f" <= t_low={t_low:.3f}", p_text + f" >= t_high={t_high:.3f}"
    gated = whole.automatic(p) & ~band.automatic(p)
    gate_reason = rule.gates.reason(out["project"]) if gated.any() else ""
    model_view = pd.Series(np.select([band.flowing(p), band.stalled(p), gated],
                                     [low_text, high_text,
                                      gate_reason + " (" + np.where(whole.flowing(p), low_text, high_text) + ")"],
                                     why_not_model), index=out.index)
    p_human = out["human_p_stalled"].map(lambda value: f"{value:.3f}", na_action="ignore").astype(object).fillna("")
    human_reason = pd.Series(np.select(
        [skill_weighted, decisive == 1],
        ["skill-weighted vote of " + decisive.astype(str) + " reviews (" + votes + "): P(stalled)=" + p_human,
         "1 review (" + np.where(out["n_stalled"] == 1, "stalled", "flowing") + ")"],
        "majority of " + decisive.astype(str) + " reviews (" + votes + ")"), index=out.index)
    looked = out["n_second_look"] > 0  # rare: the provenance text is built for these rows only
    if looked.any():
        human_reason[looked] = ("second look: " + human_reason[looked]
                                + _replaced_crowd(out[looked], human_label[looked]))
    reasons = [
        (human, _noting(human_reason, out["n_bad_stack"], "bad-stack report", "; ")),
        (bad, _plural(out["n_bad_stack"], "bad-stack report") + " (" + votes + ")"),
        (crowd, "crowd label; " + model_view + "; " + review_state),
        (model, model_view),
    ]
    undecided = model_view + "; " + review_state
    out["reason"] = np.select([mask for mask, _ in reasons], [text for _, text in reasons], undecided)
    out["crowd_label"] = out["crowd_label"].astype("Int64")
    for column in ROUNDED_COLUMNS:
        out[column] = out[column].astype("float64").round(DECIMALS)
    return out.loc[:, EXPORT_COLUMNS]


def final_labels(session: Session, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Stream the final labels of every stack in filename order, ``chunk_rows`` at a time."""
    rule = queue_rule(session)
    run_name = session.get(ModelRun, rule.model_run_id).name if rule else None
    weighted = skill_weighted_labels(session)
    result = session.execute(_export_query(rule).execution_options(yield_per=chunk_rows))
    columns = list(result.keys())
    for rows in result.partitions():
        chunk = pd.DataFrame(dict(zip(columns, (list(column) for column in zip(*rows)))), columns=columns)
        yield label_chunk(chunk, rule, run_name, weighted)


@dataclass
class ExportSummary:
    """What an export wrote: rows per source, human labels from a skill-weighted vote, and stacks the
    submission had to leave out."""

    rows: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    skill_weighted: int = 0
    left_out: list[str] = field(default_factory=list)


def _submission(chunk: pd.DataFrame, threshold: float, summary: ExportSummary) -> pd.DataFrame:
    """Competition format for test stacks: the final label, else the model's own decision threshold."""
    test = chunk[chunk["split"] == "test"]
    stalled = test["final_label"].copy()
    fallback = stalled.isna() & test["probability"].notna()
    stalled[fallback] = (test.loc[fallback, "probability"] >= threshold).astype("int64")
    summary.left_out += test.loc[stalled.isna(), "filename"].tolist()
    return pd.DataFrame({"filename": test["filename"], "stalled": stalled}).dropna(subset=["stalled"])


def write_export(session: Session, *, path: Path, fmt: str = "labels") -> ExportSummary:
    """Write the final labels (``fmt="labels"``) or a competition submission (``"submission"``) to ``path``.

    The file type follows the suffix: ``.csv`` or ``.parquet``. The submission holds the test
    stacks as ``filename,stalled``: the final label where there is one, else the model's
    probability against its run's decision threshold (0.5 if the run has none); stacks with
    neither are left out and listed in the summary.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: export file must end in .csv or .parquet")
    rule = queue_rule(session)
    run = session.get(ModelRun, rule.model_run_id) if rule else None
    threshold = run.threshold if run is not None and run.threshold is not None else 0.5
    summary = ExportSummary()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None
    schema: pa.Schema | None = None
    number = -1
    try:
        for number, chunk in enumerate(final_labels(session)):
            for source, count in chunk["source"].value_counts().items():
                summary.by_source[source] = summary.by_source.get(source, 0) + int(count)
            summary.skill_weighted += int(((chunk["source"] == "human") & chunk["human_p_stalled"].notna()).sum())
            table = _submission(chunk, threshold, summary) if fmt == "submission" else chunk
            summary.rows += len(table)
            arrow = pa.Table.from_pandas(table, preserve_index=False)
            schema = schema or arrow.schema
            writer = writer or _writer(path, schema)
            writer.write_table(arrow.cast(schema))
        if number < 0:
            _write_empty(path, fmt)
    finally:
        if writer is not None:
            writer.close()
    return summary


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter | pa_csv.CSVWriter:
    """A streaming Arrow writer for ``path``'s type (Arrow's CSV writer is several times faster than pandas')."""
    if path.suffix.lower() == ".parquet":
        return pq.ParquetWriter(path, schema)
    return pa_csv.CSVWriter(path, schema, write_options=pa_csv.WriteOptions(quoting_style="needed"))


def _write_empty(path: Path, fmt: str) -> None:
    columns = ["filename", "stalled"] if fmt == "submission" else EXPORT_COLUMNS
    empty = pd.DataFrame(columns=columns)
    if path.suffix.lower() == ".csv":
        empty.to_csv(path, index=False)
    else:
        empty.to_parquet(path, index=False)
