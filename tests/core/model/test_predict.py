"""core.model.predict: flip views, and a tiny train + predict: every stack scored by exactly one fold."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pandas as pd
import pytest
import torch

from core.model.predict import crossfit_fold, flip_views, load_ensemble, member_probabilities, predict_stacks, score_keys
from core.model.rundir import RunDir
from tests.training.toy import TINY, toy_data  # noqa: F401 - a fixture
from training.config import TrainConfig
from training.cv import train_cv


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_flip_views_are_distinct(n):
    views = flip_views(n)
    assert len(views) == len(set(views)) == n and views[0] == ()
    assert set(flip_views(8)) >= set(views)


def test_bad_view_count_is_refused():
    with pytest.raises(ValueError, match="TTA views"):
        flip_views(3)


class _DepthProfile(torch.nn.Module):
    """Scores the mean of the first real slice: sensitive to where the padding sits."""

    def forward(self, x, mask):
        first = torch.argmax(mask, dim=1)
        return x[torch.arange(len(x)), 0, first].mean(dim=(1, 2))[:, None]


def test_depth_flip_moves_the_mask_with_the_padding():
    x = torch.zeros(1, 1, 8, 2, 2)
    x[0, 0, 4] = 5.0  # the last of 5 real slices
    mask = torch.tensor([[1.0] * 5 + [0.0] * 3])
    probs = member_probabilities([_DepthProfile()], x, mask, n_views=8)
    # views without a depth flip see slice 0 (value 0); depth-flipped views see slice 4 first
    depth_flipped = [2 in axes for axes in flip_views(8)]
    assert torch.allclose(probs[0, torch.tensor(depth_flipped)], torch.sigmoid(torch.tensor(5.0)))
    assert torch.allclose(probs[0, ~torch.tensor(depth_flipped)], torch.tensor(0.5))


@pytest.fixture(scope="module")
def trained(toy_data, tmp_path_factory):
    store, _, records = toy_data
    run_dir = tmp_path_factory.mktemp("run")
    train_cv(records, store, run_dir, TrainConfig(**TINY))
    return run_dir


def test_crossfit_fold_is_stable_and_spreads_over_the_folds():
    names = [f"{i:06d}.mp4" for i in range(2000)]
    folds = [crossfit_fold(n, 5) for n in names]
    assert folds == [crossfit_fold(n, 5) for n in names]  # same answer on every call and process
    assert crossfit_fold("100109.mp4", 5) == zlib.crc32(b"100109.mp4") % 5
    assert min(np.bincount(folds, minlength=5)) > 2000 / 5 * 0.85


@pytest.mark.slow
def test_every_stack_is_scored_by_one_fold(trained, toy_data):
    store, _, records = toy_data
    unlabelled = [dataclasses.replace(r, filename=f"new_{r.filename}", label=None, crowd_score=None)
                  for r in records if r.split == "test"][:4]
    frame = predict_stacks(trained, [*records, *unlabelled], store, progress=False)
    assert list(frame.columns) == ["filename", "probability", "spread", "role", "fold"]
    assert frame["filename"].tolist() == [r.filename for r in [*records, *unlabelled]]
    is_train = np.array([r.split == "train" for r in records] + [False] * len(unlabelled))
    expected = np.where(is_train, "out_of_fold", "held_out")
    expected[len(records):] = "new"
    assert frame["role"].tolist() == expected.tolist()
    oof = pd.read_csv(RunDir(trained).oof).set_index("filename")
    train_rows = frame[is_train].set_index("filename")
    np.testing.assert_allclose(train_rows["probability"], oof.loc[train_rows.index, "probability"])
    assert (train_rows["fold"] == oof.loc[train_rows.index, "fold"]).all()
    ensemble = load_ensemble(trained)
    others = frame[~is_train]
    keys = np.array([r.key for r in [*records, *unlabelled]])[~is_train]
    assert others["fold"].tolist() == [crossfit_fold(name, 2) for name in others["filename"]]
    for fold in (0, 1):  # the fold's own members score its share, batched as predict batches them
        mine = (others["fold"] == fold).to_numpy()
        scores = score_keys(ensemble.members(fold), store, list(keys[mine]), ensemble.spec)
        np.testing.assert_allclose(others.loc[mine, "probability"], scores.mean(axis=1), atol=1e-6)
        np.testing.assert_allclose(others.loc[mine, "spread"], scores.std(axis=1), atol=1e-6)
    assert frame["probability"].between(0, 1).all()
    assert frame.attrs["threshold"] == RunDir(trained).read_json(RunDir(trained).threshold)["threshold"]


@pytest.mark.slow
def test_tta_recomputes_with_the_held_out_fold_only(trained, toy_data):
    store, _, records = toy_data
    ensemble = load_ensemble(trained)
    assert [len(ensemble.members(k)) for k in range(2)] == [2, 2] and len(ensemble.members()) == 4
    frame = predict_stacks(trained, records, store, tta=4, progress=False)
    assert (frame["role"] == "out_of_fold").sum() == sum(r.split == "train" for r in records)
    oof = pd.read_csv(RunDir(trained).oof).set_index("filename")
    train = frame[frame["role"] == "out_of_fold"].set_index("filename")
    # TTA changes the scores a little, not the ranking much: same fold members, more views
    assert np.corrcoef(train["probability"], oof.loc[train.index, "probability"])[0, 1] > 0.8


def test_unfinished_run_is_refused(tmp_path, toy_data):
    store, _, records = toy_data
    with pytest.raises(FileNotFoundError, match="not a finished training run"):
        predict_stacks(tmp_path, records, store)
