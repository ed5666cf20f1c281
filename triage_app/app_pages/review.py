"""Review: watch the next stack in one viewer (outline as volunteers know it, slice keys) and answer
with one key. The model's score and the model's view are hidden until asked for, and hidden again
for every new stack (no anchoring); the answer buttons all look alike, so none looks chosen.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from triage_app import retraining, services, ui
from triage_app.viewer import review_viewer

ANSWERS = (("stalled", "Stalled", "S", ":material/block:"), ("flowing", "Flowing", "F", ":material/water_drop:"),
           ("unsure", "Unsure", "U", None), ("bad_stack", "Bad stack", "B", None))
MODEL_VIEW = "review_model_view"
SHOW_SCORE = "review_show_score"
# less empty space above the page, so the viewer, the answers and the context fit 1400x900
COMPACT = "<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>"

user = ui.require_login()
backend = ui.backend()
shown_at: dict[int, float] = st.session_state.setdefault("review_shown_at", {})


def _answer(item: services.ReviewItem, answer: str) -> None:
    started = shown_at.pop(item.vessel_id, None)
    services.submit_review(backend, user, item, answer=answer,
                           seconds=None if started is None else round(time.monotonic() - started, 2))
    st.session_state["review_last"] = f"{item.filename}: {answer.replace('_', ' ')}"
    st.session_state[MODEL_VIEW] = False  # the next stack starts without the model's view
    st.session_state[SHOW_SCORE] = False  # and without its score


@st.cache_data(ttl=20, show_spinner=False)
def _remaining(db_url: str, answered: int, _backend: services.Backend) -> tuple[int, int]:
    """Stacks still needing reviews and all routed ones: counted again after each own answer, and
    at least every 20 s for other reviewers' answers."""
    stats = services.queue_progress(_backend)
    return stats.remaining, stats.routed_to_humans


@st.cache_resource(show_spinner=False, max_entries=2)
def _explainer(run_dir: str):  # noqa: ANN202 - core.saliency.Explainer
    return services.load_explainer(Path(run_dir))


@st.cache_data(show_spinner=False, max_entries=32)
def _model_view(run_dir: str, filename: str, _media) -> bytes:  # noqa: ANN001 - ReviewMedia
    return services.model_view(_explainer(run_dir), _media)


@st.cache_data(ttl=60, show_spinner=False)
def _run_dir(db_url: str, _backend: services.Backend) -> str | None:
    with _backend.factory() as session:
        folder = services.explained_run_dir(session)
    return None if folder is None else str(folder)


def buttons(item: services.ReviewItem) -> None:
    """One button per answer, each with its key, all alike (a filled one would look chosen already)."""
    columns = st.columns(len(ANSWERS))
    for column, (answer, label, key, icon) in zip(columns, ANSWERS):
        column.button(f"{label} ({key})", key=f"review_{answer}", shortcut=key, on_click=_answer, args=(item, answer),
                      type="secondary", width="stretch", icon=icon)


def side_panel(item: services.ReviewItem, media, run_dir: str | None) -> None:  # noqa: ANN001 - ReviewMedia
    """The full frame for context, then the model's score and view (both off by default)."""
    if media.context is not None:
        st.image(media.context, caption=f"{item.filename}: full frame, the ROI boxed in cyan", width=300)
    else:
        st.info(f"{item.filename}: {media.context_note}")
    if media.outline is None:
        st.caption("No outline mask is stored for this stack.")
    st.button("Hide the model's view (M)" if st.session_state.get(MODEL_VIEW) else "Show the model's view (M)",
              key="review_model_view_button", shortcut="M", disabled=run_dir is None,
              on_click=lambda: st.session_state.update({MODEL_VIEW: not st.session_state.get(MODEL_VIEW)}),
              help="where the ensemble's evidence for 'stalled' lies, slice by slice (Grad-CAM of the run's "
                   "members); hidden by default so that it does not anchor your answer"
                   if run_dir else "the model run's folder is not on this machine")
    if st.toggle("Show model score", key=SHOW_SCORE,
                 help="hidden by default so that the score does not anchor your answer"):
        st.metric("Model probability (stalled)", f"{item.probability:.3f}")
        with backend.factory() as session:
            st.caption(f"scored by run {retraining.scoring_run(session, item.vessel_id) or 'unknown'}")


@st.fragment
def _review() -> None:
    """The review area; an answer reruns only this fragment, not the whole app (less to redraw)."""
    items = services.review_items(backend, user)
    head, progress = st.columns([2, 3])
    head.title("Review")
    done = services.reviewed_since(backend, user, since=ui.session_started())
    progress.metric("Reviewed this session", done, help="stacks you answered since logging in")
    queue_line = progress.empty()  # filled last: the video must not wait for the queue counts
    if not items:
        st.success("Nothing left for you to review. Thank you!")
        return

    item = items[0]
    shown_at.setdefault(item.vessel_id, time.monotonic())
    buttons(item)
    try:
        media = services.media_for(backend, item)
    except Exception as error:  # noqa: BLE001 - any failure to read or encode is shown, the stack can be marked bad
        st.error(f"{item.filename}: cannot show this stack ({error}). Mark it as a bad stack (B).")
        return

    run_dir = _run_dir(str(backend.engine.url), backend)
    model_video = None
    if st.session_state.get(MODEL_VIEW) and run_dir is not None:
        with st.spinner("Computing the model's view..."):
            model_video = _model_view(run_dir, item.filename, media)
    viewer, context = st.columns([3, 2])
    with viewer:
        review_viewer(media, model_video=model_video, key="review_viewer")
    with context:
        side_panel(item, media, run_dir)

    services.prefetch(backend, items[1:])  # after the page is drawn: encoding must not slow the drawing
    remaining, routed = _remaining(str(backend.engine.url), done, backend)
    queue_line.caption(f"{remaining:,} of {routed:,} routed stacks still need reviews"
                       + (f" · last: {st.session_state['review_last']}" if "review_last" in st.session_state else ""))


st.html(COMPACT)
_review()
