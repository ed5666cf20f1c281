"""The parallel, resumable decode → crop → store pipeline.

Worker processes get file paths and send back cropped volumes (small: the ROI only); the parent
alone writes to the LMDB store, in batched transactions. A file's result is yielded only after
its batch is committed, so whoever records results (the CLI, the database) never records a
stack as stored that a crash could still lose. Keys already in the store are skipped, so a
rerun after a crash or kill resumes where the last committed batch ended.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from core.video.crop import CropOptions, CroppedStack, StackError, read_stack
from core.video.store import StoredStack, VolumeStore, key_for
from core.video.workers import worker_context

log = logging.getLogger(__name__)

INGESTED, SKIPPED, FAILED = "ingested", "skipped", "failed"
AHEAD = 32
"""Stacks per worker submitted for decoding and not yet read (see ``_decoding``)."""


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file: ``status`` is ``"ingested"``, ``"skipped"`` (already stored)
    or ``"failed"`` (``error`` says why in one line). ``trace`` is the traceback of an
    unexpected failure (a bug rather than a bad file), for a log file, not the console. ROI,
    frame count and frame size are known for stored stacks (read back from the store for
    skipped ones)."""

    filename: str
    key: str
    status: str
    error: str | None = None
    trace: str | None = None
    roi: tuple[int, int, int, int] | None = None
    num_frames: int | None = None
    frame_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Pairing:
    """Stack files matched with metadata rows by filename.

    ``paths`` are the files that have a row (in row order); ``no_file`` the row filenames with no
    file; ``no_row`` the files with no row.
    """

    paths: list[Path]
    no_file: list[str]
    no_row: list[Path]


def find_stacks(video_dir: str | Path) -> list[Path]:
    """The ``.mp4`` files (any case) directly inside ``video_dir``, sorted by name."""
    return sorted(p for p in Path(video_dir).iterdir() if p.suffix.lower() == ".mp4" and p.is_file())


def pair_with_metadata(files: Iterable[Path], filenames: Iterable[str]) -> Pairing:
    """Match stack files to metadata filenames (exact file names, as the competition CSVs use)."""
    by_name = {path.name: path for path in files}
    listed = list(filenames)
    wanted = set(listed)
    return Pairing(paths=[by_name[name] for name in listed if name in by_name],
                   no_file=[name for name in listed if name not in by_name],
                   no_row=[path for name, path in by_name.items() if name not in wanted])


def quiet_decoder_logs() -> None:
    """Silence FFmpeg's and OpenCV's own stderr chatter about broken files (we report them).

    Must run before the process's first decode; an explicit setting in the environment wins.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    level = getattr(cv2.utils.logging, f"LOG_LEVEL_{os.environ['OPENCV_LOG_LEVEL'].upper()}", None)
    if level is not None:  # OpenCV read the variable on import, maybe before it was set
        cv2.utils.logging.setLogLevel(level)


def _worker_init() -> None:
    quiet_decoder_logs()
    cv2.setNumThreads(1)


@dataclass(frozen=True)
class _Failure:
    """Why a file could not be cropped; ``trace`` only for an unexpected exception."""

    error: str
    trace: str | None = None


def _crop(job: tuple[str, CropOptions]) -> tuple[str, CroppedStack | _Failure]:
    path, options = job
    try:
        return path, read_stack(path, options)
    except StackError as err:
        return path, _Failure(str(err))
    except Exception as err:  # noqa: BLE001 - one bad file must never stop the run
        return path, _Failure(f"{path}: unexpected error: {type(err).__name__}: {err}", traceback.format_exc())


def _stored_result(path: Path, key: str, store: VolumeStore) -> IngestResult:
    meta = store.get(key).meta
    return IngestResult(path.name, key, SKIPPED, roi=tuple(meta.get("roi", ())) or None,
                        num_frames=meta.get("num_frames"), frame_size=tuple(meta.get("frame_size", ())) or None)


def _ok_result(path: str, key: str, stack: CroppedStack) -> IngestResult:
    return IngestResult(Path(path).name, key, INGESTED, roi=stack.roi, num_frames=stack.num_frames,
                        frame_size=stack.frame_size)


@contextmanager
def _decoding(jobs: list[tuple[str, CropOptions]], workers: int
              ) -> Iterator[Iterator[tuple[str, CroppedStack | _Failure]]]:
    """The cropped stacks (or failures) of ``jobs``, in the order they finish; with several
    workers they start decoding when the block is entered."""
    if workers <= 1 or len(jobs) <= 1:
        quiet_decoder_logs()  # not _worker_init: the caller's OpenCV thread setting stays its own
        yield map(_crop, jobs)
        return
    # concurrent.futures, not multiprocessing.Pool: Pool's worker-handler thread wakes whenever a
    # result waits in the pipe, so with results of a few hundred KB (the ROI) it spins while the
    # result thread reads them (~1 CPU-second per 300 stacks, taken from the workers when there
    # are as many workers as cores). One stack per task: a task costs ~0.1 ms against tens of ms
    # of decoding, and with bigger chunks the last chunk keeps one worker busy while others wait.
    # At most AHEAD tasks per worker are submitted and not yet read, so memory does not grow with
    # the number of files, while a caller busy elsewhere (the CLI's database set-up) still finds
    # a second or two of decoding done.
    todo = iter(jobs)
    executor = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_worker_init)

    pending = {executor.submit(_crop, job) for job in islice(todo, AHEAD * workers)}

    def finished() -> Iterator[tuple[str, CroppedStack | _Failure]]:
        nonlocal pending
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            pending |= {executor.submit(_crop, job) for job in islice(todo, len(done))}
            for future in done:
                yield future.result()

    try:
        outcomes = finished()
        with closing(outcomes):
            yield outcomes
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def ingest(paths: Sequence[str | Path], store_path: str | Path, *, workers: int | None = None,
           options: CropOptions = CropOptions(), batch_size: int = 32, batch_seconds: float = 2.0,
           progress: bool | None = None) -> Iterator[IngestResult]:
    """Crop every stack in ``paths`` into the store at ``store_path``; yield one result per file.

    Parameters
    ----------
    paths
        Stack files; their filename stems are the store keys (see :func:`core.video.store.key_for`).
    store_path
        The volume store directory (created if missing). An unusable path raises
        :class:`core.video.store.StoreError` before any file is decoded.
    workers
        Decoding processes (default: all cores); 1 decodes in this process.
    batch_size, batch_seconds
        A transaction is committed every ``batch_size`` stacks or ``batch_seconds`` seconds,
        whichever comes first: bigger batches are faster, smaller ones lose less to a kill.
    progress
        Show a tqdm progress bar (``None``: only on a terminal).

    Nothing happens before the first result is asked for; :func:`started_ingest` starts at once.
    """
    results = _ingest(paths, store_path, workers, options, batch_size, batch_seconds, progress)
    next(results)  # the store is open and the workers are decoding
    yield from results


@contextmanager
def started_ingest(paths: Sequence[str | Path], store_path: str | Path, **kwargs: Any
                   ) -> Iterator[Iterator[IngestResult]]:
    """:func:`ingest` (same arguments) with the store opened and the workers decoding when the
    block is entered, so that decoding overlaps what the caller does before it reads the results
    (the CLI: its database set-up). Raises :class:`core.video.store.StoreError` on entering for an
    unusable store. Leaving the block stops the workers; stacks decoded but not yet read are not
    stored (a rerun decodes them again)."""
    options = {"workers": None, "options": CropOptions(), "batch_size": 32, "batch_seconds": 2.0,
               "progress": None, **kwargs}
    results = _ingest(paths, store_path, **options)
    next(results)
    with closing(results):
        yield results


def _ingest(paths: Sequence[str | Path], store_path: str | Path, workers: int | None, options: CropOptions,
            batch_size: int, batch_seconds: float, progress: bool | None) -> Iterator[IngestResult | None]:
    """Open the store, start the workers, yield None; then yield one result per file."""
    workers = workers or os.cpu_count() or 1
    store = VolumeStore(store_path)
    try:
        early, jobs = _plan(paths, store, options)
        with _decoding(jobs, workers) as outcomes:
            yield None
            yield from _run(len(paths), early, outcomes, store, batch_size, batch_seconds, progress)
    finally:
        store.close()


def _plan(paths: Sequence[str | Path], store: VolumeStore, options: CropOptions
          ) -> tuple[list[IngestResult], list[tuple[str, CropOptions]]]:
    """The results known without decoding (already stored, duplicate key) and the files to decode."""
    early: list[IngestResult] = []
    jobs: list[tuple[str, CropOptions]] = []
    keys: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        key = key_for(path.name)
        if key in keys:
            early.append(IngestResult(path.name, key, FAILED, f"{path}: same store key {key!r} as {keys[key]}"))
        elif key in store:
            early.append(_stored_result(path, key, store))
        else:
            keys[key] = str(path)
            jobs.append((str(path), options))
    return early, jobs


def _run(total: int, early: list[IngestResult], outcomes: Iterator[tuple[str, CroppedStack | _Failure]],
         store: VolumeStore, batch_size: int, batch_seconds: float, progress: bool | None) -> Iterator[IngestResult]:
    with tqdm(total=total, unit="stack", desc="ingest", disable=None if progress is None else not progress,
              dynamic_ncols=True) as bar:
        for result in early:
            bar.update()
            yield result
        pending: list[IngestResult] = []
        batch: list[tuple[str, StoredStack]] = []
        last_commit = time.monotonic()
        for path, outcome in outcomes:
            bar.update()
            key = key_for(Path(path).name)
            if isinstance(outcome, _Failure):
                if outcome.trace:
                    log.debug("unexpected failure on %s\n%s", path, outcome.trace)
                yield IngestResult(Path(path).name, key, FAILED, outcome.error, outcome.trace)
                continue
            batch.append((key, StoredStack(outcome.volume, outcome.mask, outcome.meta())))
            pending.append(_ok_result(path, key, outcome))
            if len(batch) >= batch_size or time.monotonic() - last_commit >= batch_seconds:
                store.put_many(batch)
                yield from pending
                batch, pending, last_commit = [], [], time.monotonic()
        if batch:
            store.put_many(batch)
            yield from pending
