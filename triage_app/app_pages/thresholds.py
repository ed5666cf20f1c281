"""Thresholds (admin): start from the saved policy, compare it with a proposed one, save.

The page opens on the active policy (its run, promise, targets and thresholds; the saved policy's
targets even when another run is chosen); the tuner's suggestion is one click away, never applied
by itself. A threshold may be off (that side decides nothing). "Saved policy" and "proposed" are
shown side by side on the reference set (quality) and on the review queue (workload), with the
promise in force in one sentence, the frontier (what each automatic share can promise), what a
larger reference would buy, the new stacks' stall share and each project's standing under the
proposal (validated, gated, drifted: the validation gate, saved with the policy). Saving is possible only when the
proposal differs from what is saved, and a proposal that misses its targets needs a confirmation
that names what it misses.
"""

from __future__ import annotations

import streamlit as st

from core.policy.promise import DEFAULT_PROMISE, PROMISES, promise_sentence
from core.policy.triage import PolicyReport, validate_thresholds
from triage_app import charts, projects, services, tuning, ui

DEFAULT_TARGETS = (0.99, 0.95, 0.95)


@st.cache_data(ttl=60, show_spinner="Tuning...")
def _page_data(db_url: str, model_run_id: int, sensitivity: float, specificity: float, confidence: float,
               reviews_required: int, promise: str, _backend: object) -> tuning.ThresholdsData:
    return services.thresholds_page_data(_backend, model_run_id=model_run_id, sensitivity=sensitivity,
                                         specificity=specificity, confidence=confidence,
                                         reviews_required=reviews_required, promise=promise)


def _fmt(value: float | None) -> str:
    return "off" if value is None else f"{value:.6f}"


def _saved_line(saved: services.SavedPolicy | None, runs: dict[int, str]) -> str:
    if saved is None:
        return "No saved policy yet: every scored stack without a crowd answer goes to humans."
    return (f"Saved policy {saved.id} ({runs.get(saved.model_run_id, saved.model_run_id)}): t_low {_fmt(saved.t_low)}, "
            f"t_high {_fmt(saved.t_high)}, {saved.reviews_required} review(s) per stack, by {saved.created_by} "
            f"on {saved.created_at:%Y-%m-%d %H:%M} UTC.")


def targets(saved: services.SavedPolicy | None, run_id: int) -> tuple[str, float, float, float, int]:
    """The promise and target inputs, starting from the saved policy's (whichever run it is for:
    the targets the lab last chose, e.g. by the demo or ``tune``), else the defaults."""
    start = DEFAULT_TARGETS
    if saved is not None:
        start = tuple(v if v is not None else d for v, d in
                      zip((saved.sensitivity, saved.specificity, saved.confidence), DEFAULT_TARGETS))
    k_start = saved.reviews_required if saved is not None else 1
    promise_start = saved.promise if saved is not None else DEFAULT_PROMISE
    promise = st.radio("Promise", PROMISES, index=PROMISES.index(promise_start), horizontal=True,
                       key=f"thresholds_promise_{run_id}",
                       format_func={"relative": "relative to the human standard (default)",
                                    "absolute": "absolute, against the truth (human error counted)"}.get)
    columns = st.columns(4)
    sensitivity = columns[0].number_input("Target sensitivity", 0.5, 0.9999, start[0], 0.005, format="%.4f",
                                          key=f"thresholds_sensitivity_{run_id}")
    specificity = columns[1].number_input("Target specificity", 0.5, 0.9999, start[1], 0.005, format="%.4f",
                                          key=f"thresholds_specificity_{run_id}")
    confidence = columns[2].number_input("Confidence of the bounds", 0.5, 0.999, start[2], 0.01, format="%.3f",
                                         key=f"thresholds_confidence_{run_id}")
    reviews = columns[3].number_input("Reviews per routed stack", 1, 9, k_start, key=f"thresholds_reviews_{run_id}")
    st.info(promise_sentence(promise, sensitivity=sensitivity, specificity=specificity, confidence=confidence))
    return promise, sensitivity, specificity, confidence, int(reviews)


Thresholds = tuple[float | None, float | None]
SIDES = (("t_low", "auto flowing at or below", 0.0), ("t_high", "auto stalled at or above", 1.0))


def _set_thresholds(run_id: int, values: Thresholds) -> None:
    for (name, _, default), value in zip(SIDES, values):
        st.session_state[f"thresholds_{name}_on_{run_id}"] = value is not None
        st.session_state[f"thresholds_{name}_{run_id}"] = default if value is None else value


def proposed_thresholds(run_id: int, saved: Thresholds | None, suggested: Thresholds,
                        feasible: bool) -> Thresholds:
    """The proposed t_low/t_high inputs (each may be off: that side decides nothing). They start at
    the saved thresholds (the tuner's suggestion when nothing is saved for this run); buttons copy
    the suggestion or go back to the saved ones."""
    if f"thresholds_t_low_{run_id}" not in st.session_state:
        _set_thresholds(run_id, saved if saved is not None else suggested)
    inputs = st.columns([2, 2, 3, 2])
    values = []
    for column, (name, meaning, _) in zip(inputs, SIDES):
        decides = column.checkbox(f"{name} decides", key=f"thresholds_{name}_on_{run_id}")
        number = column.number_input(f"Proposed {name} ({meaning})", 0.0, 1.0, format="%.6f",
                                     key=f"thresholds_{name}_{run_id}", disabled=not decides)
        values.append(number if decides else None)
    inputs[2].button(f"Use the tuned thresholds ({_fmt(suggested[0])}, {_fmt(suggested[1])})",
                     key="thresholds_use_tuned", on_click=_set_thresholds, args=(run_id, suggested),
                     help=None if feasible else "no policy meets the targets: this is the closest one in reach")
    if saved is not None:
        inputs[3].button("Back to the saved policy", key="thresholds_use_saved", on_click=_set_thresholds,
                         args=(run_id, saved))
    return values[0], values[1]


def _bound_basis(report: PolicyReport, rate: str) -> str:
    """What a bound counts, by promise."""
    if report.promise == "relative":
        return "counts the automatic decisions that change a human answer (routed stacks keep theirs)"
    return f"counts the humans' {rate} rate on routed stacks"


def _policy_column(column, title: str, report: PolicyReport | None, preview_column, targets_met: bool | None,
                   confidence: float) -> None:  # noqa: ANN001 - Streamlit containers and a pandas column
    with column.container(border=True):
        st.markdown(f"**{title}**")
        if report is None:
            st.caption("none saved: every scored stack goes to humans")
        else:
            st.caption(f"t_low {_fmt(report.t_low)} · t_high {_fmt(report.t_high)}")
        cells = st.columns(3)
        if report is not None:
            cells[0].metric("Decided automatically", f"{report.auto_share:.1%}", help="share of the reference stacks")
            cells[1].metric("Sensitivity (bound)", f"{report.sensitivity:.4f}", f"≥ {report.sensitivity_lower:.4f}",
                            delta_color="off", delta_arrow="off",
                            help=f"{report.misses} stalls decided flowing by the model, {report.unreviewed_stalled} "
                                 f"routed to humans; the lower bound ({confidence:.0%} for both sides together) "
                                 + _bound_basis(report, "miss"))
            cells[2].metric("Specificity (bound)", f"{report.specificity:.4f}", f"≥ {report.specificity_lower:.4f}",
                            delta_color="off", delta_arrow="off",
                            help=f"{report.false_alarms} flowing stacks decided stalled by the model, "
                                 f"{report.unreviewed_flowing} routed to humans; the lower bound "
                                 + _bound_basis(report, "false-alarm"))
        cells = st.columns(3)
        cells[0].metric("Meets targets", "-" if targets_met is None else ("yes" if targets_met else "no"))
        cells[1].metric("To humans", f"{preview_column['to humans']:,.0f}",
                        help="stacks of this run without a crowd answer that the policy routes to reviewers "
                             "(as the Dashboard counts them)")
        cells[2].metric("Human hours", f"{preview_column['human hours']:,.1f}",
                        help="to humans × reviews per stack × the median review time so far")


def show() -> None:
    """The page."""
    admin = ui.require_admin()
    backend = ui.backend()
    st.title("Thresholds")
    runs = services.model_runs(backend)
    if not runs:
        st.info("No model run has stored predictions yet: run `stalltriage predict` first.")
        st.stop()
    saved = services.saved_policy(backend)
    st.caption(_saved_line(saved, runs))
    ids = list(runs)
    run_id = st.selectbox("Model run", ids, format_func=runs.get, key="thresholds_run",
                          index=ids.index(saved.model_run_id) if saved is not None and saved.model_run_id in runs else 0)
    promise, sensitivity, specificity, confidence, reviews = targets(saved, run_id)

    page = _page_data(str(backend.engine.url), run_id, sensitivity, specificity, confidence, reviews, promise,
                      backend)
    reference = page.reference.frame
    if reference.empty or reference["label"].nunique() < 2:
        st.warning("This run has no out-of-fold or held-out scores on crowd-labelled stacks of both classes: "
                   "nothing to tune on.")
        st.stop()
    for message in page.outcome.warnings:
        st.warning(message)
    tuned = page.outcome.tuned
    st.caption(f"Reference: {page.reference.describe()}. The tuner "
               + ("meets the targets." if tuned.feasible_ else
                  f"cannot meet the targets; it proposes the closest policy in reach "
                  f"({tuning.shortfall(tuned.report_, sensitivity=sensitivity, specificity=specificity)})."))
    absolute = tuned.report_ if promise == "absolute" else page.outcome.other
    st.caption(f"Humans (absolute reading): {tuning.describe_humans(absolute, page.known)}.")
    if page.outcome.share is not None:
        (st.caption if page.outcome.share.holds else st.warning)(f"Stall share: {page.outcome.share.describe()}.")
    saved_here = (saved.t_low, saved.t_high) if saved is not None and saved.model_run_id == run_id else None
    t_low, t_high = proposed_thresholds(run_id, saved_here, (tuned.t_low_, tuned.t_high_), tuned.feasible_)
    try:
        t_low, t_high = validate_thresholds(t_low, t_high)
    except ValueError as error:
        st.error(str(error))
        st.stop()

    proposed = tuning.evaluate(reference, t_low=t_low, t_high=t_high, confidence=confidence, known=page.known,
                               promise=promise)
    current = None if saved_here is None else tuning.evaluate(reference, t_low=saved_here[0], t_high=saved_here[1],
                                                              confidence=confidence, known=page.known,
                                                              promise=promise)
    preview = tuning.queue_preview(services.queue_probabilities(backend, model_run_id=run_id), current=saved_here,
                                   proposed=(t_low, t_high), seconds_per_review=page.seconds_per_review,
                                   reviews_required=reviews)

    def met(report: PolicyReport | None) -> bool | None:
        return None if report is None else (report.sensitivity_lower >= sensitivity
                                            and report.specificity_lower >= specificity)

    left, right = st.columns(2)
    _policy_column(left, "Saved policy", current, preview["current"], met(current), confidence)
    _policy_column(right, "Proposed", proposed, preview["proposed"], met(proposed), confidence)
    unchanged = (saved is not None and saved_here == (t_low, t_high) and saved.reviews_required == reviews
                 and saved.promise == promise)
    misses = tuning.shortfall(proposed, sensitivity=sensitivity, specificity=specificity)
    confirmed = not misses or st.checkbox(f"Save although the proposal misses its targets: {misses}",
                                          key="thresholds_confirm_shortfall")
    blocked = "the proposal equals the saved policy" if unchanged else (
        None if confirmed else "tick the confirmation above: the proposal misses its targets")
    if st.button("Save the proposed policy as the active policy", key="thresholds_save", type="primary",
                 disabled=blocked is not None, help=blocked):
        policy_id = services.activate_thresholds(backend, admin, model_run_id=run_id, t_low=t_low, t_high=t_high,
                                                 reviews_required=reviews, sensitivity=sensitivity,
                                                 specificity=specificity, confidence=confidence, promise=promise,
                                                 stall_share=float(reference["label"].mean()))
        _page_data.clear()
        _standing.clear()
        st.success(f"Saved policy {policy_id} as the active policy: the review queue follows it now.")

    frontier_section(page.outcome, proposed, sensitivity, specificity)
    charts_section(tuned, reference, proposed, current, sensitivity, specificity, confidence, page.known, promise)
    gate_section(backend, run_id, t_low=t_low, t_high=t_high, sensitivity=sensitivity, specificity=specificity,
                 confidence=confidence)
    known_answers_section(backend, admin, page.known_answer_rate)


def frontier_section(outcome: tuning.TuneOutcome, proposed: PolicyReport, sensitivity: float,
                     specificity: float) -> None:
    """What each automatic share can promise on this reference, and what a larger one would buy."""
    st.subheader("Frontier: automatic share against the bounds in reach")
    st.plotly_chart(charts.frontier_figure(outcome.tuned.frontier_, sensitivity=sensitivity, specificity=specificity,
                                           chosen=(proposed.auto_share, proposed.sensitivity_lower,
                                                   proposed.specificity_lower)), key="thresholds_frontier")
    left, right = st.columns([3, 2])
    left.dataframe(tuning.frontier_table(outcome), hide_index=True, key="thresholds_frontier_table")
    right.caption("What a larger reference would buy (relative promise, the same error rates):")
    right.dataframe(tuning.more_data_table(outcome), hide_index=True, key="thresholds_more_data")


def charts_section(tuned, reference, proposed: PolicyReport, current: PolicyReport | None, sensitivity: float,
                   specificity: float, confidence: float, known, promise: str) -> None:  # noqa: ANN001
    """Trade-off curves with both policies marked, score histograms, ROC and the per-project table."""
    st.subheader("Automatic share vs quality")
    marks = {"proposed": (proposed.auto_share, proposed.sensitivity, proposed.specificity)}
    if current is not None:
        marks = {"saved policy": (current.auto_share, current.sensitivity, current.specificity), **marks}
    st.plotly_chart(charts.tradeoff_figure(tuned.curve_, sensitivity=sensitivity, specificity=specificity,
                                           policies=marks), key="thresholds_tradeoff")
    left, right = st.columns(2)
    left.plotly_chart(charts.score_histogram(reference, t_low=proposed.t_low, t_high=proposed.t_high),
                      key="thresholds_histogram")
    right.plotly_chart(charts.roc_figure(reference), key="thresholds_roc")
    st.subheader("Per project (proposed policy)")
    st.dataframe(tuning.project_breakdown(reference, t_low=proposed.t_low, t_high=proposed.t_high,
                                          confidence=confidence, known=known, promise=promise),
                 key="thresholds_projects", hide_index=True)


@st.cache_data(ttl=60, show_spinner="Checking the projects...")
def _standing(db_url: str, model_run_id: int, t_low: float | None, t_high: float | None, sensitivity: float,
              specificity: float, confidence: float, _backend: object):  # noqa: ANN202 - a DataFrame
    return services.project_standing(_backend, model_run_id=model_run_id, t_low=t_low, t_high=t_high,
                                     sensitivity=sensitivity, specificity=specificity, confidence=confidence)


def gate_section(backend: services.Backend, run_id: int, *, t_low: float | None, t_high: float | None,
                 sensitivity: float, specificity: float, confidence: float) -> None:
    """Each project's standing under the proposed policy (saved with it): validated, gated, drifted."""
    st.subheader("Projects: validation gate and drift (proposed policy)")
    st.caption("A project is decided automatically only on the sides its own human answers (crowd labels, and "
               "answers to stacks drawn at random from it) show to keep the promise, and on none while its stacks "
               "drift from its reference. 'answers still needed': about how many more answered stacks open it.")
    standing = _standing(str(backend.engine.url), run_id, t_low, t_high, sensitivity, specificity, confidence,
                         backend)  # one pass over every scored stack: cached like the page's tuning
    st.caption(projects.summary(standing))
    st.dataframe(projects.standing_table(standing), key="thresholds_gate", hide_index=True)


def known_answers_section(backend: services.Backend, admin: services.SessionUser, rate_now: float) -> None:
    """How often the queue mixes in known-answer stacks (they measure the reviewers)."""
    st.subheader("Known-answer stacks")
    st.caption("Stacks with a trusted (tier-1) crowd answer, mixed into every reviewer's queue like any other "
               "stack; their answers measure each reviewer and set the human error rates above.")
    rate = st.number_input("Share of served stacks that are known-answer stacks", 0.0, 0.5, rate_now,
                           0.01, format="%.2f", key="thresholds_known_rate")
    if st.button("Save the rate", key="thresholds_known_save"):
        services.set_known_answer_rate(backend, admin, rate=rate)
        _page_data.clear()
        st.success(f"Known-answer rate set to {rate:.0%}.")


show()
