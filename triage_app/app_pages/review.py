"""Review: watch the next stack (looping ROI video, frame slider, full frame) and answer with one key."""

from __future__ import annotations

import time

import streamlit as st

from triage_app import services, ui

ANSWERS = (("stalled", "Stalled", "S"), ("flowing", "Flowing", "F"), ("unsure", "Unsure", "U"),
           ("bad_stack", "Bad stack", "B"))

user = ui.require_login()
backend = ui.backend()
shown_at: dict[int, float] = st.session_state.setdefault("review_shown_at", {})


def _answer(item: services.ReviewItem, answer: str) -> None:
    started = shown_at.pop(item.vessel_id, None)
    services.submit_review(backend, user, item, answer=answer,
                           seconds=None if started is None else round(time.monotonic() - started, 2))
    st.session_state["review_done"] = st.session_state.get("review_done", 0) + 1
    st.session_state["review_last"] = f"{item.filename}: {answer.replace('_', ' ')}"


@st.cache_data(ttl=20, show_spinner=False)
def _remaining(db_url: str, _backend: services.Backend) -> tuple[int, int]:
    """Stacks still needing reviews and all routed ones (counted at most every 20 s: costly at scale)."""
    stats = services.queue_progress(_backend)
    return stats.remaining, stats.routed_to_humans


@st.fragment
def _review() -> None:
    """The review area; an answer reruns only this fragment, not the whole app (less to redraw)."""
    items = services.review_items(backend, user)
    head, progress = st.columns([2, 3])
    head.title("Review")
    progress.metric("Reviewed this session", st.session_state.get("review_done", 0),
                    help="stacks you answered since logging in")
    queue_line = progress.empty()  # filled last: the video must not wait for the queue counts
    if not items:
        st.success("Nothing left for you to review. Thank you!")
        return

    item = items[0]
    shown_at.setdefault(item.vessel_id, time.monotonic())
    buttons = st.columns(len(ANSWERS))
    for column, (answer, label, key) in zip(buttons, ANSWERS):
        column.button(f"{label} ({key})", key=f"review_{answer}", shortcut=key, on_click=_answer, args=(item, answer),
                      type="primary" if answer in ("stalled", "flowing") else "secondary", width="stretch")

    try:
        media = services.media_for(backend, item)
    except Exception as error:  # noqa: BLE001 - any failure to read or encode is shown, the stack can be marked bad
        st.error(f"{item.filename}: cannot show this stack ({error}). Mark it as a bad stack (B).")
        return

    video, context = st.columns([3, 2])
    with video:
        st.video(media.video, format="video/mp4", loop=True, autoplay=True, muted=True)
        frame = st.slider("Frame", 1, media.depth, 1, key=f"review_frame_{item.vessel_id}")
        st.image(media.frame(frame - 1), caption=f"slice {frame} of {media.depth}", width="stretch")
    with context:
        if media.context is not None:
            st.image(media.context, caption=f"{item.filename}: full frame, the ROI boxed in cyan", width="stretch")
        else:
            st.info(f"{item.filename}: {media.context_note}")
        if st.toggle("Show model score", key="review_show_score", value=False,
                     help="hidden by default so that the score does not anchor your answer"):
            st.metric("Model probability (stalled)", f"{item.probability:.3f}")

    services.prefetch(backend, items[1:])  # after the page is drawn: encoding must not slow the drawing
    remaining, routed = _remaining(str(backend.engine.url), backend)
    queue_line.caption(f"{remaining:,} of {routed:,} routed stacks still need reviews"
                       + (f" · last: {st.session_state['review_last']}" if "review_last" in st.session_state else ""))


_review()
