"""Cross-fitted ensemble + test-time-augmentation inference from a run directory.

A run holds one predictor per fold (its snapshots, see :mod:`core.model.rundir`). Every stack is scored
by exactly ONE fold's members (cross-fitting), so the scores the thresholds are tuned on and the
scores of the stacks they decide come from the same kind of predictor:

* a stack the run trained on: by the fold that held it out (role ``"out_of_fold"``);
* any other stack: by the fold :func:`crossfit_fold` derives from a stable hash of its filename,
  role ``"held_out"`` when it has a label or crowd score (the run never trained on it) and
  ``"new"`` when it has neither.

Test-time augmentation averages over 1, 2, 4 or 8 flip views. Per stack: ``probability`` is the
mean over the fold's members × views, ``spread`` their standard deviation. Stacks are batched in
order of depth so a batch pads little. With the run's own TTA setting, a trained-on stack's score
is read from the run's ``oof.csv`` (computed by exactly those members); with another, it is
recomputed.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.labels.records import StackRecord
from core.model.nets import Net3D, create_model
from core.model.preprocess import DEPTH_MULTIPLE, InputSpec, StackDataset, kept_slices, pad_collate
from core.model.rundir import RunDir
from core.video.store import VolumeStore

log = logging.getLogger(__name__)

# Flip axes of a (B, 1, D, H, W) batch: width, height, then depth; 2**k views use the first k.
_FLIP_AXES = (4, 3, 2)
TTA_VIEWS = (1, 2, 4, 8)
COLUMNS = ["filename", "probability", "spread", "role", "fold"]


def crossfit_fold(filename: str, folds: int) -> int:
    """The fold whose members score a stack the run did not train on: CRC-32 of the filename mod ``folds``.

    Stable across processes, machines and reruns (unlike Python's ``hash``), so a stack always
    gets the same score from the same run, and roughly uniform, so each fold decides a similar
    share of new stacks.
    """
    return zlib.crc32(filename.encode()) % folds


def flip_views(n_views: int) -> list[tuple[int, ...]]:
    """The flip-axis combinations for ``n_views`` (1 = identity, 8 = all flips of W, H and D)."""
    if n_views not in TTA_VIEWS:
        raise ValueError(f"TTA views must be one of {TTA_VIEWS}, got {n_views}")
    k = n_views.bit_length() - 1
    return [tuple(ax for bit, ax in enumerate(_FLIP_AXES[:k]) if i >> bit & 1) for i in range(n_views)]


@torch.no_grad()
def member_probabilities(models: Sequence[Net3D], images: torch.Tensor, mask: torch.Tensor,
                         n_views: int = 1) -> torch.Tensor:
    """Probabilities ``(B, members × views)`` of a padded batch under every member and flip view."""
    outs = []
    for axes in flip_views(n_views):
        x = images.flip(axes) if axes else images
        m = mask.flip(1) if 2 in axes else mask  # a depth flip moves the padding to the front
        outs += [torch.sigmoid(model(x, m).float()).squeeze(1) for model in models]
    return torch.stack(outs, dim=1)


@dataclass
class Ensemble:
    """A trained run loaded for inference."""

    arch: str
    spec: InputSpec
    folds: dict[int, list[Net3D]]
    oof: pd.DataFrame
    threshold: float
    tta: int

    @functools.cached_property
    def fold_of(self) -> dict[str, int]:
        """Filename → the fold that held the stack out, for every stack the run trained on."""
        return dict(zip(self.oof.index, self.oof["fold"].astype(int)))

    def scoring_fold(self, filename: str) -> int:
        """The one fold whose members score ``filename``: the fold that held it out when the run
        trained on it, else :func:`crossfit_fold`'s."""
        trained = self.fold_of.get(filename)
        return crossfit_fold(filename, len(self.folds)) if trained is None else trained

    def members(self, fold: int | None = None) -> list[Net3D]:
        """The fold's members, or every member of every fold (``fold=None``)."""
        return self.folds[fold] if fold is not None else [m for ms in self.folds.values() for m in ms]

    def assign(self, record: StackRecord) -> tuple[str, int]:
        """The stack's role and the fold that scores it (see the module docstring)."""
        if record.filename in self.fold_of:
            return "out_of_fold", self.fold_of[record.filename]
        known = record.label is not None or record.crowd_score is not None
        return ("held_out" if known else "new"), self.scoring_fold(record.filename)


def load_ensemble(run_dir: str | Path, device: str | torch.device = "cpu") -> Ensemble:
    """Load every snapshot, the fold assignment and the threshold from a finished run directory.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` is not a finished run (no config, out-of-fold file, threshold or snapshot).
    """
    run = RunDir(run_dir)
    if not run.is_complete():
        raise FileNotFoundError(f"{run.root}: not a finished training run (needs {run.config.name}, "
                                f"{run.oof.name} and {run.threshold.name}; train it with `stalltriage train`)")
    config = run.read_json(run.config)
    folds: dict[int, list[Net3D]] = {}
    for fold in range(config["folds"]):
        paths = run.snapshots(fold)
        if not paths:
            raise FileNotFoundError(f"{run.fold_dir(fold)}: no snapshot_e*.pt weights")
        folds[fold] = [load_member(config, p, device) for p in paths]
    oof = pd.read_csv(run.oof, dtype={"filename": str}).set_index("filename")
    return Ensemble(arch=config["arch"], spec=run_spec(config), folds=folds, oof=oof,
                    threshold=float(run.read_json(run.threshold)["threshold"]), tta=int(config["tta"]))


def run_spec(config: dict) -> InputSpec:
    """The input shape of a run from its ``config.json`` (runs from before the mask channel have one channel)."""
    return InputSpec(**config["input"])


def load_member(config: dict, path: Path, device: str | torch.device = "cpu") -> Net3D:
    """One ensemble member: the network ``config["arch"]`` with the weights at ``path``, in eval mode."""
    model = create_model(config["arch"], in_channels=run_spec(config).channels,
                         outline_pool=config.get("outline_pool", False), **config["model_kwargs"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last_3d) if torch.device(device).type == "cuda" else model


def depth_batches(store_path: str | Path, keys: Sequence[str], spec: InputSpec, batch_size: int) -> list[list[int]]:
    """Batches of indices into ``keys`` whose stacks pad to the same depth, shallowest first.

    A batch is padded to its longest stack (rounded up to 8 slices), and the padding reaches the
    features of the real slices next to it (batch norm turns zeros into non-zeros), so a stack's
    score would depend on its companions. Batching only stacks of one padded depth makes every
    score a function of the stack alone: the same on one process or sharded over many.
    """
    with VolumeStore(store_path, readonly=True) as store:
        depths = [len(kept_slices(stack.volume, stack.mask, spec)) for stack in map(store.get, keys)]
    padded = [max(DEPTH_MULTIPLE, -(-d // DEPTH_MULTIPLE) * DEPTH_MULTIPLE) for d in depths]
    batches = []
    for depth in sorted(set(padded)):
        same = [i for i, p in enumerate(padded) if p == depth]
        batches += [same[i:i + batch_size] for i in range(0, len(same), batch_size)]
    return batches


def score_loader(models: Sequence[Net3D], loader: DataLoader, n_views: int = 1,
                 device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """Member × view probabilities ``(len(dataset), members × views)`` in the loader's dataset order.

    The loader must yield :func:`core.model.preprocess.pad_collate` batches. On CUDA the batches run in
    mixed precision and channels-last layout.
    """
    device = torch.device(device)
    for model in models:
        model.eval()
    out = np.zeros((len(loader.dataset), len(models) * n_views), dtype=np.float32)
    cuda = device.type == "cuda"
    for batch in tqdm(loader, desc="scoring", unit="batch", disable=None if progress else True,  # None: a terminal only
                      leave=False):
        images = batch["image"].to(device, non_blocking=True)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast(device.type, enabled=cuda):
            probs = member_probabilities(models, images, batch["mask"].to(device), n_views)
        out[batch["index"].numpy()] = probs.cpu().numpy()
    return out


def score_keys(models: Sequence[Net3D], store_path: str | Path, keys: Sequence[str], spec: InputSpec, *,
               n_views: int = 1, batch_size: int = 8, workers: int = 0,
               device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """Member × view probabilities ``(len(keys), members × views)`` for stacks in the store.

    Stacks are batched by padded depth (:func:`depth_batches`), so each score depends on its stack only.
    """
    dataset = StackDataset(store_path, keys, spec)
    loader = DataLoader(dataset, batch_sampler=depth_batches(store_path, keys, spec, batch_size), num_workers=workers,
                        collate_fn=pad_collate, pin_memory=torch.device(device).type == "cuda")
    return score_loader(models, loader, n_views, device, progress)


def predict_stacks(run_dir: str | Path, records: Sequence[StackRecord], store_path: str | Path, *,
                   tta: int | None = None, batch_size: int = 8, workers: int = 0,
                   device: str | torch.device = "cpu", progress: bool = True) -> pd.DataFrame:
    """Score ``records`` with the run's cross-fitted ensemble (one fold's members per stack).

    Parameters
    ----------
    run_dir
        A finished training run.
    records
        Stacks to score (their ``key`` must be in the store).
    store_path
        The volume store.
    tta
        Flip views (1, 2, 4 or 8); default: the run's, which its threshold was chosen with.

    Returns
    -------
    pandas.DataFrame
        ``filename, probability, spread, role, fold`` in the order of ``records``: ``role`` is
        ``"out_of_fold"``, ``"held_out"`` or ``"new"`` and ``fold`` the fold whose members scored
        the stack. The run's decision threshold is in ``df.attrs["threshold"]``.
    """
    ensemble = load_ensemble(run_dir, device)
    n_views = ensemble.tta if tta is None else tta
    roles, folds = zip(*(ensemble.assign(rec) for rec in records)) if records else ((), ())
    prob = np.zeros(len(records))
    spread = np.zeros(len(records))
    groups: dict[int, list[int]] = {}
    for i, rec in enumerate(records):
        if roles[i] == "out_of_fold" and n_views == ensemble.tta:  # the score training already computed
            prob[i], spread[i] = ensemble.oof.loc[rec.filename, ["probability", "spread"]]
        else:
            groups.setdefault(folds[i], []).append(i)
    for fold, idx in sorted(groups.items()):
        scores = score_keys(ensemble.members(fold), store_path, [records[i].key for i in idx], ensemble.spec,
                            n_views=n_views, batch_size=batch_size, workers=workers, device=device,
                            progress=progress)
        prob[idx], spread[idx] = scores.mean(axis=1), scores.std(axis=1)
        log.info("scored %d stacks with fold %d", len(idx), fold)
    df = pd.DataFrame({"filename": [r.filename for r in records], "probability": prob, "spread": spread,
                       "role": list(roles), "fold": np.asarray(folds, dtype=int)}, columns=COLUMNS)
    df.attrs["threshold"] = ensemble.threshold
    return df
