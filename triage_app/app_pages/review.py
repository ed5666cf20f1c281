"""Review: watch the stack in one viewer (outline as volunteers know it, slice keys) and answer with
one key; the next stack is already loaded in the browser, so an answer swaps to it at once and is
stored in the background (see :mod:`triage_app.viewer`). The model's score and the model's view are
hidden until asked for, and hidden again for every new stack (no anchoring); the answer buttons all
look alike, so none looks chosen.

Each run of the review area first stores the answers the viewer sent and has not had
acknowledged, then claims the pair to show (the current stack and the next), then draws.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from triage_app import retraining, services, ui
from triage_app.viewer import KEY as VIEWER, broken_stack_data, review_viewer, stack_data

MODEL_VIEW = "review_model_view"
SHOW_SCORE = "review_show_score"
CURRENT = "review_current"  # the vessel id the model's view and the score were last asked for
# less empty space above the page, so the viewer, the answers and the context fit 1400x900
COMPACT = "<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>"

user = ui.require_login()
backend = ui.backend()
offered: set[int] = st.session_state.setdefault("review_offered", set())  # stacks sent to this page's viewer
saved: set[int] = st.session_state.setdefault("review_saved", set())  # answers this page stored


def _record_answers() -> tuple[list[int], services.AnswerOutcome]:
    """Store the viewer's answers not stored yet; returns the vessel ids to acknowledge and the outcome.

    The viewer sends every unacknowledged answer again with each new one, so answers this page
    already stored are acknowledged without a second write.
    """
    state = st.session_state.get(VIEWER) or {}
    answers = services.answers_from_viewer((state.get("answers") or {}).get("pending"))
    outcome = services.record_answers(backend, user, [a for a in answers if a.vessel_id not in saved],
                                      offered=offered)
    saved.update(outcome.stored)
    failed = {vessel for vessel, _ in outcome.failed}
    return [a.vessel_id for a in answers if a.vessel_id not in failed], outcome


@st.cache_data(ttl=20, show_spinner=False)
def _remaining(db_url: str, answered: int, _backend: services.Backend) -> tuple[int, int]:
    """Stacks still needing reviews and all routed ones: counted again after each own answer, and
    at least every 20 s for other reviewers' answers."""
    stats = services.queue_progress(_backend)
    return stats.remaining, stats.routed_to_humans


@st.cache_resource(show_spinner=False, max_entries=2)
def _explainer(run_dir: str):  # noqa: ANN202 - core.model.saliency.Explainer
    return services.load_explainer(Path(run_dir))


@st.cache_data(show_spinner=False, max_entries=32)
def _model_view(run_dir: str, filename: str, _media) -> bytes:  # noqa: ANN001 - ReviewMedia
    return services.model_view(_explainer(run_dir), _media)


@st.cache_data(ttl=60, show_spinner=False)
def _run_dir(db_url: str, _backend: services.Backend) -> str | None:
    with _backend.factory() as session:
        folder = services.explained_run_dir(session)
    return None if folder is None else str(folder)


def _stack(item: services.ReviewItem) -> dict:
    """The viewer's data for one stack, or what it shows when the stack cannot be prepared."""
    try:
        return stack_data(item.vessel_id, item.filename, services.media_for(backend, item))
    except Exception as error:  # noqa: BLE001 - any failure to read or encode is shown, the stack can be marked bad
        return broken_stack_data(item.vessel_id, item.filename, error)


def _score(item: services.ReviewItem) -> str:
    with backend.factory() as session:
        run = retraining.scoring_run(session, item.vessel_id) or "unknown"
    return f"Model probability (stalled): {item.probability:.3f} · scored by run {run}"


def tools(item: services.ReviewItem, run_dir: str | None) -> None:
    """The model's view and score switches (both off by default, and again for every new stack)."""
    if st.session_state.get(CURRENT) != item.vessel_id:  # a new stack: before the widgets are drawn
        st.session_state.update({CURRENT: item.vessel_id, MODEL_VIEW: False, SHOW_SCORE: False})
    st.button("Hide the model's view (M)" if st.session_state.get(MODEL_VIEW) else "Show the model's view (M)",
              key="review_model_view_button", shortcut="M", disabled=run_dir is None,
              on_click=lambda: st.session_state.update({MODEL_VIEW: not st.session_state.get(MODEL_VIEW)}),
              help="where the ensemble's evidence for 'stalled' lies, slice by slice (Grad-CAM of the run's "
                   "members); hidden by default so that it does not anchor your answer"
                   if run_dir else "the model run's folder is not on this machine")
    st.toggle("Show model score", key=SHOW_SCORE,
              help="hidden by default so that the score does not anchor your answer")


@st.fragment
def _review() -> None:
    """The review area; an answer reruns only this fragment, not the whole app (less to redraw)."""
    acknowledged, outcome = _record_answers()
    kept = {vessel for vessel, _ in outcome.failed}  # still the viewer's: not shown again, not counted
    items = [item for item in services.review_items(backend, user, ahead=services.PRELOADED + len(kept))
             if item.vessel_id not in kept]
    head, progress, switches = st.columns([2, 2, 3], vertical_alignment="bottom")
    head.title("Review")
    done = services.reviewed_since(backend, user, since=ui.session_started())
    progress.metric("Reviewed this session", done, help="stacks you answered since logging in")
    for _, why in outcome.refused:
        st.error(f"An answer was not stored: {why}.")
    for _, why in outcome.failed:
        st.warning(f"An answer is not stored yet ({why}); this page keeps it and sends it again in a few "
                   "seconds. Keep the page open.")
    if not items and not kept:
        st.success("Nothing left for you to review. Thank you!")
        return

    run_dir = _run_dir(str(backend.engine.url), backend)
    model = score = None
    if items:
        with switches:
            tools(items[0], run_dir)
        if st.session_state.get(MODEL_VIEW) and run_dir is not None:
            with st.spinner("Computing the model's view..."):
                model = (items[0].vessel_id,
                         _model_view(run_dir, items[0].filename, services.media_for(backend, items[0])))
        if st.session_state.get(SHOW_SCORE):
            score = (items[0].vessel_id, _score(items[0]))
    shown = items[:services.PRELOADED]
    services.prefetch(backend, shown)  # both prepared at once, in the media threads
    review_viewer([_stack(item) for item in shown], user_id=user.id, acknowledged=acknowledged,
                  retry=bool(kept), model=model, score=score)
    offered.update(item.vessel_id for item in shown)
    remaining, routed = _remaining(str(backend.engine.url), done, backend)
    st.caption(f"{remaining:,} of {routed:,} routed stacks still need reviews")


st.html(COMPACT)
_review()
