"""``stalltriage explain STACK --out video.mp4``: what the model sees in one stack, as a video.

Left, the stack as reviewers see it (upscaled, orange outline); right, the same slices with the
ensemble's Grad-CAM heat map (see :mod:`core.model.saliency`). For papers and talks. The model is the
run the review queue serves (the active policy's run, else the newest), or ``--model RUN_DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from triage_app.settings import add_common_options, positive_number, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``explain``."""
    parser = subparsers.add_parser("explain", help="write a video of where the model's evidence lies in one stack",
                                   description="""Side by side: the stack with its outline, and the ensemble's
                                               Grad-CAM heat map, slice by slice.""")
    parser.add_argument("stack", metavar="STACK", help="the stack: its filename (100109.mp4) or store key (100109)")
    parser.add_argument("--out", type=Path, required=True, help="output video (.mp4)")
    parser.add_argument("--model", type=Path, default=None, metavar="RUN_DIR",
                        help="a finished training run (default: the run the review queue serves, from the database)")
    parser.add_argument("--fps", type=positive_number, default=5.0, help="slices per second (default 5)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _run_dir(args: argparse.Namespace, db_url: str) -> Path | None:
    if args.model is not None:
        return args.model
    from triage_app.database import command_session
    from triage_app.services import explained_run_dir

    with command_session(db_url) as session:
        return explained_run_dir(session)


def side_by_side(volume, mask, saliency, *, scale: int):  # noqa: ANN001, ANN201 - numpy arrays
    """RGB frames: the upscaled stack with its outline, next to the same with the heat map."""
    import cv2
    import numpy as np

    from core.model.saliency import overlay
    from triage_app.media import outline_overlay

    def big(frames: np.ndarray) -> np.ndarray:
        return np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for f in frames])

    plain, heat = big(np.repeat(volume[..., None], 3, axis=-1)), big(overlay(volume, saliency))
    if mask is not None:
        line = outline_overlay(mask, scale, thickness=2)[:plain.shape[1], :plain.shape[2]]  # survives yuv420p
        drawn = line[..., 3] == 255
        plain[:, drawn], heat[:, drawn] = line[drawn, :3], line[drawn, :3]
    gap = np.full((len(plain), plain.shape[1], max(4, scale * 2), 3), 255, np.uint8)
    return np.concatenate([plain, gap, heat], axis=2)


def run(args: argparse.Namespace) -> int:
    """Explain one stack; 1 with one line of error when the stack, the run or the output is unusable."""
    from core.model.predict import load_ensemble
    from core.model.saliency import Explainer
    from core.video.mp4 import write_mp4
    from core.video.store import StoreError, VolumeStore, key_for
    from db.migrate import SchemaError
    from triage_app.media import display_scale

    settings = resolve(args)
    if args.out.suffix.lower() != ".mp4":
        print(f"error: {args.out}: the output file must end in .mp4")
        return 1
    try:
        run_dir = _run_dir(args, settings.db_url)
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    if run_dir is None:
        print("error: the database names no model run whose folder is on this machine: pass --model RUN_DIR")
        return 1
    try:
        key = key_for(args.stack)
        with VolumeStore(settings.store_path, readonly=True) as store:
            if key not in store:
                print(f"error: {args.stack}: not in the volume store {settings.store_path}")
                return 1
            stored = store.get(key)
            volume, mask = stored.volume.copy(), None if stored.mask is None else stored.mask.copy()
        explainer = Explainer(load_ensemble(run_dir))
    except (StoreError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}")
        return 1
    filename = args.stack if args.stack.endswith(".mp4") else f"{key}.mp4"
    saliency = explainer.explain(filename, volume, mask)
    frames = side_by_side(volume, mask, saliency, scale=display_scale(*volume.shape[1:], target=240))
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(args.out, frames, fps=args.fps)
    except OSError as error:
        print(f"error: {args.out}: {error.strerror or error}")
        return 1
    members = len(explainer.members(filename))
    print(f"wrote {args.out}: {len(frames)} slices of {key}, Grad-CAM of {members} member(s) of {run_dir}")
    return 0
