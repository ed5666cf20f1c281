"""--time-budget: training stops on time and still leaves a complete, usable ensemble."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from core.model.predict import predict_stacks
from core.model.rundir import RunDir
from tests.training.toy import TINY
from training import budget, cv
from training.budget import StepClock
from training.config import TrainConfig
from training.cv import train_cv
from training.engine import WarmupCosine


@pytest.mark.slow
def test_time_budget_stops_cleanly_with_a_usable_ensemble(toy_data, tmp_path):
    store, _, records = toy_data
    run = RunDir(tmp_path / "run")
    tic = time.monotonic()
    train_cv(records, store, run.root, TrainConfig(**(TINY | {"epochs": 500, "time_budget_min": 0.5})))
    elapsed = time.monotonic() - tic
    assert elapsed < 0.5 * 60 + 30  # budget plus start-up and the final out-of-fold passes
    metrics = pd.read_csv(run.metrics)
    assert metrics.groupby("fold")["epoch"].max().max() < 500
    # the cosine schedule was shortened to end on time (with 500 epochs planned the LR would still be
    # at its peak); how far it decayed depends on timing noise on a busy machine
    assert (metrics.groupby("fold")["lr"].last() < 0.75 * TrainConfig().lr).all()
    assert run.is_complete() and all(run.snapshots(k) for k in range(2))
    frame = predict_stacks(run.root, records, store, progress=False)
    assert frame["probability"].notna().all()


@pytest.mark.slow
def test_time_budget_is_used_when_no_epoch_cap_is_set(toy_data, tmp_path):
    store, _, records = toy_data
    run = RunDir(tmp_path / "run")
    budget_s = 0.4 * 60
    tic = time.monotonic()
    train_cv(records, store, run.root, TrainConfig(**(TINY | {"epochs": None, "time_budget_min": budget_s / 60})))
    elapsed = time.monotonic() - tic
    metrics = pd.read_csv(run.metrics)
    # TINY's 3 epochs take a few seconds; without the cap each fold trains until its share of the budget
    # (on a busy machine a fold's share may hold only those 3, so one fold past them is what is asserted)
    assert metrics.groupby("fold")["epoch"].max().max() > TINY["epochs"]
    # the folds train until their deadlines (an epoch cut short at the deadline leaves no metrics row, so
    # the wall clock, not the last epoch's timestamp, shows the budget was spent)
    assert elapsed > 0.7 * budget_s
    assert run.is_complete()


@pytest.mark.slow
def test_a_fold_trains_into_the_time_a_busy_start_left(toy_data, tmp_path, monkeypatch):
    """Each fold's first epoch runs on a busy machine (every step 0.15 s slower), the rest idle: the
    fold keeps training until its deadline rather than stopping after the few epochs the busy
    epoch's pace would have fitted."""
    store, _, records = toy_data
    real_epoch = cv.train_one_epoch

    def busy_first_epoch(*args, desc: str = "", should_stop=None, **kwargs):
        if desc.split()[3] == "1" and should_stop is not None:
            clock = should_stop

            def should_stop(step):  # noqa: F811 - the busy machine's slower steps
                time.sleep(0.15)
                return clock(step)
        return real_epoch(*args, desc=desc, should_stop=should_stop, **kwargs)

    monkeypatch.setattr(cv, "train_one_epoch", busy_first_epoch)
    run = RunDir(tmp_path / "run")
    budget_s = 0.5 * 60
    train_cv(records, store, run.root, TrainConfig(**(TINY | {"epochs": None, "time_budget_min": budget_s / 60})))
    metrics = pd.read_csv(run.metrics)
    fold = metrics[metrics.fold == 0]
    busy_pace_epochs = fold.seconds.max() / fold.seconds.iloc[0]  # what the first epoch's pace fits
    assert len(fold) > 2 * busy_pace_epochs


def _run_clock(monkeypatch, step_seconds, deadline: float, window: int = 200) -> dict[int, int]:
    """Drive a :class:`StepClock` with simulated step times; the schedule's total after every step."""
    now = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    schedule = WarmupCosine(10, 100_000)
    clock = StepClock(schedule, deadline, sync=lambda values: values, window=window, overhead=0.0)
    totals, step = {}, 0
    while not clock(step) and step < schedule.total:
        totals[step] = schedule.total
        now[0] += step_seconds(step)
        step += 1
    return totals


def test_step_clock_ends_the_schedule_at_the_deadline(monkeypatch):
    totals = _run_clock(monkeypatch, lambda step: 0.5, deadline=300.0)
    assert abs(len(totals) - 600) <= 5 and abs(totals[100] - 600) <= 5


def test_step_clock_follows_a_machine_that_gets_faster(monkeypatch):
    """Other work ends after 100 s (step time 2 s → 0.5 s): 50 slow steps, then 400 fast ones fit.
    Soon after the change the schedule is planned for the fast steps (an average since the start
    would still plan 300 at step 150, decaying the learning rate too early)."""
    totals = _run_clock(monkeypatch, lambda step: 2.0 if step < 50 else 0.5, deadline=300.0, window=50)
    assert abs(totals[150] - 450) <= 5 and len(totals) >= 445
