"""Layout of a self-describing run directory, written by ``training`` and read by ``core.model.predict``.

::

    RUN_DIR/config.json          resolved training options, input spec, arch, data counts, command
    RUN_DIR/metrics.csv          one row per fold and epoch (loss, AUC, MCC, sensitivity, ...)
    RUN_DIR/checkpoint.pth       rolling checkpoint of the fold in progress (resume after a kill)
    RUN_DIR/fold<k>/snapshot_e<NNN>.pt   weights of the ensemble members (state dicts)
    RUN_DIR/fold<k>/oof.csv      that fold's out-of-fold predictions; its presence marks it done
    RUN_DIR/oof.csv              filename, fold, label, probability, spread for every trained stack
    RUN_DIR/threshold.json       decision threshold maximising MCC on the out-of-fold predictions
    RUN_DIR/model_card.md        data, metrics, date and command, for people
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class RunDir:
    """Paths inside one run directory (nothing is created until written)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.metrics = self.root / "metrics.csv"
        self.checkpoint = self.root / "checkpoint.pth"
        self.oof = self.root / "oof.csv"
        self.threshold = self.root / "threshold.json"
        self.model_card = self.root / "model_card.md"

    def fold_dir(self, fold: int) -> Path:
        return self.root / f"fold{fold}"

    def fold_oof(self, fold: int) -> Path:
        return self.fold_dir(fold) / "oof.csv"

    def snapshot(self, fold: int, epoch: int) -> Path:
        return self.fold_dir(fold) / f"snapshot_e{epoch:03d}.pt"

    def snapshots(self, fold: int) -> list[Path]:
        return sorted(self.fold_dir(fold).glob("snapshot_e*.pt"))

    def read_json(self, path: Path) -> dict:
        return json.loads(path.read_text())

    def write_json(self, path: Path, data: dict) -> None:
        """Write atomically (temp file + rename): a kill never leaves half a file."""
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def is_complete(self) -> bool:
        """True once training finished: config, out-of-fold predictions and threshold exist."""
        return self.config.exists() and self.oof.exists() and self.threshold.exists()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
