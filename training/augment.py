"""Whole-stack 3D augmentations from MONAI, applied to ``(1, D, H, W)`` arrays.

All of them keep the label: a stalled plug stays static and a flowing vessel keeps flickering
under flips (depth included), in-plane quarter turns, intensity changes and noise. Elastic
deformation is the expensive one (≈ 0.3 s per 32×64×64 stack on one CPU core, four times a
``slim3d`` training step), so it is off by default and meant for GPU runs.
"""

from __future__ import annotations

from monai.data import set_track_meta
from monai.transforms import (Compose, Rand3DElastic, RandFlip, RandGaussianNoise, RandRotate90,
                              RandScaleIntensity, RandShiftIntensity)


def train_augment(*, flip_prob: float = 0.5, rot90_prob: float = 0.5, intensity_prob: float = 0.5,
                  noise_prob: float = 0.3, noise_std: float = 0.1, elastic_prob: float = 0.0) -> Compose:
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
    transforms = [RandFlip(prob=flip_prob, spatial_axis=axis) for axis in range(3)]
    transforms += [RandRotate90(prob=rot90_prob, max_k=3, spatial_axes=(1, 2)),
                   RandScaleIntensity(factors=0.1, prob=intensity_prob),
                   RandShiftIntensity(offsets=0.1, prob=intensity_prob),
                   RandGaussianNoise(prob=noise_prob, std=noise_std)]
    if elastic_prob > 0:
        transforms.append(Rand3DElastic(sigma_range=(5, 7), magnitude_range=(0, 2), prob=elastic_prob,
                                        padding_mode="zeros"))
    return Compose(transforms)
