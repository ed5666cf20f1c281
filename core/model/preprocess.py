"""Stored ROI stack → network input, shared by training and prediction.

Depth scheme ("stride, then pad to the longest in the batch"): a stack of ``n`` slices is read with
stride ``s = ceil(n / max_depth)`` so at most ``max_depth`` slices remain, every kept slice is an
original one. We do not interpolate along depth on purpose: the stalled/flowing cue is whether
dark blobs change between neighbouring slices, and averaging slices would wash out exactly that
flicker (and repeating slices to stretch short stacks would fake a static plug). Short stacks are
zero-padded instead, to the longest stack in the batch rounded up to a multiple of 8, and a depth
mask tells the network which slices are real. Height and width are resized to ``size × size``
(area interpolation) and each stack is standardised to zero mean and unit variance, which removes
per-project brightness and contrast differences.

With ``mask_channel`` the network gets a second channel: the stored filled outline mask (1 on and
inside the outlined segment, resized the same way and repeated on every kept slice), so it knows
which vessel the question is about when others cross the ROI. Stacks stored without a mask get an
all-ones channel.

With ``focus_depth`` the depth is first cropped to where the outlined vessel is in focus, as the
outline crops the frame: a stack is often much deeper than the vessel's in-focus range, and
striding over all of it leaves only a slice or two of the vessel (the "few informative slices"
case). The focus is where the outlined region is brighter than the rest of the ROI (plasma is the
bright lumen); the crop is never shorter than ``max_depth`` slices (so it keeps neighbouring slices
at stride 1 around a short focus), and a stack without a clear focus keeps its whole depth.

With ``vessel`` every kept slice is resampled along the outlined vessel's centreline
(:mod:`core.video.straighten`) instead of resizing the ROI: the network sees the vessel as a straight
band, ``2 × size`` pixels along it by ``size / 2`` across (as many pixels as the ROI view), so a
stalled shadow is a streak along depth at one place, slow flow a slanted one, and vessels beside
the outlined one are left out. A stack without a usable outline falls back to its ROI, resized to
the same grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.video.store import VolumeStore
from core.video.straighten import Band, vessel_band

DEPTH_MULTIPLE = 8


@dataclass(frozen=True)
class InputSpec:
    """How stacks are shaped for the network: ``size``×``size`` slices of the ROI (or the straightened
    vessel if ``vessel``), at most ``max_depth`` of them (taken from the outlined vessel's in-focus
    range if ``focus_depth``), and whether the outline mask is a second channel."""

    size: int = 32
    max_depth: int = 32
    mask_channel: bool = False
    focus_depth: bool = False
    vessel: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of every slice the network sees (vessel view: along × across the vessel)."""
        return (2 * self.size, max(1, self.size // 2)) if self.vessel else (self.size, self.size)

    @property
    def channels(self) -> int:
        """Input channels of the network: the stack, plus the outline mask if ``mask_channel``."""
        return 2 if self.mask_channel else 1


def depth_indices(n: int, max_depth: int, offset: int = 0) -> np.ndarray:
    """Indices of the slices kept from a stack of ``n``: stride ``ceil(n / max_depth)``.

    ``offset`` (taken modulo the stride) shifts the start, which training uses as an augmentation.
    """
    stride = max(1, math.ceil(n / max_depth))
    return np.arange(offset % stride, n, stride)[:max_depth]


def focus_range(volume: np.ndarray, mask: np.ndarray | None, min_slices: int, *,
                smooth: int = 5, min_snr: float = 4.0) -> tuple[int, int]:
    """The slices ``[start, stop)`` where the outlined vessel is in focus, at least ``min_slices`` long.

    Per slice, the contrast is the mean grey level inside the outline ``mask`` minus the mean
    outside it, smoothed over ``smooth`` slices; the focus is the span where it exceeds half-way
    from its lowest to its highest value, widened evenly to ``min_slices``. The whole depth is
    returned when there is no mask to go by, when the stack is no deeper than ``min_slices``, or
    when the contrast's range is under ``min_snr`` times its slice-to-slice noise (no clear focus).
    """
    depth = volume.shape[0]
    inside = mask is not None and mask.shape == volume.shape[1:] and mask.any() and not mask.all()
    if not inside or depth <= min_slices:
        return 0, depth
    region = mask.astype(bool)
    raw = volume[:, region].mean(axis=1, dtype=np.float64) - volume[:, ~region].mean(axis=1, dtype=np.float64)
    contrast = np.convolve(np.pad(raw, smooth // 2, mode="edge"), np.ones(smooth) / smooth, mode="valid")
    low, high = float(contrast.min()), float(contrast.max())
    noise = float(np.median(np.abs(np.diff(raw)))) / 0.95 + 1e-6  # ≈ sd of the slice-to-slice jumps
    if high - low < min_snr * noise:
        return 0, depth
    above = np.flatnonzero(contrast >= (low + high) / 2)
    start, stop = int(above[0]), int(above[-1]) + 1
    missing = max(0, min_slices - (stop - start))
    start = max(0, min(start - missing // 2, depth - max(min_slices, stop - start)))
    return start, min(depth, max(stop, start + min_slices))


def kept_slices(volume: np.ndarray, mask: np.ndarray | None, spec: InputSpec, offset: int = 0) -> np.ndarray:
    """Indices of the slices of a stored stack that the network sees (in-focus range, then stride)."""
    start, stop = focus_range(volume, mask, spec.max_depth) if spec.focus_depth else (0, volume.shape[0])
    return start + depth_indices(stop - start, spec.max_depth, offset)


def _resize(slices: np.ndarray, grid: tuple[int, int], interp: int | None = None) -> np.ndarray:
    rows, cols = grid
    h, w = slices.shape[1:]
    if interp is None:
        interp = cv2.INTER_AREA if h * w >= rows * cols else cv2.INTER_LINEAR
    return np.stack([cv2.resize(s, (cols, rows), interpolation=interp) for s in slices])


def _standardise(slices: np.ndarray) -> np.ndarray:
    out = slices.astype(np.float32)
    out -= out.mean()
    out /= out.std() + 1.0  # +1 grey level: blank stacks are not blown up into noise
    return out


def stack_band(mask: np.ndarray | None, spec: InputSpec) -> Band | None:
    """The straightened band a stack is seen through (``None``: the ROI view, or no usable outline)."""
    return vessel_band(mask) if spec.vessel and mask is not None else None


@dataclass(frozen=True)
class FocusedStack:
    """The part of a stack's network input that is the same in every epoch: its in-focus slices,
    straightened (or resized) to the grid as ``uint8 (n, *spec.grid)``, and the outline channel."""

    slices: np.ndarray
    outline: np.ndarray


def focused_stack(volume: np.ndarray, mask: np.ndarray | None, spec: InputSpec,
                  band: Band | None = None) -> FocusedStack:
    """A stored ``uint8 (D, H, W)`` stack and its outline ``(H, W)`` (``None``: no outline) seen through
    ``spec``, before the depth stride: what a training set keeps per stack (:class:`StackDataset`'s
    ``cache``), as straightening and resizing work slice by slice and keep the grey levels ``uint8``."""
    if volume.ndim != 3 or min(volume.shape) == 0:
        raise ValueError(f"expected a non-empty (D, H, W) volume, got shape {volume.shape}")
    start, stop = focus_range(volume, mask, spec.max_depth) if spec.focus_depth else (0, volume.shape[0])
    kept = volume[start:stop]
    outline = np.ones(volume.shape[1:], np.float32) if mask is None else mask.astype(np.float32)
    band = band if band is not None else stack_band(mask, spec)
    if band is not None:
        kept, outline = band.sample(kept), band.sample(outline)
    return FocusedStack(_resize(kept, spec.grid), _resize(outline[None], spec.grid, cv2.INTER_AREA)[0])


def network_input(focused: FocusedStack, spec: InputSpec, offset: int = 0) -> np.ndarray:
    """The network input ``float32 (spec.channels, d, *spec.grid)``: every k-th focused slice from
    ``offset`` (:func:`depth_indices`), standardised, with the outline channel."""
    image = _standardise(focused.slices[depth_indices(len(focused.slices), spec.max_depth, offset)])
    if not spec.mask_channel:
        return image[None]
    return np.stack([image, np.broadcast_to(focused.outline, image.shape)])


def prepare_stack(volume: np.ndarray, mask: np.ndarray | None, spec: InputSpec, offset: int = 0) -> np.ndarray:
    """The network input ``float32 (spec.channels, d, *spec.grid)`` of a stored ``uint8 (D, H, W)`` stack
    and its outline mask ``(H, W)`` (``None``: no outline; the mask channel is then all ones)."""
    return network_input(focused_stack(volume, mask, spec), spec, offset)


class StackDataset(Dataset):
    """Stacks read from a :class:`core.video.store.VolumeStore`, one item per key.

    The store is opened lazily in each process, so the dataset is safe to use with DataLoader
    workers. Items are dicts with ``image`` ``(spec.channels, d, *spec.grid)``, ``index`` and, when
    ``targets`` is given, ``target``.

    Parameters
    ----------
    store_path
        Directory of the LMDB volume store.
    keys
        Store keys (``core.video.store.key_for(filename)``).
    spec
        Input shape.
    targets
        Optional training target per key (probability of "stalled").
    transform
        Optional callable applied to the ``(channels, d, rows, cols)`` array (augmentation).
    random_offset
        Draw the depth-stride offset at random (training) instead of 0.
    cache
        A mapping that keeps each stack's :class:`FocusedStack` after its first read, shared by the
        datasets of one training run (its folds read the same stacks every epoch); ``None`` reads
        the store every time (scoring: each stack once, and no memory held for a million stacks).
    """

    def __init__(self, store_path: str | Path, keys: Sequence[str], spec: InputSpec,
                 targets: Sequence[float] | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 random_offset: bool = False, cache: dict[str, FocusedStack] | None = None) -> None:
        self.store_path = Path(store_path)
        self.keys = list(keys)
        self.spec = spec
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        self.transform = transform
        self.random_offset = random_offset
        self._store: VolumeStore | None = None
        self.cache = cache
        self._rng = np.random.default_rng()
        self.epoch_seed: list[int] = [0]  # read by DataLoader workers' init to reseed per epoch

    def __len__(self) -> int:
        return len(self.keys)

    def reseed(self, seed: int | Sequence[int]) -> None:
        """Seed the depth-offset draws and the transform (per epoch and worker: reproducible runs)."""
        self._rng = np.random.default_rng(seed)
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=int(self._rng.integers(2**31)))

    def _read(self, key: str) -> FocusedStack:
        if self._store is None:
            self._store = VolumeStore(self.store_path, readonly=True)
        stack = self._store.get(key)
        focused = focused_stack(stack.volume, stack.mask, self.spec)
        if self.cache is not None:
            self.cache[key] = focused
        return focused

    def __getitem__(self, index: int) -> dict:
        key = self.keys[index]
        focused = None if self.cache is None else self.cache.get(key)
        if focused is None:
            focused = self._read(key)
        offset = int(self._rng.integers(DEPTH_MULTIPLE * 64)) if self.random_offset else 0
        image = network_input(focused, self.spec, offset)
        if self.transform is not None:
            image = np.ascontiguousarray(np.asarray(self.transform(image), dtype=np.float32))
        item = {"image": torch.from_numpy(image), "index": index}
        if self.targets is not None:
            item["target"] = torch.tensor(self.targets[index])
        return item


def pad_collate(items: list[dict]) -> dict:
    """Batch items of different depth: zero-pad to the longest (rounded up to 8) and add ``mask``."""
    depth = max(it["image"].shape[1] for it in items)
    depth = max(DEPTH_MULTIPLE, math.ceil(depth / DEPTH_MULTIPLE) * DEPTH_MULTIPLE)
    channels, _, h, w = items[0]["image"].shape
    images = torch.zeros(len(items), channels, depth, h, w)
    mask = torch.zeros(len(items), depth)
    for i, it in enumerate(items):
        d = it["image"].shape[1]
        images[i, :, :d] = it["image"]
        mask[i, :d] = 1.0
    batch = {"image": images, "mask": mask, "index": torch.tensor([it["index"] for it in items])}
    if "target" in items[0]:
        batch["target"] = torch.stack([it["target"] for it in items])
    return batch
