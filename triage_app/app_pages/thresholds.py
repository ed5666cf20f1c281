"""Thresholds (admin): tune t_low/t_high against crowd answers, see the risk and workload, save."""

from __future__ import annotations

import streamlit as st

from core.triage import validate_thresholds

from triage_app import charts, services, tuning, ui

admin = ui.require_admin()
backend = ui.backend()


@st.cache_data(ttl=60, show_spinner="Tuning...")
def _page_data(db_url: str, model_run_id: int, sensitivity: float, specificity: float, confidence: float,
               reviews_required: int, _backend: object) -> tuning.ThresholdsData:
    return services.thresholds_page_data(_backend, model_run_id=model_run_id, sensitivity=sensitivity,
                                         specificity=specificity, confidence=confidence,
                                         reviews_required=reviews_required)


st.title("Thresholds")
runs = services.model_runs(backend)
if not runs:
    st.info("No model run has stored predictions yet: run `stalltriage predict` first.")
    st.stop()
run_id = st.selectbox("Model run", list(runs), format_func=runs.get, key="thresholds_run")
targets = st.columns(4)
sensitivity = targets[0].number_input("Target sensitivity", 0.5, 0.9999, 0.99, 0.005, format="%.4f",
                                      key="thresholds_sensitivity")
specificity = targets[1].number_input("Target specificity", 0.5, 0.9999, 0.95, 0.005, format="%.4f",
                                      key="thresholds_specificity")
confidence = targets[2].number_input("Confidence of the bounds", 0.5, 0.999, 0.95, 0.01, format="%.3f",
                                     key="thresholds_confidence")
reviews_required = targets[3].number_input("Reviews per routed stack", 1, 9, 1, key="thresholds_reviews")

page = _page_data(str(backend.engine.url), run_id, sensitivity, specificity, confidence, int(reviews_required),
                  backend)
reference = page.reference.frame
if reference.empty or reference["label"].nunique() < 2:
    st.warning("This run has no out-of-fold or held-out scores on crowd-labelled stacks of both classes: "
               "nothing to tune on.")
    st.stop()
for message in page.outcome.warnings:
    st.warning(message)
tuned = page.outcome.tuned
st.caption(f"Reference: {page.reference.describe()}. The tuned policy "
           + ("meets the targets." if tuned.feasible_ else "cannot meet the targets: every stack goes to humans."))
st.caption(f"Humans: {tuning.describe_humans(tuned.report_)}.")

chosen = st.columns(2)
sides = []
for column, (name, label, value) in zip(chosen, (("t_low", "t_low (auto flowing at or below)", tuned.t_low_),
                                                 ("t_high", "t_high (auto stalled at or above)", tuned.t_high_))):
    key = f"thresholds_{name}_{run_id}_{value}"
    decides = column.checkbox(f"{name} decides", value=value is not None, key=f"{key}_on")
    default = value if value is not None else (0.0 if name == "t_low" else 1.0)
    number = column.number_input(label, 0.0, 1.0, default, format="%.6f", key=key, disabled=not decides)
    sides.append(number if decides else None)
t_low, t_high = sides
try:
    t_low, t_high = validate_thresholds(t_low, t_high)
except ValueError as error:
    st.error(str(error))
    st.stop()
report = tuning.evaluate(reference, t_low=t_low, t_high=t_high, confidence=confidence, human_errors=page.human_errors)
metrics = st.columns(5)
metrics[0].metric("Decided automatically", f"{report.auto_share:.1%}")
metrics[1].metric("Sensitivity", f"{report.sensitivity:.4f}", f"bound {report.sensitivity_lower:.4f}",
                  delta_color="off", delta_arrow="off", help=f"{report.misses} stalls missed by the model, "
                  f"{report.unreviewed_stalled} routed to humans; the {confidence:.0%} lower bound counts "
                  "the humans' miss rate")
metrics[2].metric("Specificity", f"{report.specificity:.4f}", f"bound {report.specificity_lower:.4f}",
                  delta_color="off", delta_arrow="off", help=f"{report.false_alarms} false alarms by the model, "
                  f"{report.unreviewed_flowing} flowing stacks routed to humans; the bound counts the "
                  "humans' false-alarm rate")
metrics[3].metric("Meets targets", "yes" if report.sensitivity_lower >= sensitivity
                  and report.specificity_lower >= specificity else "no")
metrics[4].metric("To humans (reference)", f"{report.n_human:,}")

st.subheader("Workload")
preview = tuning.queue_preview(page.all_probabilities, current=page.current, proposed=(t_low, t_high),
                               seconds_per_review=page.seconds_per_review, reviews_required=int(reviews_required))
st.dataframe(preview.style.format("{:,.0f}").format("{:,.1f}", subset=(["human hours"], slice(None))),
             key="thresholds_preview")
if st.button("Save as the active policy", key="thresholds_save", type="primary"):
    policy_id = services.activate_thresholds(backend, admin, model_run_id=run_id, t_low=t_low, t_high=t_high,
                                             reviews_required=int(reviews_required), sensitivity=sensitivity,
                                             specificity=specificity, confidence=confidence)
    _page_data.clear()
    st.success(f"Saved policy {policy_id} as the active policy: the review queue follows it now.")

st.subheader("Automatic share vs quality")
st.plotly_chart(charts.tradeoff_figure(tuned.curve_, sensitivity=sensitivity, specificity=specificity,
                                       chosen=(tuned.t_low_, tuned.t_high_)), key="thresholds_tradeoff")
left, right = st.columns(2)
left.plotly_chart(charts.score_histogram(reference, t_low=t_low, t_high=t_high), key="thresholds_histogram")
right.plotly_chart(charts.roc_figure(reference), key="thresholds_roc")
st.subheader("Per project")
st.dataframe(tuning.project_breakdown(reference, t_low=t_low, t_high=t_high, confidence=confidence,
                                      human_errors=page.human_errors),
             key="thresholds_projects", hide_index=True)

st.subheader("Known-answer stacks")
st.caption("Stacks with a trusted (tier-1) crowd answer, mixed into every reviewer's queue like any other "
           "stack; their answers measure each reviewer and set the human error rates above.")
rate = st.number_input("Share of served stacks that are known-answer stacks", 0.0, 0.5, page.known_answer_rate,
                       0.01, format="%.2f", key="thresholds_known_rate")
if st.button("Save the rate", key="thresholds_known_save"):
    services.set_known_answer_rate(backend, admin, rate=rate)
    _page_data.clear()
    st.success(f"Known-answer rate set to {rate:.0%}.")
