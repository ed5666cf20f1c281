"""The synthetic generator: competition format, determinism, realistic sizes, and a label that only
the real cue (flicker vs a static plug along depth) can predict."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from bench.synth_features import METADATA_FEATURES, handmade_features, leak_scores, orange_mask, read_bgr
from core.synth.generator import generate, make_job, stack_filename
from core.synth.profiles import DIFFICULTY
from core.synth.render import OUTLINE_RGB, render_stack
from core.synth.vessels import CELL_MODES, STALLED_MODES, penetrating, target_cells

TRAIN_META = ["filename", "url", "project_id", "num_frames", "crowd_score", "tier1", "micro", "nano"]


def test_csvs_have_the_competition_columns_and_match_the_files(synth_data):
    train = pd.read_csv(synth_data / "train_metadata.csv")
    labels = pd.read_csv(synth_data / "train_labels.csv")
    test = pd.read_csv(synth_data / "test_metadata.csv")
    test_labels = pd.read_csv(synth_data / "test_labels.csv")
    assert list(train.columns) == TRAIN_META
    assert list(labels.columns) == ["filename", "stalled"]
    assert list(test.columns) == ["filename", "url", "project_id", "num_frames"]
    assert list(test_labels.columns) == ["filename", "stalled"]
    assert list(labels.filename) == list(train.filename) and list(test_labels.filename) == list(test.filename)
    assert sorted(p.name for p in (synth_data / "train").iterdir()) == sorted(train.filename)
    assert sorted(p.name for p in (synth_data / "test").iterdir()) == sorted(test.filename)
    assert not set(train.filename) & set(test.filename)
    assert train.filename.str.fullmatch(r"\d{6}\.mp4").all()
    assert (train.url == "s3://drivendata-competition-clog-loss/train/" + train.filename).all()
    assert set(labels.stalled) == {0, 1} and set(test_labels.stalled) == {0, 1}
    assert train.crowd_score.between(0, 1).all() and train.project_id.dtype.kind == "i"
    text = (synth_data / "train_metadata.csv").read_text()
    assert "True" in text and "False" in text  # booleans spelled as in the competition files
    assert (train.nano <= train.micro).all()


@pytest.fixture(scope="module")
def realistic_data(tmp_path_factory):
    """Five realistic-profile stacks, both splits: jitter, black slices, blackout, end-on vessels,
    neighbours, a plug and a stall in part of the depth among them."""
    return generate(tmp_path_factory.mktemp("realistic"), 4, 1, seed=6, stall_rate=0.5, workers=2, progress=False)


@pytest.mark.parametrize("data", ["synth_data", "realistic_data"])
def test_every_frame_carries_the_orange_outline_and_nothing_else_is_orange(data, request):
    root = request.getfixturevalue(data)
    meta = pd.concat([pd.read_csv(root / f"{s}_metadata.csv").assign(split=s) for s in ("train", "test")])
    for row in meta.itertuples():
        frames = read_bgr(root / row.split / row.filename)
        assert len(frames) == row.num_frames, row.filename
        masks = orange_mask(frames)
        assert masks.sum(axis=(1, 2)).min() >= 20, f"{row.filename}: a frame without its outline"
        steady = (masks.mean(axis=0) > 0.5).astype(np.uint8)
        ys, xs = np.nonzero(steady)
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert 15 <= h < frames.shape[1] and 15 <= w < frames.shape[2], row.filename  # context around the ROI
        seen = masks.any(axis=0)
        away = cv2.distanceTransform(1 - steady, cv2.DIST_L2, 5)[seen]
        assert np.sum(away > 3) <= 2, f"{row.filename}: orange pixels away from the outline"
        all_ys, all_xs = np.nonzero(seen)  # the winners' union box is the outline's box
        assert ys.min() - all_ys.min() <= 4 and all_ys.max() - ys.max() <= 4, row.filename
        assert xs.min() - all_xs.min() <= 4 and all_xs.max() - xs.max() <= 4, row.filename


def test_a_stack_depends_only_on_seed_split_and_index():
    job = make_job(3, "train", 7, profile="tiny")
    assert make_job(3, "train", 7, profile="tiny") == job
    assert np.array_equal(render_stack(job.spec), render_stack(make_job(3, "train", 7, profile="tiny").spec))
    assert make_job(4, "train", 7, profile="tiny") != job
    assert make_job(3, "test", 7, profile="tiny").filename != job.filename


def test_generated_sets_share_stacks_whatever_their_size(tmp_path):
    small = generate(tmp_path / "a", 3, 1, seed=5, profile="tiny", workers=1, progress=False)
    large = generate(tmp_path / "b", 5, 2, seed=5, profile="tiny", workers=2, progress=False)
    a = pd.read_csv(small / "train_metadata.csv")
    b = pd.read_csv(large / "train_metadata.csv")
    pd.testing.assert_frame_equal(a, b.head(3))
    assert pd.read_csv(small / "test_labels.csv").equals(pd.read_csv(large / "test_labels.csv").head(1))
    for name in a.filename:
        assert np.array_equal(read_bgr(small / "train" / name), read_bgr(large / "train" / name))


def test_filenames_are_unique_across_splits():
    names = [stack_filename(0, split, i) for split in ("train", "test") for i in range(50_000)]
    assert len(set(names)) == len(names)


@pytest.fixture(scope="module")
def realistic_jobs() -> list:
    """3,000 realistic-profile training stacks at 20 % stalled (specs only, nothing rendered)."""
    return [make_job(0, "train", i, stall_rate=0.2) for i in range(3000)]


def test_realistic_sizes_follow_stall_catchers(realistic_jobs):
    depth = np.array([j.spec.depth for j in realistic_jobs])
    roi = np.array([j.spec.roi_yxhw[2:] for j in realistic_jobs])
    frame = np.array([j.spec.frame_hw for j in realistic_jobs])
    assert 50 <= depth.mean() <= 70 and depth.min() <= 12 and depth.max() >= 300
    assert 129 in set(depth) and len(set(range(10, 161)) - set(depth)) <= 5  # every count occurs, not a few
    assert len(set(depth[depth > 160])) >= 30  # and the long tail is spread out too
    assert 55 <= roi.mean() <= 80 and np.mean((roi >= 30) & (roi <= 110)) > 0.8 and roi.max() >= 250
    assert np.mean((frame >= 100) & (frame <= 250)) > 0.8 and frame.max() >= 350 and frame.max() <= 440
    assert (frame > roi).all() and (frame % 2 == 0).all()
    voxels = depth * frame[:, 0] * frame[:, 1]
    assert voxels.mean() < 2.5e6  # render cost stays modest on average


def test_every_hard_case_and_nuisance_occurs_in_both_classes(realistic_jobs):
    stalled = np.array([j.stalled for j in realistic_jobs])
    modes = {j.spec.cell_mode for j in realistic_jobs}
    assert modes == set(CELL_MODES)
    assert {j.spec.cell_mode for j in realistic_jobs if j.stalled} == set(STALLED_MODES)
    for name in set(DIFFICULTY) - set(CELL_MODES):
        has = np.array([name in j.hard for j in realistic_jobs])
        assert has[stalled].mean() > 0.02 and has[~stalled].mean() > 0.02, name
        assert abs(has[stalled].mean() - has[~stalled].mean()) < 0.06, name  # independent of the label
    specs = [j.spec for j in realistic_jobs]
    assert np.mean([s.large_vessel for s in specs]) > 0.1 and np.mean([s.n_penetrating > 0 for s in specs]) > 0.3
    assert np.mean([s.jitter_px > 0 for s in specs]) > 0.15 and np.mean([s.vignette > 0.2 for s in specs]) > 0.3


def test_appearance_differs_by_project(realistic_jobs):
    frame = pd.DataFrame({"project": [j.project_id for j in realistic_jobs],
                          "noise": [j.spec.noise_sigma for j in realistic_jobs],
                          "lumen": [j.spec.lumen_level for j in realistic_jobs],
                          "vessels": [j.spec.n_other_vessels for j in realistic_jobs],
                          "stalled": [j.stalled for j in realistic_jobs]})
    means = frame.groupby("project").mean()
    assert means.noise.max() > 2 * means.noise.min() and means.vessels.max() > 2 * means.vessels.min()
    assert means.lumen.max() > 1.4 * means.lumen.min()
    assert means.stalled.between(0.12, 0.28).all()  # the label does not depend on the project


def test_crowd_errors_grow_with_difficulty_and_tier1_holds_hard_cases(realistic_jobs):
    stalled = np.array([j.stalled for j in realistic_jobs])
    score = np.array([j.crowd_score for j in realistic_jobs])
    level = np.array([j.difficulty for j in realistic_jobs])
    tier1 = np.array([j.tier1 for j in realistic_jobs])
    easy, hard = level < 0.1, level >= 0.5
    for group in (stalled, ~stalled):  # misses and false alarms both grow
        wrong = (score > 0.5) != stalled
        assert wrong[group & hard].mean() > 5 * max(wrong[group & easy].mean(), 0.005)
    assert 0.75 <= matthews_corrcoef(stalled, score > 0.5) <= 0.9
    assert 0.35 < tier1.mean() < 0.7
    assert (tier1 & hard).sum() > 0.15 * tier1.sum() and (tier1 & hard & stalled).sum() >= 20
    assert np.median(score[stalled & easy]) > 0.85 and np.median(score[~stalled & easy]) < 0.1


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0])
def test_stall_rate_is_configurable(rate):
    stalled = np.mean([make_job(1, "train", i, stall_rate=rate).stalled for i in range(600)])
    assert abs(stalled - rate) < 0.03


def test_train_and_test_have_their_own_stall_rate(tmp_path):
    out = generate(tmp_path, 4, 3, seed=2, stall_rate=1.0, test_stall_rate=0.0, profile="tiny", workers=1,
                   progress=False)
    assert pd.read_csv(out / "train_labels.csv").stalled.tolist() == [1] * 4
    assert pd.read_csv(out / "test_labels.csv").stalled.tolist() == [0] * 3


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="stall_rate"):
        generate(tmp_path, 1, 0, stall_rate=1.5)
    with pytest.raises(ValueError, match="test_stall_rate"):
        generate(tmp_path, 1, 0, test_stall_rate=-0.1)
    with pytest.raises(ValueError, match="profile"):
        generate(tmp_path, 1, 0, profile="huge")
    with pytest.raises(ValueError, match="n_train and n_test must be >= 0"):
        generate(tmp_path, -1, 0)
    assert not (tmp_path / "train").exists()


def test_an_empty_set_still_has_csv_headers(tmp_path):
    generate(tmp_path, 0, 0, progress=False)
    assert list(pd.read_csv(tmp_path / "train_metadata.csv").columns) == TRAIN_META
    assert list(pd.read_csv(tmp_path / "test_labels.csv").columns) == ["filename", "stalled"]


@pytest.fixture(scope="module")
def leak_check_set(tmp_path_factory) -> pd.DataFrame:
    root = generate(tmp_path_factory.mktemp("leak"), 300, 0, seed=11, profile="tiny", workers=2, progress=False)
    return handmade_features(root)


@pytest.mark.slow
def test_metadata_alone_does_not_predict_the_label(leak_check_set):
    numeric = METADATA_FEATURES + ["brightness", "frame_brightness"]
    for name, score in leak_scores(leak_check_set, numeric).items():
        assert score["mcc"] < 0.1 and score["auc"] < 0.62, name


@pytest.mark.slow
def test_the_temporal_cue_separates_stalled_from_flowing(leak_check_set):
    y = leak_check_set.stalled
    cue_auc = roc_auc_score(y, -leak_check_set.flicker)  # stalled stacks flicker less
    metadata_auc = max(max(roc_auc_score(y, leak_check_set[c]), 1 - roc_auc_score(y, leak_check_set[c]))
                       for c in ("roi_h", "depth", "brightness", "file_size", "bytes_per_voxel"))
    assert cue_auc > 0.75 and cue_auc > metadata_auc + 0.2


def _shadows(mode: str, seed: int = 0, depth: int = 60, length: int = 120) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z_center = np.full(length, depth / 2, np.float32)
    return target_cells(rng, mode, depth, length, 6.0, 0.35, z_center, depth / 3, (20.0, 100.0))


def _slice_correlation(shadow: np.ndarray) -> float:
    """Median correlation of the shadows between neighbouring slices where both have cells."""
    pairs = [np.corrcoef(a, b)[0, 1] for a, b in zip(shadow[:-1], shadow[1:]) if a.std() > 0.05 and b.std() > 0.05]
    return float(np.median(pairs)) if pairs else float("nan")


def test_cell_modes_behave_as_described_along_depth():
    corr = {mode: np.median([_slice_correlation(_shadows(mode, s)) for s in range(5)]) for mode in CELL_MODES}
    assert corr["flow"] < 0.2 and corr["sparse"] < 0.3  # fresh places in every slice: flicker
    assert corr["stall"] > 0.9 and corr["plug"] > 0.9  # cells stay put
    assert 0.3 < corr["slow"] < corr["stall"]  # moving, yet correlated: looks still for a while
    sparse, flow = _shadows("sparse"), _shadows("flow")
    assert (sparse[:, 20:100].max(axis=1) < 0.5).mean() > 0.4 > (flow[:, 20:100].max(axis=1) < 0.5).mean()
    partial = _shadows("partial")[:, 20:100]
    centred = partial - partial.mean(axis=0)
    lag1 = (centred[1:] * centred[:-1]).mean(axis=0) / np.maximum(centred.var(axis=0), 1e-9)
    static = lag1 > 0.8  # positions along the segment whose shadow changes smoothly with depth
    flickering = (centred.var(axis=0) > 0.01) & (lag1 < 0.3)
    assert static.mean() > 0.05 and flickering.mean() > 0.2  # static in part of the segment only
    assert np.ptp(np.flatnonzero(static)) < 0.65 * len(static)
    in_depth = _shadows("stall_depth")
    halves = [_slice_correlation(in_depth[:20]), _slice_correlation(in_depth[40:])]
    assert max(halves) > 0.9 and min(halves) < 0.3  # static in part of the depth only


def test_a_penetrating_vessel_is_a_flickering_blob_that_drifts_little():
    vol = np.zeros((40, 60, 60), np.float32)
    penetrating(np.random.default_rng(1), vol, np.array([30.0, 30.0]), 6.0, 150.0, 0.8)
    ys, xs = np.nonzero(vol.max(axis=0) > 20)
    assert 8 <= np.ptp(ys) <= 20 and 8 <= np.ptp(xs) <= 20  # round, about its diameter
    centres = np.array([np.argwhere(s > 20).mean(axis=0) for s in vol])
    assert np.ptp(centres, axis=0).max() < 6  # moves only slightly with depth
    assert np.std(vol[:, 27:34, 27:34].mean(axis=(1, 2))) > 5  # cells passing make it flicker


def test_black_slices_and_masks_keep_the_outline():
    job = next(j for j in (make_job(0, "train", i) for i in range(400)) if j.spec.black_slices >= 3)
    frames = render_stack(job.spec)
    black = (frames[..., 1] == 0).mean(axis=(1, 2)) > 0.9
    assert black.sum() >= job.spec.black_slices
    assert (frames[black] == OUTLINE_RGB).all(axis=-1).sum() >= 20 * black.sum()
