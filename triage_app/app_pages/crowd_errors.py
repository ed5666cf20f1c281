"""Crowd errors (admin): the labelled stacks whose crowd answer the model doubts, queued for a second look.

The list is ``stalltriage crowd-errors``'s (``triage_app.crowd_errors``); a queued stack is served
to the next admin on the Review page before any other work, and the answer replaces the crowd's
as the stack's reference and final label (``db.second_look``).
"""

from __future__ import annotations

import streamlit as st

from triage_app import services, ui

admin = ui.require_admin()
backend = ui.backend()

st.title("Crowd errors")
st.write("The crowd is wrong on a few percent of stacks, mostly where its vote was narrow. Those answers teach "
         "the model and judge the promise as if they were true. Listed here: labelled stacks whose crowd vote was "
         "narrow (80 : 20 or closer) and whose out-of-fold score, from a model that never trained on them, "
         "contradicts it (cleanlab's confident learning). Queue them for a second look: admins get them first on "
         "the Review page, one admin each, without the crowd's answer or the score on screen. A stalled or "
         "flowing answer replaces the crowd's as the stack's reference label (tuning, the project gate), its "
         "final label (the export says so) and its training label; unsure or bad stack keeps the crowd's.")

runs = services.model_runs(backend)
if not runs:
    st.info("No model run yet: run `stalltriage predict --split all` first.")
    st.stop()
policy = services.saved_policy(backend)
ids = list(runs)
default = ids.index(policy.model_run_id) if policy is not None and policy.model_run_id in runs else 0
run_id = st.selectbox("Model run", ids, index=default, format_func=runs.get, key="crowd_errors_run")

with st.spinner("Looking for likely crowd errors…"):
    found = services.crowd_errors(backend, model_run_id=run_id)
if not found.judged:
    st.info(f"{runs[run_id]} scored no labelled stack out of fold: run `stalltriage predict --split all` with it.")
else:
    looked = f"; {found.looked_at} more already had their second look" if found.looked_at else ""
    st.write(f"**{len(found.flagged)}** likely crowd errors among {found.judged:,} labelled stacks scored out of "
             f"fold{looked}.")
    if len(found.flagged):
        st.dataframe(found.flagged.loc[:, ["filename", "crowd_score", "probability", "reason"]], hide_index=True,
                     column_config={"crowd_score": st.column_config.NumberColumn("crowd voted stalled", format="%.2f"),
                                    "probability": st.column_config.NumberColumn("P(stalled)", format="%.3f")},
                     key="crowd_errors_table")
        if st.button(f"Queue {len(found.flagged)} for a second look", type="primary", key="crowd_errors_queue"):
            added = services.queue_second_looks(backend, admin, model_run_id=run_id, flagged=found.flagged)
            st.success(f"Queued {added} stacks: admins are served them first on the Review page.")

st.subheader("Second looks")
looks = services.second_looks(backend)
if looks.empty:
    st.caption("None queued yet.")
else:
    counts = looks["status"].value_counts()
    st.write(", ".join(f"{counts[status]} {status}" for status in counts.index))
    st.dataframe(looks.loc[:, ["filename", "status", "answer", "answered_by", "crowd_label", "crowd_score", "reason",
                               "requested_by", "requested_at"]], hide_index=True, key="second_looks_table")
