"""training.warmstart: a continuing run keeps the options (and the behaviour) of the run it continues."""

from __future__ import annotations

import json
from dataclasses import asdict

from core.model.rundir import RunDir
from training.config import TrainConfig
from training.warmstart import continuation_config


def _saved(tmp_path, **options) -> RunDir:
    run = RunDir(tmp_path / "old")
    run.root.mkdir()
    run.config.write_text(json.dumps(options | {"input": {"size": 32}, "data": {"stacks": 3}}))
    return run


def test_a_continuation_keeps_the_old_options_at_half_the_learning_rate(tmp_path):
    old = asdict(TrainConfig(size=24, folds=2, lr=1e-3, tier2="off"))
    run = _saved(tmp_path, **old)
    config = continuation_config(run.root, time_budget_min=2.0, epochs=None)
    assert (config.size, config.folds, config.tier2, config.lr) == (24, 2, "off", 5e-4)
    assert config.warm_start == str(run.root.resolve()) and config.time_budget_min == 2.0
    assert continuation_config(run.root, lr=0.01).lr == 0.01


def test_a_run_from_before_an_option_keeps_the_behaviour_it_was_trained_with(tmp_path):
    old = {k: v for k, v in asdict(TrainConfig()).items() if k not in ("focus_depth", "outline_pool", "vessel")}
    config = continuation_config(_saved(tmp_path, **old).root)
    # the new defaults would change its inputs
    assert not config.focus_depth and not config.outline_pool and not config.vessel
    assert not config.input_spec().vessel
