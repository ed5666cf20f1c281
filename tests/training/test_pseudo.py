"""training.pseudo: unlabelled stacks train every fold but the one that scores them, on the teacher's scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.labels.records import StackRecord
from core.model.predict import crossfit_fold, load_ensemble, predict_stacks, score_keys
from core.model.rundir import RunDir
from tests.training.toy import TINY
from training.config import TrainConfig
from training.cv import train_cv
from training.dataset import TrainSample, select_samples
from training.pseudo import PSEUDO_FILE, PSEUDO_SOURCE, TEACHER_DIR, fold_samples, unlabelled_pool


def _without_answers(records: list[StackRecord]) -> list[StackRecord]:
    return [dataclasses.replace(r, label=None, crowd_score=None, tier1=False) if r.split == "test" else r
            for r in records]


@pytest.fixture(scope="module")
def pseudo_run(toy_data, tmp_path_factory):
    store, _, records = toy_data
    records = _without_answers(records)
    run = RunDir(tmp_path_factory.mktemp("pseudo") / "run")
    train_cv(records, store, run.root, TrainConfig(**TINY, unlabelled="pseudo"))
    return store, records, run


def test_the_pool_is_every_stack_that_is_not_a_training_stack(toy_data):
    _, _, records = toy_data
    samples = select_samples(records)
    pool = unlabelled_pool(records, samples)
    assert {r.filename for r in pool} == {r.filename for r in records if r.split == "test"}


def test_no_fold_trains_on_an_unlabelled_stack_it_scores(pseudo_run):
    store, records, run = pseudo_run
    pseudo = pd.read_csv(run.root / PSEUDO_FILE, dtype={"filename": str})
    new = [r for r in records if r.split == "test"]
    folds = TINY["folds"]
    assert sorted(pseudo["filename"].unique()) == sorted(r.filename for r in new)
    assert (pseudo.groupby("filename").size() == folds - 1).all()
    assert all(fold != crossfit_fold(name, folds) for name, fold in zip(pseudo["filename"], pseudo["fold"]))
    scored = predict_stacks(run.root, new, store, progress=False)
    assert set(scored["role"]) == {"new"}
    trained_on = set(zip(pseudo["filename"], pseudo["fold"]))
    assert not any((name, fold) in trained_on for name, fold in zip(scored["filename"], scored["fold"]))


def test_unlabelled_stacks_never_enter_the_out_of_fold_reference(pseudo_run):
    _, records, run = pseudo_run
    oof = pd.read_csv(run.oof, dtype={"filename": str})
    assert set(oof["filename"]) == {r.filename for r in records if r.split == "train"}
    assert run.read_json(run.config)["data"]["unlabelled"] == sum(r.split == "test" for r in records)
    assert "Stacks without an answer: 12" in run.model_card.read_text()


def test_the_targets_are_the_teacher_folds_own_scores(pseudo_run):
    store, records, run = pseudo_run
    teacher = RunDir(run.root / TEACHER_DIR)
    assert teacher.is_complete()
    pseudo = pd.read_csv(run.root / PSEUDO_FILE, dtype={"filename": str})
    key = {r.filename: r.key for r in records}
    ensemble = load_ensemble(teacher.root)
    for fold, rows in pseudo.groupby("fold"):
        expected = score_keys(ensemble.members(fold), store, [key[n] for n in rows["filename"]], ensemble.spec,
                              progress=False).mean(axis=1)
        np.testing.assert_allclose(rows["probability"], expected, atol=1e-6)


def test_the_student_folds_keep_the_teacher_folds(pseudo_run):
    _, _, run = pseudo_run
    student = pd.read_csv(run.oof, dtype={"filename": str}).set_index("filename")["fold"]
    teacher = pd.read_csv(RunDir(run.root / TEACHER_DIR).oof, dtype={"filename": str}).set_index("filename")["fold"]
    pd.testing.assert_series_equal(student.sort_index(), teacher.sort_index())


def test_a_rerun_resumes_the_finished_run_instead_of_training_again(pseudo_run):
    store, records, run = pseudo_run
    before = {p: p.stat().st_mtime_ns for p in run.root.rglob("*.pt")}
    train_cv(records, store, run.root, TrainConfig(**TINY, unlabelled="pseudo"))
    assert {p: p.stat().st_mtime_ns for p in run.root.rglob("*.pt")} == before


def test_fold_samples_take_the_teacher_probability_and_its_decision():
    pool = [StackRecord("a.mp4", "a", "p1", "test"), StackRecord("b.mp4", "b", "p2", "test")]
    pseudo = pd.DataFrame({"filename": ["a.mp4", "b.mp4", "a.mp4"], "fold": [0, 0, 1],
                           "probability": [0.7, 0.2, 0.4]})
    assert fold_samples(pseudo, pool, 0, threshold=0.5) == [
        TrainSample("a.mp4", "a", "p1", 1, 0.7, False, PSEUDO_SOURCE),
        TrainSample("b.mp4", "b", "p2", 0, 0.2, False, PSEUDO_SOURCE)]
    assert [s.label for s in fold_samples(pseudo, pool, 1, threshold=0.3)] == [1]
