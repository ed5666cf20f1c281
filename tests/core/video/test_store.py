"""core.video.store: LMDB volume store round trips, zero-copy reads, growth, many readers, killed writers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from core.video.store import StoredStack, StoreError, VolumeStore, decode, encode, key_for


def volume(i: int, shape=(6, 20, 30)) -> np.ndarray:
    return np.full(shape, i % 256, np.uint8)


def test_key_is_the_filename_stem():
    assert key_for("100109.mp4") == "100109"
    assert key_for("some/dir/abc.def.mp4") == "abc.def"
    with pytest.raises(ValueError, match="store key"):
        key_for("")


def test_round_trip_is_zero_copy_and_read_only(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 255, (9, 31, 17), dtype=np.uint8)
    mask = (rng.random((31, 17)) > 0.5).astype(np.uint8)
    with VolumeStore(tmp_path / "store") as store:
        assert store.put("a", vol, mask=mask, meta={"roi": [1, 2, 18, 33], "num_frames": 9})
    with VolumeStore(tmp_path / "store", readonly=True) as store:
        got = store.get("a")
        np.testing.assert_array_equal(got.volume, vol)
        np.testing.assert_array_equal(got.mask, mask)
        assert got.meta == {"roi": [1, 2, 18, 33], "num_frames": 9}
        assert not got.volume.flags.writeable and not got.volume.flags.owndata
        owner = got.volume
        while isinstance(owner, np.ndarray):
            owner = owner.base
        assert isinstance(owner, memoryview)
        with pytest.raises(ValueError):
            got.volume[0, 0, 0] = 1


def test_other_dtypes_and_no_mask(tmp_path):
    vol = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    with VolumeStore(tmp_path / "store") as store:
        store.put("f", vol)
        got = store.get("f")
        np.testing.assert_array_equal(got.volume, vol)
        assert got.mask is None and got.meta == {}


def test_existing_key_is_skipped_not_replaced(tmp_path):
    with VolumeStore(tmp_path / "store") as store:
        assert store.put_many([("a", StoredStack(volume(1))), ("b", StoredStack(volume(2)))]) == ["a", "b"]
        assert store.put_many([("a", StoredStack(volume(9))), ("c", StoredStack(volume(3)))]) == ["c"]
        assert store.get("a").volume[0, 0, 0] == 1
        assert len(store) == 3 and store.keys() == ["a", "b", "c"] and "b" in store and "z" not in store
        with pytest.raises(KeyError, match="'z'"):
            store.get("z")


def test_map_grows_by_itself(tmp_path):
    with VolumeStore(tmp_path / "store", map_size=64 * 1024) as store:
        for i in range(40):
            store.put(f"k{i}", volume(i, (10, 64, 64)))
    with VolumeStore(tmp_path / "store", readonly=True) as store:
        assert len(store) == 40
        assert all(store.get(f"k{i}").volume[3, 5, 7] == i for i in range(40))


def test_unwritable_and_missing_paths_give_clear_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the volume store for writing") as info:
        VolumeStore(blocker / "store")
    assert str(blocker / "store") in str(info.value)
    with pytest.raises(StoreError, match="no volume store here"):
        VolumeStore(tmp_path / "absent", readonly=True)
    with VolumeStore(tmp_path / "store") as store:
        store.put("a", volume(1))
    with VolumeStore(tmp_path / "store", readonly=True) as store, pytest.raises(StoreError, match="read-only"):
        store.put("b", volume(2))


def test_malformed_values_are_rejected():
    good = encode(StoredStack(volume(1), np.ones((20, 30), np.uint8), {"x": 1}))
    assert decode(good).meta == {"x": 1}
    with pytest.raises(StoreError, match="bad magic"):
        decode(b"PKL" + good)
    with pytest.raises(StoreError, match="header says"):
        decode(good[:-5])


def _sum_all(store: VolumeStore) -> dict[str, int]:
    return {key: int(store.get(key).volume.sum()) for key in store.keys()}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_many_reader_processes_share_one_store_object(tmp_path, method):
    with VolumeStore(tmp_path / "store") as store:
        store.put_many([(f"k{i}", StoredStack(volume(i))) for i in range(20)])
    reader = VolumeStore(tmp_path / "store", readonly=True)
    expected = _sum_all(reader)
    with multiprocessing.get_context(method).Pool(3) as pool:
        results = pool.map(_sum_all, [reader] * 6)
    assert all(r == expected for r in results)
    assert _sum_all(reader) == expected
    reader.close()


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from core.video.store import StoredStack, VolumeStore
    store = VolumeStore(sys.argv[1], map_size=1 << 20)
    i = 0
    while True:
        batch = [(f"k{i + j:06d}", StoredStack(np.full((8, 64, 64), (i + j) % 251, np.uint8), None,
                                               {"i": i + j})) for j in range(5)]
        store.put_many(batch)
        i += 5
""")


def test_killed_writer_leaves_whole_batches_only(tmp_path):
    path = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (path / "data.mdb").exists():
                with VolumeStore(path, readonly=True) as store:
                    if len(store) >= 100:
                        break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    with VolumeStore(path, readonly=True) as store:
        keys = store.keys()
        assert len(keys) >= 100 and len(keys) % 5 == 0
        assert keys == [f"k{i:06d}" for i in range(len(keys))]
        for i, key in enumerate(keys):
            got = store.get(key)
            assert got.meta == {"i": i} and got.volume.shape == (8, 64, 64)
            assert (got.volume == i % 251).all()


GROWER = textwrap.dedent("""
    import sys, numpy as np
    from core.video.store import VolumeStore
    with VolumeStore(sys.argv[1], map_size=1 << 16) as store:
        for i in range(1, 41):
            store.put(f"k{i}", np.full((25, 64, 64), i, np.uint8))
""")


def test_views_survive_a_writer_growing_the_store_in_another_process(tmp_path):
    path = tmp_path / "store"
    with VolumeStore(path, map_size=1 << 16) as store:
        store.put("k0", np.arange(25 * 64 * 64, dtype=np.uint32).astype(np.uint8).reshape(25, 64, 64))
    with VolumeStore(path, readonly=True) as reader:
        view = reader.get("k0").volume
        before = view.copy()
        size_before = (path / "data.mdb").stat().st_size
        subprocess.run([sys.executable, "-c", GROWER, str(path)], check=True, cwd=os.getcwd())
        assert (path / "data.mdb").stat().st_size > 10 * size_before
        np.testing.assert_array_equal(view, before)
        assert len(reader) == 41 and (reader.get("k40").volume == 40).all()
