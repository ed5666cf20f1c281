"""Dashboard: how much is left and when it will be done, what the model saves, how reviewers agree
with each other and with the model, and who reviews when. Each section is a function, so other
sections (reviewer skill) slot in without touching these.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.policy.promise import promise_sentence
from triage_app import charts, progress, retraining, services, ui
from triage_app.settings import resolve


def promise_section(policy: services.SavedPolicy | None, lab: progress.LabProgress) -> None:
    """What the active policy promises, in one sentence, and how many reviews it saves."""
    if policy is None:
        st.info("No active policy: every scored stack without a crowd answer goes to reviewers.")
        return
    targets = (policy.sensitivity, policy.specificity, policy.confidence)
    if None not in targets:
        sensitivity, specificity, confidence = targets
        sentence = promise_sentence(policy.promise, sensitivity=sensitivity, specificity=specificity,
                                    confidence=confidence)
        st.markdown(f"**The active policy's promise.** {sentence}")
    automatic = lab.needs_humans_without_model - lab.stats.routed_to_humans
    st.caption(f"It decides {automatic:,} of {lab.needs_humans_without_model:,} scored stacks without a crowd "
               f"answer automatically: {automatic * lab.reviews_required:,} reviews saved at "
               f"{lab.reviews_required} per stack.")


def projects_section(backend: services.Backend) -> None:
    """Each project's standing under the active policy: validated, gated (with the answers still
    needed) or drifted (paused: its stacks go to reviewers until it is re-validated)."""
    st.subheader("Projects: validation gate and drift")
    table = services.active_projects(backend)
    if table is None:
        st.caption("The active policy was saved without the project gate: it decides every project alike. Tune "
                   "again (`stalltriage tune` or the Thresholds page) to gate projects.")
        return
    drifted = table.loc[table["status"] == "drifted", "project"].tolist()
    if drifted:
        st.warning(f"Drift: the stacks of {', '.join(drifted)} no longer look like their reference; automatic "
                   "decisions for them are paused (routed to reviewers) until a later tune re-validates them.")
    st.caption("A project is decided automatically only on the sides its own human answers validate; the queue "
               "serves a gated project's stacks first, drawn at random, until it has the answers it needs.")
    table_or_note(table, "No scored stacks yet.", key="dashboard_projects")


def table_or_note(frame: pd.DataFrame, note: str, **kwargs: object) -> None:
    """``frame`` as a table, or ``note`` when it has no rows (an empty grid tells nothing)."""
    if frame.empty:
        st.caption(note)
    else:
        st.dataframe(frame, hide_index=True, **kwargs)


def progress_section(lab: progress.LabProgress, reviews: pd.DataFrame, now: pd.Timestamp) -> None:
    """How much is left, the pace, the forecast finish, and the burn-down chart."""
    stats = lab.stats
    columns = st.columns(5)
    columns[0].metric("Routed to humans", f"{stats.routed_to_humans:,}",
                      help="scored stacks without a crowd answer that the active policy sends to reviewers "
                           "(the same count as 'To humans' on the Thresholds page)")
    columns[1].metric("Reviewed", f"{stats.done:,}", help=f"routed stacks with {lab.reviews_required} counted review(s)")
    columns[2].metric("Still need reviews", f"{stats.remaining:,}",
                      help=f"{lab.reviews_left:,} reviews at {lab.reviews_required} per stack; {stats.claimed:,} "
                           "are on a reviewer's screen now")
    columns[3].metric("Pace", f"{lab.per_day:,.0f} / day",
                      help=f"counted reviews per day over the last {lab.pace_days:.1f} days")
    if stats.remaining == 0 or lab.finish is None:
        columns[4].metric("Done at this pace", "done" if stats.remaining == 0 else "no pace yet")
    else:
        columns[4].metric("Done at this pace", f"{lab.finish:%b %d}", f"{lab.finish:%H:%M} UTC", delta_color="off",
                          delta_arrow="off", help="reviews left ÷ pace")
    st.progress(stats.done / stats.routed_to_humans if stats.routed_to_humans else 1.0,
                text=f"{stats.done:,} of {stats.routed_to_humans:,} routed stacks reviewed")
    st.plotly_chart(charts.burndown_figure(reviews, reviews_left=lab.reviews_left, per_day=lab.per_day,
                                           finish=lab.finish, now=now), key="dashboard_burndown")


def savings_section(lab: progress.LabProgress) -> None:
    """Human answers needed with and without the model (and by the crowd)."""
    st.subheader("Human answers saved by the model")
    votes = st.columns([1, 3])[0].number_input("Crowd answers per stack", 1, 100, 20, key="dashboard_crowd_votes",
                            help="how many volunteer answers your crowd collects per stack before its answer "
                                 "counts (set it to your project's number)")
    comparison = progress.workload_comparison(lab, crowd_votes=int(votes))
    everything = comparison.set_index("scenario").loc["review every stack"]
    st.caption(f"The model decides {everything['saved by the model']:,} of {everything['human answers']:,} reviews "
               f"({everything['saved by the model'] / max(1, everything['human answers']):.0%}) that reviewing "
               "every stack without a crowd answer would need.")
    st.plotly_chart(charts.workload_figure(comparison, done=lab.stats.done * lab.reviews_required),
                    key="dashboard_workload")


def agreement_section(data: dict) -> None:
    """Agreement over time (chart), per reviewer (table) and the stacks where humans and model differ."""
    st.subheader("Agreement over time")
    by_day = progress.agreement_by_day(data["reviews"], data["scores"], threshold=data["threshold"])
    if by_day.empty:
        st.info("No stalled/flowing answers yet.")
    else:
        st.caption(f"Share of stalled/flowing answers agreeing with the other reviewers' majority on the same stack, "
                   f"and with the model (probability ≥ {data['threshold']:.2f} = stalled), per day.")
        st.plotly_chart(charts.agreement_figure(by_day), key="dashboard_agreement_chart")
        if not by_day["reviewer_answers"].any():
            st.caption("Agreement between reviewers appears once two or more reviewers answer the same stacks.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Per reviewer**")
        table_or_note(data["agreement"], "Needs stacks answered by two or more reviewers.", key="dashboard_agreement",
                      column_config={"agreement": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                  max_value=1)})
    with right:
        st.markdown("**Model vs humans**")
        st.caption("Stacks where the reviewers' majority contradicts the model, most confident model first.")
        table_or_note(data["disagreements"], "None so far.", key="dashboard_disagreements",
                      column_config={"probability": st.column_config.NumberColumn(format="%.3f")})


def skill_section(data: dict) -> None:
    """Each reviewer's sensitivity and specificity on known-answer stacks."""
    st.subheader("Reviewer skill (known-answer stacks)")
    if data["skill"].empty:
        st.info("No answers to known-answer stacks yet: the tuner uses the stated prior for human error.")
    else:
        st.caption("Sensitivity and specificity of each reviewer on stacks whose answer is known, with 95 % "
                   "intervals (Beta posteriors); n_known_* is how many known answers each rests on.")
        st.dataframe(data["skill"], key="dashboard_skill", hide_index=True)


def throughput_section(data: dict) -> None:
    """Reviews per hour over the last 48 hours, by reviewer."""
    st.subheader("Reviews per hour (last 48 hours)")
    if data["per_hour"].empty:
        st.info("No reviews in the last 48 hours.")
    else:
        st.plotly_chart(charts.throughput_figure(data["per_hour"]), key="dashboard_throughput")


def learning_section(backend: services.Backend) -> None:
    """Learning from reviews (admins): the automatic share per saved policy over time, and retraining."""
    st.subheader("Learning from reviews")
    history = services.policy_history(backend)
    if history.empty:
        st.info("No policy saved yet.")
    else:
        st.caption("Share of the run's scored stacks each saved policy decides automatically; `stalltriage retrain` "
                   "adds a point when it activates a run fine-tuned on the reviews.")
        st.plotly_chart(charts.auto_share_figure(history), key="dashboard_auto_share")
    current = services.queue_order(backend)
    chosen = st.columns([1, 3])[0].selectbox(
        "Queue order", services.QUEUE_ORDERS, index=services.QUEUE_ORDERS.index(current), key="dashboard_queue_order",
        help="which routed stack reviewers get first: boundary (closest to the threshold), stalled (most likely "
             "stalled), uncertainty (members disagree most: teaches retraining most), random (unbiased), mix "
             "(boundary with 1 in 5 random); see the user guide")
    if chosen != current:
        services.set_queue_order(backend, ui.session_user(), order=chosen)
        st.toast(f"Queue order: {chosen}")
    status_file = retraining.status_path(resolve(None).data_dir)
    status = retraining.read_status(status_file)
    running = retraining.is_running(status)
    if status is not None:
        st.caption(f"Last retrain: {status['state']} ({status['updated']}): {status['message']}")
    minutes = st.columns([1, 3])[0].number_input("Training minutes", 1, 240, 10, key="dashboard_retrain_minutes")
    if st.button("Retrain on the reviews", key="dashboard_retrain", disabled=running,
                 help="fine-tune the active run on crowd + reviewed labels in the background, then activate it "
                      "only if its tuned policy meets the targets and decides no less automatically"):
        retraining.start_retrain(resolve(None), minutes=float(minutes))
        st.rerun()


def show() -> None:
    """The page."""
    ui.require_login()
    backend = ui.backend()
    st.title("Dashboard")
    now = pd.Timestamp.now(tz="UTC")
    lab = progress.lab_progress(backend, now=now)
    data = services.dashboard_data(backend)
    promise_section(services.saved_policy(backend), lab)
    projects_section(backend)
    progress_section(lab, data["reviews"], now)
    savings_section(lab)
    agreement_section(data)
    skill_section(data)
    throughput_section(data)
    if ui.session_user().is_admin:
        learning_section(backend)


show()
