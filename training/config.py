"""Training options: one dataclass, saved as the run's ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Options that shape the result: a rerun into an existing run directory must not change them.
IDENTITY_FIELDS = ("arch", "model_kwargs", "init_checkpoint", "folds", "epochs", "batch_size", "lr",
                   "weight_decay", "warmup_epochs", "loss", "focal_gamma", "stalled_share", "soft_labels",
                   "tier2", "tier2_cut", "size", "max_depth", "elastic_prob", "snapshots", "tta", "seed", "warm_start")


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: the CPU recipe)."""

    arch: str = "plain3d"
    model_kwargs: dict = field(default_factory=dict)
    init_checkpoint: str | None = None
    warm_start: str | None = None
    """A finished run directory: each fold starts from its last snapshot and stacks keep their folds
    (``training.warmstart``); ``init_checkpoint`` is then unused."""
    folds: int = 5
    epochs: int = 12
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup_epochs: float = 0.5
    loss: str = "bce"
    focal_gamma: float = 2.0
    stalled_share: float | None = 0.25
    soft_labels: bool = False
    tier2: str = "off"
    tier2_cut: float = 0.6
    size: int = 32
    max_depth: int = 32
    elastic_prob: float = 0.0
    snapshots: int = 2
    tta: int = 1
    time_budget_min: float | None = None
    device: str = "auto"
    workers: int = 0
    seed: int = 0

    def resolved_device(self) -> torch.device:
        """``auto`` → CUDA when available, else CPU."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The options a resumed run must share with the original."""
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}
