"""Grad-CAM of the ensemble: on the stack's grid, where the evidence is, from the right members."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.model.nets import Net3D
from core.model.predict import Ensemble, crossfit_fold, load_ensemble
from core.model.preprocess import InputSpec
from core.model.saliency import Explainer, overlay, to_stack
from testkit.run_dir import make_run_dir


def _bright_blob(depth=20, height=30, width=40, at=(10, 8, 30)) -> np.ndarray:
    volume = np.full((depth, height, width), 40, np.uint8)
    z, y, x = at
    volume[z - 2:z + 3, y - 3:y + 4, x - 3:x + 4] = 220
    return volume


def _identity_ensemble(spec: InputSpec) -> Ensemble:
    """One member whose logit is the mean input intensity: its evidence is where the stack is bright."""
    trunk = nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        trunk.weight.fill_(1.0)
        trunk.bias.zero_()
    model = Net3D(trunk, channels=1).eval()
    with torch.no_grad():
        model.head.weight.fill_(1.0)
        model.head.bias.zero_()
    import pandas as pd
    return Ensemble(arch="test", spec=spec, folds={0: [model]}, oof=pd.DataFrame(columns=["fold"]), threshold=0.5,
                    tta=1)


def test_the_map_peaks_where_the_evidence_is():
    volume = _bright_blob()
    saliency = Explainer(_identity_ensemble(InputSpec(size=32, max_depth=32))).explain("a.mp4", volume)
    assert saliency.shape == volume.shape and saliency.dtype == np.float32
    assert saliency.min() >= 0 and saliency.max() == pytest.approx(1.0)
    z, y, x = np.unravel_index(saliency.argmax(), saliency.shape)
    assert abs(z - 10) <= 2 and abs(y - 8) <= 3 and abs(x - 30) <= 3
    assert saliency[:, 20:, :15].max() < 0.1  # nothing where the stack is plain background


def test_a_stack_is_explained_by_the_fold_that_scores_it(tmp_path):
    ensemble = load_ensemble(make_run_dir(tmp_path / "run", trained_on=["a.mp4", "b.mp4"], folds=2))
    explainer = Explainer(ensemble)
    assert explainer.members("b.mp4") == ensemble.folds[1]
    assert explainer.members("new.mp4") == ensemble.folds[crossfit_fold("new.mp4", 2)]
    volume = _bright_blob(depth=40)
    first = explainer.explain("a.mp4", volume)
    assert first.shape == (40, 30, 40) and np.isfinite(first).all()
    np.testing.assert_array_equal(explainer.explain("a.mp4", volume), first)  # cached CAMs do not add up hooks


def test_to_stack_maps_kept_slices_back_to_every_slice():
    grid = np.stack([np.full((8, 8), v, np.float32) for v in (0.0, 0.25, 0.5, 1.0)])
    back = to_stack(grid, [0, 2, 4, 6], 8, 6, 10)  # stride 2: slices 0, 2, 4, 6 were seen
    assert back.shape == (8, 6, 10)
    assert [float(back[z, 0, 0]) for z in range(8)] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0]


def test_overlay_leaves_slices_without_evidence_grey():
    volume = _bright_blob(depth=2)
    saliency = np.zeros(volume.shape, np.float32)
    saliency[1, :5, :5] = 1.0
    frames = overlay(volume, saliency)
    assert frames.shape == volume.shape + (3,)
    assert (frames[0] == volume[0][..., None]).all()
    assert (frames[1, :5, :5, 0] != frames[1, :5, :5, 2]).all()  # coloured where the map is high
    with pytest.raises(ValueError, match="differ in shape"):
        overlay(volume, saliency[:1])
