"""Where the ensemble's evidence for "stalled" lies, slice by slice: 3D Grad-CAM of the run's members.

Reviewers and readers of a paper ask what the network looks at. For one stack we run MONAI's
:class:`monai.visualize.GradCAM` on the trunk (``Net3D.features``) of the run's own members: the
feature maps weighted by the gradient of the "stalled" logit, rectified, upsampled to the network
input and normalised to [0, 1]. Members are those that score the stack under cross-fitting: the
fold that held it out for a stack the run trained on, else the fold its filename hashes to (each
member costs one forward and one backward pass; a few seconds per stack on a CPU at the run's
input size).
The members' raw maps are averaged, then scaled so the strongest evidence is 1.

The map lives on the network's input grid (``spec.max_depth`` kept slices of ``spec.grid``
pixels); :func:`to_stack` maps it back onto every slice of the stored ROI (through the
straightened band, for runs that see the vessel straightened), and
:func:`overlay` blends it over the grey slices as a heat map for the app and for ``stalltriage
explain``.
"""

from __future__ import annotations

import logging
import warnings

import cv2
import numpy as np
import torch
from monai.visualize import GradCAM

from core.model.nets import Net3D
from core.model.predict import Ensemble
from core.model.preprocess import InputSpec, kept_slices, prepare_stack, stack_band

log = logging.getLogger(__name__)


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    return x


class Explainer:
    """Grad-CAM for the stacks of one run: one :class:`~monai.visualize.GradCAM` per member, made once.

    (MONAI's CAM registers hooks on the member when it is made and never removes them, so a CAM
    is made once per member and reused; keep one explainer per loaded ensemble.)
    """

    def __init__(self, ensemble: Ensemble) -> None:
        self.ensemble = ensemble
        self._cams: dict[int, GradCAM] = {}

    def members(self, filename: str) -> list[Net3D]:
        """The members that score ``filename`` under cross-fitting (:meth:`Ensemble.scoring_fold`)."""
        return self.ensemble.members(self.ensemble.scoring_fold(filename))

    def _cam(self, model: Net3D) -> GradCAM:
        if id(model) not in self._cams:
            # raw maps: MONAI's default post-processing rescales each map to (1, 0), flipping it
            self._cams[id(model)] = GradCAM(nn_module=model, target_layers="features", postprocessing=_unchanged)
        return self._cams[id(model)]

    def grad_cam(self, filename: str, volume: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Mean Grad-CAM of the stack's members on a stored ``uint8 (D, H, W)`` stack, on the input
        grid: ``float32 (d, *spec.grid)`` in [0, 1], one map per slice kept by
        :func:`core.model.preprocess.kept_slices`. ``mask`` is the stored outline mask (for runs that
        take it as a second channel; all ones when ``None``)."""
        members = self.members(filename)
        log.debug("Grad-CAM of %s with %d members", filename, len(members))
        spec = self.ensemble.spec
        image = torch.from_numpy(prepare_stack(volume, mask, spec))[None]
        depth = image.shape[2]
        pad = max(0, max(m.min_depth for m in members) - depth)  # pad here, so the map keeps the real depth
        image = torch.nn.functional.pad(image, (0, 0, 0, 0, 0, pad)).requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MONAI's note on hooks when inputs need no grad
            maps = [self._cam(model)(image)[0, 0, :depth].detach().float().numpy() for model in members]
        mean = np.mean(maps, axis=0)
        peak = float(mean.max())
        return (mean / peak if peak > 0 else mean).astype(np.float32)

    def explain(self, filename: str, volume: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Grad-CAM of a stored ``uint8 (D, H, W)`` stack on its own grid: ``float32 (D, H, W)`` in [0, 1]."""
        spec = self.ensemble.spec
        saliency = self.grad_cam(filename, volume, mask)
        return to_stack(saliency, kept_slices(volume, mask, spec), *volume.shape, mask=mask, spec=spec)


def to_stack(saliency: np.ndarray, kept: np.ndarray, depth: int, height: int, width: int, *,
             mask: np.ndarray | None = None, spec: InputSpec | None = None) -> np.ndarray:
    """A map on the input grid back on the stored stack: ``float32 (depth, height, width)``.

    ``kept`` are the stored slices the network saw (:func:`core.model.preprocess.kept_slices`); each
    stored slice takes the map of the nearest one, resized to the ROI's size, or, when ``spec``
    straightens the vessel of the outline ``mask``, painted back along the vessel.
    """
    kept = np.asarray(kept)[:len(saliency)]
    nearest = np.abs(np.arange(depth)[:, None] - kept[None, :]).argmin(axis=1)
    band = None if spec is None else stack_band(mask, spec)
    if band is None:
        resized = np.stack([cv2.resize(s, (width, height), interpolation=cv2.INTER_LINEAR) for s in saliency])
    else:
        length, across = band.shape
        resized = np.stack([band.paint(cv2.resize(s, (across, length), interpolation=cv2.INTER_LINEAR),
                                       (height, width)) for s in saliency])
    return np.clip(resized[nearest], 0, 1).astype(np.float32)


def overlay(volume: np.ndarray, saliency: np.ndarray, *, strength: float = 0.6) -> np.ndarray:
    """Grey slices with the saliency as a heat map (inferno), ``uint8 (D, H, W, 3)`` RGB.

    Where the map is 0 the slice shows unchanged; the heat map's weight grows with the map
    (up to ``strength``), so weak evidence does not hide the vessel.
    """
    if volume.shape != saliency.shape:
        raise ValueError(f"volume {volume.shape} and saliency {saliency.shape} differ in shape")
    grey = np.repeat(volume[..., None], 3, axis=-1).astype(np.float32)
    levels = (np.clip(saliency, 0, 1) * 255).astype(np.uint8)
    heat = cv2.applyColorMap(levels.reshape(-1, 1), cv2.COLORMAP_INFERNO).reshape(*levels.shape, 3)[..., ::-1]
    weight = (strength * np.clip(saliency, 0, 1))[..., None]
    return np.clip(grey * (1 - weight) + heat.astype(np.float32) * weight, 0, 255).astype(np.uint8)
