"""Fit a fold's training into its time budget: shorten the LR schedule, stop at the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

from training.engine import WarmupCosine


class StepClock:
    """Asked before every training step: shortens the cosine schedule to end at the deadline.

    It measures the wall time per step since it started (validation passes between epochs
    included) and sets the schedule's total to the steps that fit before the deadline (at most the
    configured total, with a safety margin ``overhead``), so the learning rate reaches its floor when
    the time runs out. Past the deadline it answers "stop". Under DDP, ``sync`` hands rank 0's ``[total, stop]`` to every rank, so all ranks follow
    the same schedule and stop at the same step.

    Parameters
    ----------
    schedule
        The scheduler's :class:`training.engine.WarmupCosine` (its ``total`` is edited).
    deadline
        ``time.monotonic()`` value by which training must end.
    sync
        ``[total, stop] -> [total, stop]`` from rank 0 (identity without DDP).
    """

    def __init__(self, schedule: WarmupCosine, deadline: float, *, sync: Callable[[list[int]], list[int]],
                 overhead: float = 0.05) -> None:
        self.schedule, self.deadline, self.sync, self.overhead = schedule, deadline, sync, overhead
        self.full_total = schedule.total
        self._origin: tuple[float, int] | None = None

    def __call__(self, step: int) -> bool:
        """Called with the global step count before a step; True means stop now."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, step)
        t0, s0 = self._origin
        total = self.schedule.total
        if step - s0 >= 2:  # the first step carries start-up costs
            per_step = (now - t0) / (step - s0) * (1 + self.overhead)
            total = min(self.full_total, step + int(max(0.0, self.deadline - now) / per_step))
        total, stop = self.sync([max(total, 1), int(now > self.deadline)])
        self.schedule.total = total
        return bool(stop)
