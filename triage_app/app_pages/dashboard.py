"""Dashboard: review progress, throughput, agreement between reviewers, model-vs-human disagreements."""

from __future__ import annotations

import streamlit as st

from triage_app import charts, services, ui

ui.require_login()
backend = ui.backend()

st.title("Dashboard")
stats = services.queue_progress(backend)
columns = st.columns(5)
for column, (label, value) in zip(columns, (("Scored", stats.predicted), ("Routed to humans", stats.routed_to_humans),
                                            ("Reviewed", stats.done), ("Remaining", stats.remaining),
                                            ("Claimed now", stats.claimed))):
    column.metric(label, f"{value:,}")
st.progress(stats.done / stats.routed_to_humans if stats.routed_to_humans else 1.0,
            text=f"{stats.done:,} of {stats.routed_to_humans:,} routed stacks reviewed")

data = services.dashboard_data(backend)
st.subheader("Reviews per hour (last 48 hours)")
if data["per_hour"].empty:
    st.info("No reviews in the last 48 hours.")
else:
    st.plotly_chart(charts.throughput_figure(data["per_hour"]), key="dashboard_throughput")
left, right = st.columns(2)
with left:
    st.subheader("Reviewer agreement")
    st.caption("Share of each reviewer's answers that agree with the other reviewers' majority on the same stacks.")
    st.dataframe(data["agreement"], key="dashboard_agreement", hide_index=True,
                 column_config={"agreement": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                             max_value=1)})
with right:
    st.subheader("Model vs humans")
    st.caption("Stacks where the reviewers' majority contradicts the model, most confident model first.")
    st.dataframe(data["disagreements"], key="dashboard_disagreements", hide_index=True)

st.subheader("Reviewer skill (known-answer stacks)")
if data["skill"].empty:
    st.info("No answers to known-answer stacks yet: the tuner uses the stated prior for human error.")
else:
    st.caption("Sensitivity and specificity of each reviewer on stacks whose answer is known, with 95 % "
               "intervals (Beta posteriors); n_known_* is how many known answers each rests on.")
    st.dataframe(data["skill"], key="dashboard_skill", hide_index=True)
