"""Whole-stack 3D augmentations from MONAI, applied to ``(C, D, H, W)`` arrays.

All of them keep the label: a stalled plug stays static and a flowing vessel keeps flickering
under flips (depth included), in-plane quarter turns, intensity changes and noise. Spatial
transforms move every channel together (the stack and its outline mask stay aligned); intensity
changes and noise touch the stack (channel 0) only. Elastic deformation is the expensive one
(≈ 0.3 s per 32×64×64 stack on one CPU core, four times a ``slim3d`` training step), so it is off
by default and meant for GPU runs.
"""

from __future__ import annotations

import numpy as np
from monai.data import set_track_meta
from monai.transforms import (Compose, Rand3DElastic, RandFlip, RandGaussianNoise, RandRotate90,
                              RandScaleIntensity, RandShiftIntensity)
from monai.utils import convert_to_numpy


class StackAugment:
    """Spatial transforms on all channels, then intensity transforms on channel 0."""

    def __init__(self, spatial: Compose, intensity: Compose) -> None:
        self.spatial, self.intensity = spatial, intensity

    def set_random_state(self, seed: int) -> None:
        """Seed both pipelines (reproducible epochs and workers)."""
        rng = np.random.default_rng(seed)
        self.spatial.set_random_state(seed=int(rng.integers(2**31)))
        self.intensity.set_random_state(seed=int(rng.integers(2**31)))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        out = convert_to_numpy(self.spatial(image), dtype=np.float32).copy()
        out[:1] = convert_to_numpy(self.intensity(out[:1]), dtype=np.float32)
        return out


def train_augment(*, flip_prob: float = 0.5, rot90_prob: float = 0.5, intensity_prob: float = 0.5,
                  noise_prob: float = 0.3, noise_std: float = 0.1, elastic_prob: float = 0.0) -> StackAugment:
    """The training augmentation pipeline.

    Parameters
    ----------
    flip_prob
        Probability of a flip along each of depth, height and width (independently).
    rot90_prob
        Probability of a random quarter turn in the height-width plane.
    intensity_prob
        Probability of each of a random contrast scale (±10 %) and brightness shift (±0.1 sd).
    noise_prob, noise_std
        Additive Gaussian noise (inputs are standardised, so ``noise_std`` is in sd units).
    elastic_prob
        Probability of a small 3D elastic deformation.
    """
    set_track_meta(False)  # plain tensors: MONAI's metadata tracking only costs time here
    spatial = [RandFlip(prob=flip_prob, spatial_axis=axis) for axis in range(3)]
    spatial.append(RandRotate90(prob=rot90_prob, max_k=3, spatial_axes=(1, 2)))
    if elastic_prob > 0:
        spatial.append(Rand3DElastic(sigma_range=(5, 7), magnitude_range=(0, 2), prob=elastic_prob,
                                     padding_mode="zeros"))
    intensity = [RandScaleIntensity(factors=0.1, prob=intensity_prob),
                 RandShiftIntensity(offsets=0.1, prob=intensity_prob),
                 RandGaussianNoise(prob=noise_prob, std=noise_std)]
    return StackAugment(Compose(spatial), Compose(intensity))
