"""The review viewer: the stack being reviewed and the next one, already loaded in the browser, with
the answer keys, as a Streamlit ``components.v2`` component.

Why the next stack lives in the browser: an answer that waits for the server (store the review,
re-run the page, send and decode the next video) costs the reviewer a page round trip per stack.
The viewer holds two stacks, the one shown and the next one (its video decoded in a hidden layer,
its outline and full frame loaded), so an answer key swaps to the next stack at once. The answer
itself goes to the server in the background: the viewer keeps every answer the server has not
acknowledged (also in the tab's ``sessionStorage``, so a reload resends it), sends the whole list
with each new answer, and sends it again a few seconds after a failed write. The server stores an
answer once and acknowledges it in the data of its next run (see ``app_pages/review.py``), then
sends the new pair. Answering faster than the server can send the next stack shows "Loading the
next stack"; a key pressed then answers nothing.

The component runs in the app page itself (no iframe), so its key handler and Streamlit's
shortcut (M, the model's view) listen on the same document; the scrub bar never takes the
keyboard focus, and the viewer releases the focus from check boxes and toggles after a click
(Streamlit ignores shortcut keys while an input has the focus).

Keys handled here: S F U B answer, Space or K play/pause, ← → (or , .) step one slice, O outline
on/off.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from triage_app.media import FPS, ReviewMedia

LEGEND = "Model's view: the brighter the colour, the more of the ensemble's evidence for stalled (Grad-CAM)"
HINT = "Space play/pause · ← → step a slice · O outline · M model's view · S F U B answer"
ANSWER_BUTTONS = (("stalled", "Stalled", "s"), ("flowing", "Flowing", "f"), ("unsure", "Unsure", "u"),
                  ("bad_stack", "Bad stack", "b"))
"""(answer, label, key): one button and one key per answer, all alike (a filled one would look chosen)."""
CAPTION = "full frame, the ROI boxed in cyan"
KEY = "review_viewer"
"""The viewer's widget key: its ``answers`` state is ``st.session_state[KEY]["answers"]``."""

_BUTTONS = "".join(f'<button type="button" tabindex="-1" data-answer="{answer}" data-key="{key}">{label} '
                   f'({key.upper()})</button>' for answer, label, key in ANSWER_BUTTONS)
_LAYER = ('<div class="layer"><video muted loop playsinline preload="auto"></video>'
          '<img class="outline" alt="" /></div>')
_HTML = f"""
<div class="viewer">
  <div class="main">
    <div class="stage" data-testid="review-stage" data-name="" data-pending="0">
      {_LAYER}{_LAYER}
      <div class="message"></div>
    </div>
    <div class="controls">
      <button class="play" type="button" tabindex="-1">Pause</button>
      <div class="scrub"><div class="fill"></div></div>
      <span class="where"></span>
    </div>
    <div class="answers">{_BUTTONS}</div>
    <div class="hint"></div>
  </div>
  <div class="side">
    <div class="frames"><img class="context" alt="" /><img class="context" alt="" /></div>
    <div class="caption"></div>
    <div class="note"></div>
    <div class="score"></div>
  </div>
</div>
"""

_CSS = """
.viewer { font-family: sans-serif; font-size: 14px; display: flex; gap: 24px; align-items: flex-start; }
.main { flex: 3; min-width: 0; }
.side { flex: 2; min-width: 0; }
.stage { position: relative; display: inline-block; line-height: 0; background: #000; min-width: 200px;
         min-height: 120px; }
.stage .layer { position: absolute; left: 0; top: 0; visibility: hidden; }
.stage .layer.active { position: relative; visibility: visible; }
.stage video { display: block; height: min(52vh, 520px); max-width: 100%; }
.stage img.outline { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.stage img.outline:not([src]) { display: none; }
.stage[data-outline="off"] img.outline { display: none; }
.stage[data-view="model"] { outline: 3px solid #f5a623; }
.stage .message { position: absolute; left: 0; top: 0; padding: 12px; color: #fff; line-height: 1.4; }
.stage .message:empty { display: none; }
.controls { display: flex; align-items: center; gap: 10px; margin-top: 6px; max-width: 100%; }
.controls .play { min-width: 64px; padding: 2px 8px; }
.scrub { flex: 1; height: 10px; background: #ddd; border-radius: 5px; cursor: pointer; position: relative; }
.scrub .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #1f77b4; border-radius: 5px; }
.where { min-width: 110px; font-variant-numeric: tabular-nums; }
.answers { display: flex; gap: 8px; margin-top: 8px; }
.answers button { flex: 1; padding: 6px 0; border: 1px solid #ccc; border-radius: 8px; background: #fff;
                  font-size: 15px; cursor: pointer; }
.answers button:hover { border-color: #ff4b4b; color: #ff4b4b; }
.hint { color: #666; margin-top: 4px; }
.frames img.context { width: 300px; max-width: 100%; display: none; }
.frames img.context.active[src] { display: block; }
.caption { color: #666; margin-top: 4px; }
.note { margin-top: 6px; }
.score { margin-top: 10px; font-size: 16px; }
.score:empty, .note:empty { display: none; }
"""

_JS = """
function makeViewer(root) {
    const stage = root.querySelector(".stage");
    const layers = [...root.querySelectorAll(".layer")].map((layer) => ({
        layer, video: layer.querySelector("video"), outline: layer.querySelector("img.outline"), item: null }));
    const contexts = [...root.querySelectorAll("img.context")];
    const message = root.querySelector(".message");
    const caption = root.querySelector(".caption");
    const note = root.querySelector(".note");
    const score = root.querySelector(".score");
    const play = root.querySelector(".play");
    const scrub = root.querySelector(".scrub");
    const fill = root.querySelector(".fill");
    const where = root.querySelector(".where");
    const s = { data: null, send: null, active: 0, shown: null, shownAt: 0, answered: new Set(), pending: [],
                sent: 0, most: 0, retry: null, user: null };
    const current = () => layers[s.active];
    const video = () => current().video;
    const depth = () => (s.shown ? s.shown.depth : 1);
    const slice = () => Math.min(depth() - 1, Math.floor(video().currentTime * s.data.fps + 1e-3));
    const tick = () => {
        where.textContent = s.shown ? `slice ${slice() + 1} / ${depth()}` : "";
        fill.style.width = s.shown ? `${100 * (slice() + 1) / depth()}%` : "0";
        play.textContent = video().paused ? "Play" : "Pause";
    };
    const seek = (i) => {
        video().pause();
        video().currentTime = (Math.max(0, Math.min(depth() - 1, i)) + 0.5) / s.data.fps;
        tick();
    };
    const storage = () => `stalltriage-pending-${s.user}`;
    const keep = () => {  // what the server has not acknowledged survives a reload of the tab
        window.sessionStorage.setItem(storage(), JSON.stringify(s.pending));
        s.most = Math.max(s.most, s.pending.length);
        stage.dataset.pending = String(s.pending.length);
        stage.dataset.mostPending = String(s.most);
    };
    const send = () => { s.send("answers", { sent: ++s.sent, pending: s.pending }); };
    const waiting = () => s.data.items.filter((item) => !s.answered.has(item.id));
    const following = () => waiting().find((item) => !s.shown || item.id !== s.shown.id) || null;

    const load = (slot, item) => {  // a stack into a layer: its video decodes there, hidden until shown
        slot.item = item;
        slot.source = item.video;
        if (item.video) { slot.video.src = item.video; } else { slot.video.removeAttribute("src"); }
        if (item.outline) { slot.outline.src = item.outline; } else { slot.outline.removeAttribute("src"); }
        const frame = contexts[layers.indexOf(slot)];
        if (item.context) { frame.src = item.context; } else { frame.removeAttribute("src"); }
    };
    const show = (item) => {
        const other = layers[1 - s.active];
        if (other.item && other.item.id === item.id && other.source === item.video) {
            current().video.pause();
            s.active = 1 - s.active;
        } else if (!current().item || current().item.id !== item.id) {
            load(current(), item);
        }
        layers.forEach((slot, i) => slot.layer.classList.toggle("active", i === s.active));
        layers.forEach((slot, i) => slot.video.classList.toggle("active", i === s.active));
        contexts.forEach((frame, i) => frame.classList.toggle("active", i === s.active));
        s.shown = item;
        s.shownAt = performance.now();
        stage.dataset.name = item.name;
        stage.dataset.view = "plain";
        message.textContent = item.error || "";
        caption.textContent = item.context ? `${item.name}: ${s.data.caption}` : "";
        note.textContent = item.note ? `${item.name}: ${item.note}` : "";
        score.textContent = "";
        const v = video();
        if (item.video) {
            if (v.readyState >= 1 && v.currentTime !== 0) v.currentTime = 0;  // a seek: no frame until it lands
            v.play().catch(() => {});
        }
        tick();
    };
    const showNothing = (text) => {
        s.shown = null;
        layers.forEach((slot) => slot.video.pause());
        layers.forEach((slot) => slot.layer.classList.remove("active"));
        contexts.forEach((frame) => frame.classList.remove("active"));
        stage.dataset.name = "";
        message.textContent = text;
        caption.textContent = note.textContent = score.textContent = "";
        tick();
    };
    const answer = (value) => {
        if (!s.shown) return;  // nothing on screen: nothing to answer
        const seconds = Math.round((performance.now() - s.shownAt) / 10) / 100;
        s.pending.push({ id: s.shown.id, answer: value, seconds });
        s.answered.add(s.shown.id);
        keep();
        const next = following();
        if (next) { show(next); } else { showNothing("Loading the next stack..."); }
        send();
    };
    const overlays = () => {  // the model's view and the score, only for the stack they were made for
        if (!s.shown) return;
        const model = s.data.model && s.data.model.id === s.shown.id ? s.data.model.video : null;
        const slot = current();
        const source = model || s.shown.video;
        if (source && slot.source !== source) {
            const v = slot.video, at = v.currentTime, paused = v.paused;
            slot.source = source;
            v.src = source;
            v.addEventListener("loadeddata", () => {
                v.currentTime = at;
                if (!paused) v.play().catch(() => {});
                tick();
            }, { once: true });
        }
        stage.dataset.view = model ? "model" : "plain";
        root.querySelector(".hint").textContent = (model ? s.data.legend + " · " : "") + s.data.hint;
        score.textContent = s.data.score && s.data.score.id === s.shown.id ? s.data.score.text : "";
    };

    const update = (data, setStateValue) => {
        s.data = data;
        s.send = setStateValue;
        if (s.user !== data.user) {  // answers this tab gave before a reload, not yet acknowledged
            s.user = data.user;
            s.pending = JSON.parse(window.sessionStorage.getItem(storage()) || "[]");
            s.pending.forEach((p) => s.answered.add(p.id));
            if (s.pending.length) send();
        }
        const acknowledged = new Set(data.acknowledged);
        s.pending = s.pending.filter((p) => !acknowledged.has(p.id));
        keep();
        const queue = waiting();
        if (!s.shown || !queue.some((item) => item.id === s.shown.id)) {
            if (queue.length) { show(queue[0]); } else { showNothing("Loading the next stack..."); }
        }
        const next = following();
        const other = layers[1 - s.active];
        if (next && (!other.item || other.item.id !== next.id)) load(other, next);
        overlays();
        const outlined = s.shown && s.shown.outline && window.sessionStorage.getItem("stalltriage-outline") !== "off";
        stage.dataset.outline = outlined ? "on" : "off";
        clearTimeout(s.retry);
        if (data.retry && s.pending.length) s.retry = setTimeout(send, 3000);
    };

    layers.forEach((slot) => {
        slot.video.ontimeupdate = () => slot === current() && tick();
        slot.video.onplay = slot.video.onpause = slot.video.ontimeupdate;
    });
    play.onclick = () => { video().paused ? video().play() : video().pause(); };
    const scrubTo = (event) => {
        const box = scrub.getBoundingClientRect();
        seek(Math.floor((event.clientX - box.left) / box.width * depth()));
    };
    scrub.onpointerdown = (event) => { scrub.setPointerCapture(event.pointerId); scrubTo(event); };
    scrub.onpointermove = (event) => { if (event.buttons) scrubTo(event); };
    root.querySelectorAll(".answers button").forEach((button) => {
        button.onclick = () => answer(button.dataset.answer);
    });
    const keys = Object.fromEntries([...root.querySelectorAll(".answers button")].map(
        (button) => [button.dataset.key, button.dataset.answer]));
    const typing = (el) => el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT"
        || (el.tagName === "INPUT" && !["checkbox", "radio", "range", "button"].includes(el.type)));
    const onKey = (event) => {
        if (!root.isConnected) {  // the viewer left the page (another page, queue done): stand down
            document.removeEventListener("keydown", onKey, true);
            document.removeEventListener("click", release, true);
            document.removeEventListener("change", release, true);
            return;
        }
        if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
        const key = event.key.toLowerCase();
        let handled = true;
        if (keys[key]) { if (!event.repeat) answer(keys[key]); }
        else if (key === " " || key === "k") { video().paused ? video().play() : video().pause(); }
        else if (key === "arrowleft" || key === ",") { seek(slice() - 1); }
        else if (key === "arrowright" || key === ".") { seek(slice() + 1); }
        else if (key === "o" && s.shown && s.shown.outline) {
            stage.dataset.outline = stage.dataset.outline === "on" ? "off" : "on";
            window.sessionStorage.setItem("stalltriage-outline", stage.dataset.outline);
        } else { handled = false; }
        if (handled) { event.preventDefault(); event.stopPropagation(); }
    };
    const release = () => setTimeout(() => {  // Streamlit ignores shortcuts while an input has the focus
        const el = document.activeElement;
        if (el && el.tagName === "INPUT" && ["checkbox", "radio", "range"].includes(el.type)) el.blur();
    }, 0);
    const previous = window.__stalltriageViewer;
    if (previous) {
        document.removeEventListener("keydown", previous.onKey, true);
        document.removeEventListener("click", previous.release, true);
        document.removeEventListener("change", previous.release, true);
    }
    window.__stalltriageViewer = { onKey, release };
    document.addEventListener("keydown", onKey, true);
    document.addEventListener("click", release, true);
    document.addEventListener("change", release, true);
    return { update };
}

export default function (component) {
    const { data, parentElement, setStateValue } = component;
    if (!data) return;
    const root = parentElement.querySelector(".viewer");
    root.__viewer = root.__viewer || makeViewer(root);
    root.__viewer.update(data, setStateValue);
}
"""

_viewer = st.components.v2.component("stalltriage_review_viewer", html=_HTML, css=_CSS, js=_JS)


def data_url(payload: bytes, mime: str) -> str:
    """``payload`` as a ``data:`` URL (the component receives it as JSON, no file is served)."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def png_url(image: np.ndarray) -> str:
    """An RGB or RGBA image as a PNG ``data:`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return data_url(buffer.getvalue(), "image/png")


@st.cache_data(max_entries=16, show_spinner=False)
def stack_data(vessel_id: int, filename: str, _media: ReviewMedia) -> dict:
    """What the viewer needs of one prepared stack (encoded once: the pair is sent on every run)."""
    return {"id": vessel_id, "name": filename, "depth": _media.depth, "video": data_url(_media.video, "video/mp4"),
            "outline": None if _media.outline is None else png_url(_media.outline),
            "context": None if _media.context is None else png_url(_media.context),
            "note": _media.context_note if _media.context is None else
            ("" if _media.outline is not None else "No outline mask is stored for this stack."),
            "error": None}


def broken_stack_data(vessel_id: int, filename: str, error: Exception) -> dict:
    """A stack whose media cannot be prepared: the viewer says why, and B still marks it a bad stack."""
    return {"id": vessel_id, "name": filename, "depth": 1, "video": None, "outline": None, "context": None,
            "note": "", "error": f"{filename}: cannot show this stack ({error}). Mark it as a bad stack (B)."}


def review_viewer(stacks: Sequence[dict], *, user_id: int, acknowledged: Sequence[int], retry: bool,
                  model: tuple[int, bytes] | None, score: tuple[int, str] | None) -> None:
    """Mount the viewer with ``stacks`` (the one to show first, then the next, from :func:`stack_data`).

    ``acknowledged``: vessel ids whose answers the server stored or refused (the viewer stops
    sending them); ``retry``: a write failed, send the rest again shortly; ``model`` and
    ``score``: (vessel id, the model's view video / the score line) of the first stack, shown only
    while that stack is on screen. The answers the viewer sends are its ``answers`` state,
    ``{"sent": n, "pending": [{"id", "answer", "seconds"}, ...]}``, which the page reads at the top
    of its run, before anything is drawn (Streamlit keeps a state key only with a callback).
    """
    _viewer(key=KEY, on_answers_change=lambda: None, data={
        "user": user_id, "items": list(stacks), "acknowledged": list(acknowledged), "retry": retry,
        "model": None if model is None else {"id": model[0], "video": data_url(model[1], "video/mp4")},
        "score": None if score is None else {"id": score[0], "text": score[1]},
        "fps": FPS, "hint": HINT, "legend": LEGEND, "caption": CAPTION})
