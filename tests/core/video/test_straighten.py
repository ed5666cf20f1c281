"""core.video.straighten: the outlined vessel resampled along its centreline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.model import preprocess
from core.model.preprocess import InputSpec, StackDataset, prepare_stack
from core.model.saliency import to_stack
from core.video.store import VolumeStore
from core.video.straighten import vessel_band


def _arc_vessel(shape=(80, 100), radius=3, margin=3):
    """A curved vessel (a quarter circle) as centreline points, its lumen and its filled outline mask."""
    t = np.linspace(0, np.pi / 2, 400)
    centre = np.stack([10 + 60 * np.sin(t), 90 - 70 * np.cos(t) - 10], axis=1)  # (y, x)
    lumen = np.zeros(shape, np.uint8)
    mask = np.zeros(shape, np.uint8)
    pts = np.rint(centre[:, ::-1]).astype(np.int32)
    cv2.polylines(lumen, [pts], False, 1, thickness=2 * radius + 1)
    cv2.polylines(mask, [pts], False, 1, thickness=2 * (radius + margin) + 1)
    return centre, lumen.astype(bool), mask


def test_band_follows_a_curved_vessel_end_to_end():
    centre, lumen, mask = _arc_vessel()
    band = vessel_band(mask)
    length, width = band.shape
    arc = np.hypot(*np.diff(centre, axis=0).T).sum()
    assert 0.9 * arc <= length <= arc + 2 * 8  # the whole segment, ends included
    assert 2 * 6 + 1 <= width <= 2 * 8 + 1  # the outline's width
    mid = width // 2
    on_centre = lumen[np.rint(band.y[:, mid]).astype(int), np.rint(band.x[:, mid]).astype(int)]
    assert on_centre[5:-5].all()  # the band's middle column runs inside the lumen
    assert not lumen[np.rint(band.y[:, 0]).astype(int), np.rint(band.x[:, 0]).astype(int)][5:-5].any()


def test_a_stalled_shadow_stays_in_place_and_slow_flow_drifts_along_the_band():
    """The kymograph picture: a shadow fixed in the ROI is at one place along the band in every slice;
    a shadow moving along the vessel moves along the band at the same speed."""
    centre, lumen, mask = _arc_vessel()
    band = vessel_band(mask)
    mid = band.shape[1] // 2

    def shadow_positions(along):  # one dark shadow per slice at arc index ``along[z]``
        volume = np.where(lumen, 200, 20)[None].repeat(len(along), 0).astype(np.uint8)
        for z, i in enumerate(along):
            y, x = np.rint(centre[i]).astype(int)
            cv2.circle(volume[z], (x, y), 3, 20, -1)
        straight = band.sample(volume)[:, :, mid].astype(float)
        return np.array([np.argmin(row[4:-4]) + 4 for row in straight])

    stalled = shadow_positions([200] * 10)
    assert np.ptp(stalled) <= 1
    moving = shadow_positions(list(range(100, 300, 20)))
    steps = np.diff(moving)
    step_px = np.hypot(*np.diff(centre, axis=0).T).mean() * 20
    assert (np.abs(np.abs(steps) - step_px) <= 2).all() and len(set(np.sign(steps))) == 1


@pytest.mark.parametrize("case", ["blob", "empty", "full", "unfilled"])
def test_masks_without_a_path(case):
    mask = np.zeros((40, 40), np.uint8)
    if case == "blob":  # a vessel seen end-on: a small round outline
        cv2.circle(mask, (20, 20), 5, 1, -1)
        band = vessel_band(mask)
        assert band is not None and band.shape[0] >= 8
        assert mask[np.rint(band.y).astype(int).clip(0, 39), np.rint(band.x).astype(int).clip(0, 39)].mean() > 0.5
        return
    if case == "unfilled":  # an outline left open, so only its 2 px line is in the mask
        cv2.ellipse(mask, (20, 20), (15, 8), 0, 20, 340, 1, thickness=2)
    else:
        mask[:] = case == "full"
    assert vessel_band(mask) is None


def test_vessel_view_input_shape_and_fallback_without_outline():
    _, lumen, mask = _arc_vessel()
    rng = np.random.default_rng(0)
    volume = (np.where(lumen, 180, 30) + rng.normal(0, 5, (20, *lumen.shape))).clip(0, 255).astype(np.uint8)
    spec = InputSpec(size=16, max_depth=32, mask_channel=True, vessel=True)
    image = prepare_stack(volume, mask, spec)
    assert image.shape == (2, 20, 32, 8) and spec.grid == (32, 8)
    assert abs(image[0].mean()) < 1e-4
    assert image[1].mean() > 0.8 and image[1][:, 2:-2, 2:6].min() > 0.9  # the band lies inside the outline
    assert image[0][:, :, 3:5].mean() > image[0][:, :, [0, 7]].mean() + 1  # the lumen runs along the middle
    assert prepare_stack(volume, None, spec).shape == (2, 20, 32, 8)  # no outline: the ROI on the same grid


def test_saliency_on_the_band_is_painted_back_inside_the_outline():
    _, _, mask = _arc_vessel()
    spec = InputSpec(size=16, max_depth=32, mask_channel=True, vessel=True)
    back = to_stack(np.ones((4, *spec.grid), np.float32), [0, 1, 2, 3], 4, *mask.shape, mask=mask, spec=spec)
    assert back.shape == (4, *mask.shape)
    inside = back[:, mask.astype(bool)]
    assert back[:, ~cv2.dilate(mask, np.ones((9, 9), np.uint8)).astype(bool)].max() == 0  # nothing far off it
    assert (inside > 0.99).mean() > 0.9


def test_a_caching_dataset_straightens_each_stack_once(tmp_path, monkeypatch):
    _, lumen, mask = _arc_vessel()
    volume = np.where(lumen, 180, 30)[None].repeat(12, 0).astype(np.uint8)
    with VolumeStore(tmp_path / "store") as store:
        store.put("a", volume, mask=mask)
    calls = []
    monkeypatch.setattr(preprocess, "vessel_band", lambda m: calls.append(1) or vessel_band(m))
    spec = InputSpec(size=16, max_depth=32, mask_channel=True, vessel=True)
    dataset = StackDataset(tmp_path / "store", ["a"], spec, cache={})
    images = [dataset[0]["image"].numpy() for _ in range(3)]
    assert len(calls) == 1  # the outline never changes: its band is made once (training's cache)
    for image in images:
        np.testing.assert_array_equal(image, prepare_stack(volume, mask, spec))
