"""One epoch of training and one evaluation pass; losses and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm


LOSSES = ("bce", "focal")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(name: str = "bce", gamma: float = 2.0) -> LossFn:
    """Binary cross-entropy or focal loss on logits; both accept soft targets in [0, 1].

    Focal loss (Lin et al. 2017) scales each term by ``(1 - p_t) ** gamma`` so easy, confident
    stacks weigh less.
    """
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if name == "bce":
            return bce.mean()
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        return ((1 - p_t) ** gamma * bce).mean()

    return loss_fn


class WarmupCosine:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` at ``total``.

    A callable object rather than a closure so ``LambdaLR.state_dict()`` saves ``total``, which
    the time budget may shorten after the first epoch.
    """

    def __init__(self, warmup: int, total: int, floor: float = 0.01) -> None:
        self.warmup, self.total, self.floor = max(1, warmup), max(1, total), floor

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimiser(model: nn.Module, lr: float, weight_decay: float, warmup: int,
                   total: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on norms and biases) with a per-step :class:`WarmupCosine` schedule."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=lr)
    return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, WarmupCosine(warmup, total))


def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn: LossFn, optimiser: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                    device: torch.device, *, desc: str = "train", show: bool = True,
                    should_stop: Callable[[int], bool] | None = None) -> tuple[float, bool]:
    """Train one pass over ``loader``; AMP and channels-last on CUDA.

    ``should_stop(step)`` is asked before every step with the scheduler's step count (the time
    budget); when it says yes the epoch ends early. Returns the mean loss and whether the pass was
    complete.
    """
    model.train()
    cuda = device.type == "cuda"
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, unit="batch", disable=None if show else True, leave=False)  # None: a terminal only
    for batch in bar:
        if should_stop is not None and should_stop(scheduler.last_epoch) and count:
            bar.close()
            return total / count, False
        images = batch["image"].to(device, non_blocking=True)
        if cuda:
            images = images.contiguous(memory_format=torch.channels_last_3d)
        target = batch["target"].to(device).unsqueeze(1)
        with torch.autocast(device.type, enabled=cuda):
            logits = model(images, batch["mask"].to(device))
        loss = loss_fn(logits.float(), target)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        scheduler.step()
        total += loss.item() * len(target)
        count += len(target)
        bar.set_postfix(loss=f"{total / count:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    return total / max(count, 1), True
