"""Where the ingest's decoding workers come from: a fork server, startable before anything heavy is imported.

This module imports neither OpenCV nor the crop code, so a command can start the server as its
first act: the server then starts its interpreter and imports OpenCV (about 0.2 s) while the
command itself is still starting up, instead of after it (see ``bench/ingest_command.py``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
from multiprocessing import forkserver

WORKER_MODULE = "core.video.ingest"
"""Imported once by the fork server, so that each worker it forks starts in milliseconds."""


def worker_context() -> multiprocessing.context.BaseContext:
    """Start worker processes from a clean fork server, never by forking the caller.

    A forked child inherits OpenCV's thread pool without its threads; its first
    ``cv2.setNumThreads`` (or parallel OpenCV call) can then wait forever on a condition
    variable. The fork server is a fresh process (with :data:`WORKER_MODULE` preloaded) and never
    runs OpenCV itself.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_MODULE])
    return context


def start_worker_server() -> None:
    """Start the fork server now, if it is not running yet; the workers made later come from it."""
    worker_context()
    forkserver.ensure_running()
