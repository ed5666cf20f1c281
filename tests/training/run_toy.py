"""Train on toy records in a subprocess (for the kill -9 and torchrun tests).

Usage: ``python -m tests.training.run_toy RECORDS_JSON STORE RUN_DIR CONFIG_JSON``
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from core.labels.records import StackRecord
from training.config import TrainConfig
from training.cv import train_cv


def main(argv: list[str]) -> int:
    records_json, store, run_dir, config_json = argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    records = [StackRecord(**r) for r in json.loads(Path(records_json).read_text())]
    train_cv(records, store, run_dir, TrainConfig(**json.loads(config_json)), command="run_toy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
