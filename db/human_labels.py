"""Skill-weighted human labels: stacks with several reviews get the Dawid–Skene label, not a plain majority.

A careless reviewer's vote should count less than a careful one's. ``core.labels.skill.DawidSkene``
learns each reviewer's sensitivity and specificity from every stalled/flowing answer, with the
answers to known-answer stacks clamped to the known answer (so they pin the skills down), and
gives each stack with two or more regular answers P(stalled). The export turns that into the
human label (stalled when P >= 0.5) and shows P with the reviews it rests on.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labels.skill import DawidSkene
from db.models import CrowdAnswer, Review, User, Stack

DECISIVE = ("stalled", "flowing")


def decisive_votes(session: Session) -> pd.DataFrame:
    """Every stalled/flowing answer, oldest first: stack (vessel id), filename, reviewer, answer
    (1 stalled), known_answer (the review's flag) and truth (the crowd's label, or NA)."""
    query = (select(Review.vessel_id.label("stack"), Stack.filename, User.name.label("reviewer"), Review.answer,
                    Review.known_answer, CrowdAnswer.label.label("truth"))
             .join(User, User.id == Review.user_id).join(Stack, Stack.id == Review.vessel_id)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Review.vessel_id)
             .where(Review.answer.in_(DECISIVE)).order_by(Review.id))
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["answer"] = (frame["answer"] == "stalled").astype("int64")
    return frame


def skill_weighted_labels(session: Session) -> pd.Series:
    """P(stalled) by vessel id for every stack with at least two regular stalled/flowing answers
    (empty when there is none): the Dawid–Skene posterior under skills learned from all answers."""
    votes = decisive_votes(session)
    regular = votes[~votes["known_answer"].astype(bool)]
    counts = regular.groupby("stack").size()
    several = counts.index[counts >= 2]
    if not len(several):
        return pd.Series(dtype="float64", name="p_stalled")
    known = votes[votes["known_answer"].astype(bool) & votes["truth"].notna()]
    truth = known.groupby("stack")["truth"].first().astype("int64")
    model = DawidSkene().fit(votes[["stack", "reviewer", "answer"]], truth)
    return model.proba_.loc[several].rename("p_stalled")
