"""core.video.ingest: parallel decode into the store, one result per file, resumable, bad files isolated."""

from __future__ import annotations

import numpy as np
import pytest

from core.video.crop import read_stack
from core.video.ingest import FAILED, INGESTED, SKIPPED, find_stacks, ingest, pair_with_metadata, started_ingest
from core.video.store import StoreError, VolumeStore
from tests.core.video.stackfiles import write_stack, write_zero_frames
from tests.imports import libraries_imported_by


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory):
    """Good and bad stacks, written once for the module; tests only read them."""
    tmp_path = tmp_path_factory.mktemp("ingest")
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(6):
        write_stack(folder / f"{100 + i}.mp4", depth=8 + i, seed=i, box=(20 + i, 15, 80, 60 + i))
    (folder / "text.mp4").write_text("not a video")
    write_stack(folder / "one.mp4", depth=1)
    write_stack(folder / "blank.mp4", depth=5, box=None)
    write_zero_frames(folder / "zero.mp4", tmp_path)
    whole = write_stack(tmp_path / "whole.mp4", depth=20).read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    return folder


GOOD = [f"{100 + i}.mp4" for i in range(6)]
BAD = {"text.mp4": "not an mp4 file", "one.mp4": "only 1 frame", "blank.mp4": "no orange outline",
       "zero.mp4": "zero frames", "cut.mp4": "truncated"}


@pytest.mark.parametrize("workers", [1, 2])
def test_good_stacks_stored_bad_ones_reported(stack_dir, tmp_path, workers):
    results = {r.filename: r for r in ingest(find_stacks(stack_dir), tmp_path / "store", workers=workers,
                                             batch_size=2, progress=False)}
    assert set(results) == set(GOOD) | set(BAD)
    for name, problem in BAD.items():
        assert results[name].status == FAILED and problem in results[name].error
        assert str(stack_dir / name) in results[name].error
    with VolumeStore(tmp_path / "store", readonly=True) as store:
        assert sorted(store.keys()) == sorted(name[:-4] for name in GOOD)
        for name in GOOD:
            result, fresh, stored = results[name], read_stack(stack_dir / name), store.get(name[:-4])
            assert result.status == INGESTED and result.error is None
            assert result.roi == fresh.roi and result.num_frames == fresh.num_frames == stored.volume.shape[0]
            np.testing.assert_array_equal(stored.volume, fresh.volume)
            np.testing.assert_array_equal(stored.mask, fresh.mask)
            assert stored.meta["roi"] == list(fresh.roi)


def test_rerun_skips_stored_stacks_and_reports_their_roi(stack_dir, tmp_path):
    first = {r.filename: r for r in ingest(find_stacks(stack_dir), tmp_path / "store", workers=1, progress=False)}
    second = {r.filename: r for r in ingest(find_stacks(stack_dir), tmp_path / "store", workers=1, progress=False)}
    for name in GOOD:
        assert second[name].status == SKIPPED
        assert (second[name].roi, second[name].num_frames, second[name].frame_size) == \
               (first[name].roi, first[name].num_frames, first[name].frame_size)
    assert all(second[name].status == FAILED for name in BAD)


def test_results_come_after_their_batch_is_committed(stack_dir, tmp_path):
    paths = [stack_dir / name for name in GOOD]
    for result in ingest(paths, tmp_path / "store", workers=2, batch_size=4, progress=False):
        with VolumeStore(tmp_path / "store", readonly=True) as store:
            assert result.key in store


def test_two_files_with_one_key_store_the_first_only(stack_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    write_stack(other / "100.mp4", depth=4)
    results = list(ingest([stack_dir / "100.mp4", other / "100.mp4"], tmp_path / "store", workers=1, progress=False))
    assert [r.status for r in results] == [FAILED, INGESTED] or [r.status for r in results] == [INGESTED, FAILED]
    failed = next(r for r in results if r.status == FAILED)
    assert "same store key '100'" in failed.error and str(other / "100.mp4") in failed.error


def test_unwritable_store_fails_before_decoding(stack_dir, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the volume store for writing"):
        next(ingest(find_stacks(stack_dir), blocker / "store", progress=False))


def test_pairing_files_with_metadata_rows(tmp_path):
    files = [tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.MP4"]
    pairing = pair_with_metadata(files, ["b.mp4", "a.mp4", "d.mp4"])
    assert pairing.paths == [tmp_path / "b.mp4", tmp_path / "a.mp4"]
    assert pairing.no_file == ["d.mp4"] and pairing.no_row == [tmp_path / "c.MP4"]



def test_started_ingest_gives_the_same_results_and_stores_nothing_it_did_not_yield(stack_dir, tmp_path):
    paths = find_stacks(stack_dir)
    expected = {r.filename: r for r in ingest(paths, tmp_path / "plain", workers=2, progress=False)}
    with started_ingest(paths, tmp_path / "early", workers=2, progress=False) as results:
        assert (tmp_path / "early").is_dir()  # opened on entering, before any result is read
        assert {r.filename: r for r in results} == expected
    with started_ingest(paths, tmp_path / "left", workers=2, batch_size=100, progress=False):
        pass  # left before reading: the workers stop and nothing is stored
    with VolumeStore(tmp_path / "left", readonly=True) as store:
        assert len(store) == 0
    assert {r.status for r in ingest(paths, tmp_path / "left", workers=2, progress=False)} == {INGESTED, FAILED}


def test_started_ingest_raises_for_an_unusable_store_on_entering(stack_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError), started_ingest(find_stacks(stack_dir), blocker / "store", progress=False):
        pass


def test_the_worker_server_can_start_before_opencv_is_imported():
    """A command starts the fork server first thing, so it must not pay for OpenCV (or the crop code) itself."""
    loaded = libraries_imported_by("from core.video.workers import start_worker_server; start_worker_server()")
    assert not loaded & {"cv2", "numpy", "lmdb", "tqdm"}, sorted(loaded)
