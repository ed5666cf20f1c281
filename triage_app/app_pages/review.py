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


items = services.review_items(backend, user)
stats = services.queue_progress(backend)
done = st.session_state.get("review_done", 0)
head, progress = st.columns([2, 3])
head.title("Review")
progress.metric("Reviewed this session", done, help="stacks you answered since logging in")
progress.caption(f"{stats.remaining} of {stats.routed_to_humans} routed stacks still need reviews "
                 + (f"· last: {st.session_state['review_last']}" if "review_last" in st.session_state else ""))
if not items:
    st.success("Nothing left for you to review. Thank you!")
    st.stop()

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
    st.stop()

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
