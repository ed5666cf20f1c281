"""Fit a fold's training into its time budget: shorten the LR schedule, stop at the deadline."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from training.engine import WarmupCosine


class StepClock:
    """Asked before every training step: shortens the cosine schedule to end at the deadline.

    It measures the wall time per step over the last ``window`` steps (validation passes between
    epochs included) and sets the schedule's total to the steps that fit before the deadline (at
    most the configured total, with a safety margin ``overhead``), so the learning rate reaches its
    floor when the time runs out. The recent window follows a machine whose load changes: when
    other work ends, the schedule grows back into the time it frees instead of ending early. Past
    the deadline it answers "stop". Under DDP, ``sync`` hands rank 0's ``[total, stop]`` to every
    rank, so all ranks follow the same schedule and stop at the same step.

    Parameters
    ----------
    schedule
        The scheduler's :class:`training.engine.WarmupCosine` (its ``total`` is edited).
    deadline
        ``time.monotonic()`` value by which training must end.
    sync
        ``[total, stop] -> [total, stop]`` from rank 0 (identity without DDP).
    window
        Steps the time per step is averaged over.
    """

    def __init__(self, schedule: WarmupCosine, deadline: float, *, sync: Callable[[list[int]], list[int]],
                 overhead: float = 0.05, window: int = 200) -> None:
        self.schedule, self.deadline, self.sync, self.overhead = schedule, deadline, sync, overhead
        self.full_total = schedule.total
        self.window = window
        self._marks: deque[tuple[float, int]] = deque()  # (time, step), the oldest within the window

    def __call__(self, step: int) -> bool:
        """Called with the global step count before a step; True means stop now."""
        now = time.monotonic()
        self._marks.append((now, step))
        while len(self._marks) > 2 and step - self._marks[1][1] >= self.window:
            self._marks.popleft()
        t0, s0 = self._marks[0]
        total = self.schedule.total
        if step - s0 >= 2:  # the first step carries start-up costs
            per_step = (now - t0) / (step - s0) * (1 + self.overhead)
            total = min(self.full_total, step + int(max(0.0, self.deadline - now) / per_step))
        total, stop = self.sync([max(total, 1), int(now > self.deadline)])
        self.schedule.total = total
        return bool(stop)
