"""The plain decode loop: the baseline program the whole ``stalltriage ingest`` command is measured against.

    python -m bench.decode_loop VIDEO_DIR [--workers 2] [--threads 1]

Decodes every frame of every ``.mp4`` in ``VIDEO_DIR`` with a plain ``multiprocessing.Pool`` of
``--workers`` processes (the platform's default start method), one FFmpeg thread per process as
the ingest's workers use (``core.video.CropOptions.threads``), and does nothing else: no
outline search, no store, no database. It is the least any program that reads every frame
of these files has to do, start-up included, so ``bench.ingest_command`` runs it as a fresh
process just like the command.
"""

from __future__ import annotations

import argparse
import multiprocessing
from functools import partial
from pathlib import Path

from core.video.mp4 import iter_frames


def decode(path: str, threads: int) -> int:
    """Decode every frame of ``path``; the number of frames."""
    return sum(1 for _ in iter_frames(path, threads=threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video_dir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="FFmpeg threads per process (0: FFmpeg picks)")
    args = parser.parse_args()
    paths = sorted(str(p) for p in args.video_dir.iterdir() if p.suffix.lower() == ".mp4")
    with multiprocessing.Pool(args.workers) as pool:
        frames = sum(pool.imap_unordered(partial(decode, threads=args.threads), paths))
    print(f"decoded {len(paths)} stacks, {frames} frames")


if __name__ == "__main__":
    main()
