"""The review viewer: one player for a stack (play/pause, slice stepping and scrubbing, outline and
model-view overlays), driven by keys, as a Streamlit ``components.v2`` component.

The component runs in the app page itself (no iframe), so its key handler and Streamlit's answer
shortcuts listen on the same document: a key is never swallowed by a frame, and the scrub bar is a
plain element that never takes the keyboard focus. It also releases the focus from check boxes,
toggles and sliders after they are clicked (Streamlit ignores shortcut keys while an input has the
focus, which is what broke the keys after the old frame slider was used).

Keys handled here: Space or K play/pause, ← → (or , .) step one slice, O outline on/off. The
answer keys and M (the model's view) are Streamlit button shortcuts on the page.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
from PIL import Image

from triage_app.media import FPS, ReviewMedia

LEGEND = "Model's view: the brighter the colour, the more of the ensemble's evidence for stalled (Grad-CAM)"
HINT = "Space play/pause · ← → step a slice · O outline · M model's view · S F U B answer"

_HTML = """
<div class="viewer">
  <div class="stage" data-testid="review-stage">
    <video muted loop playsinline preload="auto"></video>
    <img class="outline" alt="" />
  </div>
  <div class="controls">
    <button class="play" type="button" tabindex="-1">Pause</button>
    <div class="scrub"><div class="fill"></div></div>
    <span class="where"></span>
  </div>
  <div class="hint"></div>
</div>
"""

_CSS = """
.viewer { font-family: sans-serif; font-size: 14px; }
.stage { position: relative; display: inline-block; line-height: 0; background: #000; }
.stage video { display: block; height: min(52vh, 520px); max-width: 100%; }
.stage img.outline { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.stage[data-outline="off"] img.outline { display: none; }
.stage[data-view="model"] { outline: 3px solid #f5a623; }
.controls { display: flex; align-items: center; gap: 10px; margin-top: 6px; max-width: 100%; }
.controls .play { min-width: 64px; padding: 2px 8px; }
.scrub { flex: 1; height: 10px; background: #ddd; border-radius: 5px; cursor: pointer; position: relative; }
.scrub .fill { position: absolute; left: 0; top: 0; bottom: 0; background: #1f77b4; border-radius: 5px; }
.where { min-width: 110px; font-variant-numeric: tabular-nums; }
.hint { color: #666; margin-top: 4px; }
"""

_JS = """
export default function (component) {
    const { data, parentElement } = component;
    if (!data) return;
    const root = parentElement.querySelector(".viewer");
    const stage = root.querySelector(".stage");
    const video = root.querySelector("video");
    const outline = root.querySelector("img.outline");
    const play = root.querySelector(".play");
    const scrub = root.querySelector(".scrub");
    const fill = root.querySelector(".fill");
    const where = root.querySelector(".where");
    root.querySelector(".hint").textContent = (data.view === "model" && data.model ? data.legend + " · " : "")
        + data.hint;
    const depth = data.depth, fps = data.fps;
    const slice = () => Math.min(depth - 1, Math.floor(video.currentTime * fps + 1e-3));
    const show = () => {
        where.textContent = `slice ${slice() + 1} / ${depth}`;
        fill.style.width = `${100 * (slice() + 1) / depth}%`;
        play.textContent = video.paused ? "Play" : "Pause";
    };
    const seek = (i) => {
        video.pause();
        video.currentTime = (Math.max(0, Math.min(depth - 1, i)) + 0.5) / fps;
        show();
    };
    const source = data.view === "model" && data.model ? data.model : data.video;
    if (stage.dataset.source !== source.slice(-64) + data.name) {
        const same = stage.dataset.name === data.name;
        const at = same ? video.currentTime : 0, paused = same ? video.paused : false;
        stage.dataset.source = source.slice(-64) + data.name;
        stage.dataset.name = data.name;
        video.src = source;
        video.addEventListener("loadeddata", () => {
            video.currentTime = at;
            if (!paused) video.play().catch(() => {});
            show();
        }, { once: true });
    }
    stage.dataset.view = data.view === "model" && data.model ? "model" : "plain";
    if (data.outline) { outline.src = data.outline; } else { outline.removeAttribute("src"); }
    const saved = window.sessionStorage.getItem("stalltriage-outline");
    stage.dataset.outline = data.outline && saved !== "off" ? "on" : "off";
    video.ontimeupdate = show; video.onplay = show; video.onpause = show;
    play.onclick = () => { video.paused ? video.play() : video.pause(); };
    const scrubTo = (event) => {
        const box = scrub.getBoundingClientRect();
        seek(Math.floor((event.clientX - box.left) / box.width * depth));
    };
    scrub.onpointerdown = (event) => { scrub.setPointerCapture(event.pointerId); scrubTo(event); };
    scrub.onpointermove = (event) => { if (event.buttons) scrubTo(event); };

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
        if (key === " " || key === "k") { video.paused ? video.play() : video.pause(); }
        else if (key === "arrowleft" || key === ",") { seek(slice() - 1); }
        else if (key === "arrowright" || key === ".") { seek(slice() + 1); }
        else if (key === "o" && data.outline) {
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
    show();
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


def review_viewer(media: ReviewMedia, *, model_video: bytes | None, key: str) -> None:
    """Mount the viewer for ``media``; with ``model_video`` it plays the model's view instead."""
    _viewer(key=key, data={
        "name": media.filename, "depth": media.depth, "fps": FPS, "hint": HINT, "legend": LEGEND,
        "video": data_url(media.video, "video/mp4"),
        "model": None if model_video is None else data_url(model_video, "video/mp4"),
        "view": "model" if model_video is not None else "plain",
        "outline": None if media.outline is None else png_url(media.outline)})
