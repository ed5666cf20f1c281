"""Thresholds (admin): tune t_low/t_high against crowd answers, see the risk and workload, save."""

from __future__ import annotations

import streamlit as st

from triage_app import charts, tuning, ui

admin = ui.require_admin()
backend = ui.backend()


@st.cache_data(ttl=60, show_spinner="Tuning...")
def _page_data(db_url: str, model_run_id: int, sensitivity: float, specificity: float, confidence: float,
               _backend: object) -> tuning.ThresholdsData:
    return tuning.thresholds_page_data(_backend, model_run_id=model_run_id, sensitivity=sensitivity,
                                       specificity=specificity, confidence=confidence)


st.title("Thresholds")
runs = tuning.model_runs(backend)
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

page = _page_data(str(backend.engine.url), run_id, sensitivity, specificity, confidence, backend)
reference = page.reference
if reference.empty or reference["label"].nunique() < 2:
    st.warning("This run has no out-of-fold scores on stacks with both crowd labels: nothing to tune on.")
    st.stop()
for message in page.outcome.warnings:
    st.warning(message)
tuned = page.outcome.tuned
suggested = tuning.storable_thresholds(tuned.t_low_, tuned.t_high_)
st.caption(f"{len(reference):,} reference stacks ({int(reference['label'].sum()):,} stalled) with out-of-fold "
           f"scores; {page.in_sample:,} labelled stacks without them are left out. The tuned policy "
           + ("meets the targets." if tuned.feasible_ else "cannot meet the targets: every stack goes to humans."))

chosen = st.columns(2)
t_low = chosen[0].number_input("t_low (auto flowing at or below)", 0.0, 1.0, suggested[0], format="%.6f",
                               key=f"thresholds_t_low_{run_id}_{suggested[0]}")
t_high = chosen[1].number_input("t_high (auto stalled at or above)", 0.0, 1.0, suggested[1], format="%.6f",
                                key=f"thresholds_t_high_{run_id}_{suggested[1]}")
if t_low >= t_high:
    st.error("t_low must be below t_high.")
    st.stop()
report = tuning.evaluate(reference, t_low=t_low, t_high=t_high, confidence=confidence)
metrics = st.columns(5)
metrics[0].metric("Decided automatically", f"{report.auto_share:.1%}")
metrics[1].metric("Sensitivity", f"{report.sensitivity:.4f}", f"bound {report.sensitivity_lower:.4f}",
                  delta_color="off", delta_arrow="off", help=f"{report.misses} stalls missed; the bound is the {confidence:.0%} lower "
                                          "Clopper-Pearson bound")
metrics[2].metric("Specificity", f"{report.specificity:.4f}", f"bound {report.specificity_lower:.4f}",
                  delta_color="off", delta_arrow="off", help=f"{report.false_alarms} false alarms")
metrics[3].metric("Meets targets", "yes" if report.sensitivity_lower >= sensitivity
                  and report.specificity_lower >= specificity else "no")
metrics[4].metric("To humans (reference)", f"{report.n_human:,}")

st.subheader("Workload")
preview = tuning.queue_preview(page.all_probabilities, current=page.current, proposed=(t_low, t_high),
                               seconds_per_review=page.seconds_per_review, reviews_required=int(reviews_required))
st.dataframe(preview.style.format("{:,.0f}").format("{:,.1f}", subset=(["human hours"], slice(None))),
             key="thresholds_preview")
if st.button("Save as the active policy", key="thresholds_save", type="primary"):
    policy_id = tuning.save_policy(backend, admin, model_run_id=run_id, t_low=t_low, t_high=t_high,
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
st.dataframe(tuning.project_breakdown(reference, t_low=t_low, t_high=t_high, confidence=confidence),
             key="thresholds_projects", hide_index=True)
