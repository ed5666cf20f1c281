"""core.model.preprocess: depth stride, resizing, standardising, padding and the depth mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model.preprocess import (InputSpec, StackDataset, depth_indices, focus_range, focused_stack, kept_slices,
                             network_input, pad_collate, prepare_stack)
from core.video.store import VolumeStore


@pytest.mark.parametrize(("n", "max_depth", "expected"), [
    (20, 32, list(range(20))),           # short stacks keep every slice
    (64, 32, list(range(0, 64, 2))),     # stride 2
    (65, 32, list(range(0, 65, 3))),     # stride 3 → 22 slices, never more than max_depth
    (270, 32, list(range(0, 270, 9))[:32]),
])
def test_depth_indices_keep_original_slices(n, max_depth, expected):
    assert depth_indices(n, max_depth).tolist() == expected


def test_offset_shifts_within_the_stride():
    assert depth_indices(64, 32, offset=1).tolist() == list(range(1, 64, 2))
    assert depth_indices(64, 32, offset=3).tolist() == list(range(1, 64, 2))


def _focused_stack(depth: int, in_focus: range, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy tissue; the outlined region is bright lumen only in the slices ``in_focus``."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(60, 12, (depth, 40, 40))
    mask = np.zeros((40, 40), np.uint8)
    mask[15:25, 5:35] = 1
    for z in in_focus:
        volume[z, 17:23, 5:35] += 90
    return np.clip(volume, 0, 255).astype(np.uint8), mask


def test_focus_range_finds_a_short_focus_in_a_deep_stack_and_keeps_neighbours():
    volume, mask = _focused_stack(200, range(120, 130))
    start, stop = focus_range(volume, mask, 32)
    assert stop - start == 32 and start <= 120 and stop >= 130  # widened evenly around the focus
    assert abs((start + stop) / 2 - 125) <= 3
    kept = kept_slices(volume, mask, InputSpec(max_depth=32, focus_depth=True))
    assert kept.tolist() == list(range(start, stop))  # stride 1 inside the focus: no flicker lost


def test_focus_range_keeps_a_long_focus_whole():
    volume, mask = _focused_stack(300, range(50, 250))
    start, stop = focus_range(volume, mask, 32)
    assert abs(start - 50) <= 3 and abs(stop - 250) <= 3


@pytest.mark.parametrize("case", ["no focus", "no mask", "all mask", "shallow"])
def test_focus_range_keeps_the_whole_depth_when_it_cannot_tell(case):
    in_focus = {"no focus": range(0), "shallow": range(10, 14)}.get(case, range(60, 64))
    volume, mask = _focused_stack(20 if case == "shallow" else 120, in_focus)
    mask = {"no mask": None, "all mask": np.ones_like(mask)}.get(case, mask)
    assert focus_range(volume, mask, 32) == (0, volume.shape[0])


def test_focus_depth_is_off_by_spec():
    volume, mask = _focused_stack(200, range(120, 130))
    assert kept_slices(volume, mask, InputSpec(max_depth=32)).tolist() == depth_indices(200, 32).tolist()


def test_prepare_stack_shape_and_standardisation():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (90, 47, 130), dtype=np.uint8)
    out = prepare_stack(volume, None, InputSpec(size=32, max_depth=32))[0]
    assert out.shape == (30, 32, 32) and out.dtype == np.float32
    assert abs(out.mean()) < 1e-4 and 0.9 < out.std() < 1.0


def test_slices_are_not_blended():
    """Each kept slice is one original slice resized, never a mix of neighbours (flicker survives)."""
    volume = np.zeros((8, 16, 16), np.uint8)
    volume[1::2] = 200  # alternate dark and bright slices: pure flicker
    out = prepare_stack(volume, None, InputSpec(size=8, max_depth=8))[0]
    assert len(np.unique(out.round(4))) == 2


def test_pad_collate_pads_to_longest_with_mask():
    items = [{"image": torch.ones(1, d, 4, 4), "index": i} for i, d in enumerate((5, 11, 9))]
    batch = pad_collate(items)
    assert batch["image"].shape == (3, 1, 16, 4, 4)  # 11 rounded up to a multiple of 8
    assert batch["mask"].sum(dim=1).tolist() == [5, 11, 9]
    assert batch["image"][0, 0, 5:].abs().sum() == 0 and batch["image"][0, 0, :5].min() == 1
    assert batch["index"].tolist() == [0, 1, 2]


def test_dataset_reads_the_store(tmp_path):
    rng = np.random.default_rng(1)
    with VolumeStore(tmp_path / "store") as store:
        store.put("a", rng.integers(0, 255, (40, 30, 20), dtype=np.uint8))
        store.put("b", rng.integers(0, 255, (7, 60, 50), dtype=np.uint8))
    dataset = StackDataset(tmp_path / "store", ["a", "b"], InputSpec(size=16, max_depth=16), targets=[1.0, 0.0])
    a, b = dataset[0], dataset[1]
    assert a["image"].shape == (1, 14, 16, 16) and b["image"].shape == (1, 7, 16, 16)
    assert a["target"].item() == 1.0 and b["index"] == 1


def test_outline_mask_is_a_second_channel(tmp_path):
    rng = np.random.default_rng(2)
    mask = np.zeros((30, 20), np.uint8)
    mask[10:20, 5:15] = 1
    with VolumeStore(tmp_path / "store") as store:
        store.put("a", rng.integers(0, 255, (12, 30, 20), dtype=np.uint8), mask=mask)
        store.put("b", rng.integers(0, 255, (9, 30, 20), dtype=np.uint8))  # stored without a mask
    spec = InputSpec(size=10, max_depth=16, mask_channel=True)
    assert spec.channels == 2
    a, b = (StackDataset(tmp_path / "store", ["a", "b"], spec)[i]["image"].numpy() for i in (0, 1))
    assert a.shape == (2, 12, 10, 10) and b.shape == (2, 9, 10, 10)
    assert (a[1] == a[1, :1]).all()  # the same mask on every slice
    assert a[1, 0, 5, 5] == 1.0 and a[1, 0, 0, 0] == 0.0
    assert a[1].mean() == pytest.approx(1 / 6, abs=0.02)  # the mask covers 10×10 of 30×20 pixels
    assert (b[1] == 1.0).all()
    np.testing.assert_allclose(a[0], prepare_stack(_stored(tmp_path, "a"), None, InputSpec(10, 16))[0])  # channel 0 unchanged


def _stored(tmp_path, key):
    with VolumeStore(tmp_path / "store", readonly=True) as store:
        return np.array(store.get(key).volume)


def _vessel_store(tmp_path):
    volume, mask = _focused_stack(90, range(30, 50), seed=3)  # a deep stack, its vessel in focus in 20 slices
    with VolumeStore(tmp_path / "store") as store:
        store.put("a", volume, mask=mask)
        store.put("b", np.random.default_rng(3).integers(0, 255, (50, 40, 40), dtype=np.uint8), mask=mask)
    return mask


def test_a_cached_dataset_serves_the_same_items_and_reads_each_stack_once(tmp_path, monkeypatch):
    _vessel_store(tmp_path)
    spec = InputSpec(size=16, max_depth=8, mask_channel=True, focus_depth=True, vessel=True)
    reads = []
    real_get = VolumeStore.get
    monkeypatch.setattr(VolumeStore, "get", lambda self, key: reads.append(key) or real_get(self, key))
    cache = {}
    cached = StackDataset(tmp_path / "store", ["a", "b"], spec, random_offset=True, cache=cache)
    plain = StackDataset(tmp_path / "store", ["a", "b"], spec, random_offset=True)
    for epoch in range(4):
        cached.reseed(epoch), plain.reseed(epoch)
        for i in (0, 1):
            np.testing.assert_array_equal(cached[i]["image"].numpy(), plain[i]["image"].numpy())
    assert reads.count("a") == 1 + 4 and reads.count("b") == 1 + 4  # the cached dataset read each once
    assert set(cache) == {"a", "b"} and all(f.slices.dtype == np.uint8 for f in cache.values())


def test_network_input_takes_the_strided_slices_of_the_focus(tmp_path):
    mask = _vessel_store(tmp_path)
    volume = _stored(tmp_path, "a")
    spec = InputSpec(size=16, max_depth=8, mask_channel=True, focus_depth=True, vessel=True)
    focused = focused_stack(volume, mask, spec)
    assert 20 <= len(focused.slices) < 40  # the focus, not the whole depth
    for offset in range(5):
        kept = kept_slices(volume, mask, spec, offset)
        flat = InputSpec(size=16, max_depth=len(kept), mask_channel=True, focus_depth=False, vessel=True)
        np.testing.assert_array_equal(network_input(focused, spec, offset), prepare_stack(volume[kept], mask, flat))
