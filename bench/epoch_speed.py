"""Training throughput of the whole step (reading, preparing, augmenting, learning), with and without the in-memory
cache of each stack's focused slices, side by side.

    python -m bench.epoch_speed --store STORE --metadata train_metadata.csv [--stacks 240] [--epochs 3]
                                [--repeats 3] [--threads 2]

Per arm and repeat: a fresh CPU-recipe network trains ``--epochs`` epochs over the same ``--stacks``
stacks through :func:`training.engine.train_one_epoch` and the training dataset of
:func:`training.dataset.make_dataset` (augmentation on, random depth offsets), as one fold of
``stalltriage train`` does. The first epoch reads every stack from the store in both arms (the cache
fills then); the figure is stacks per second over the later epochs, the steady state of a fold.
The arms alternate within each repeat so machine noise hits them alike; medians over repeats.
Also the data part alone: milliseconds to prepare one item, first read and cached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from core.model.nets import create_model
from core.model.preprocess import pad_collate
from core.video.store import key_for
from training.config import TrainConfig
from training.dataset import TrainSample, make_dataset
from training.engine import make_loss, make_optimiser, train_one_epoch
from training.sampler import BalancedSampler


def epoch_rates(samples: list[TrainSample], store: Path, cached: bool, epochs: int, seed: int) -> list[float]:
    """Stacks per second of each epoch of one fresh network (the first epoch fills the cache)."""
    config = TrainConfig()
    spec = config.input_spec()
    dataset = make_dataset(samples, store, spec, train=True, cache={} if cached else None)
    sampler = BalancedSampler([s.label for s in samples], config.stalled_share, seed=seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                                         collate_fn=pad_collate, drop_last=True)
    torch.manual_seed(seed)
    model = create_model(config.arch, in_channels=spec.channels, outline_pool=config.outline_pool,
                         **config.model_kwargs)
    optimiser, scheduler = make_optimiser(model, config.lr, config.weight_decay, 1, epochs * len(loader))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    rates = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        dataset.reseed([seed, epoch])
        tic = time.perf_counter()
        train_one_epoch(model, loader, make_loss(), optimiser, scheduler, scaler, torch.device("cpu"), show=False)
        rates.append(len(loader) * config.batch_size / (time.perf_counter() - tic))
    return rates


def item_ms(samples: list[TrainSample], store: Path) -> tuple[float, float]:
    """Milliseconds to prepare one training item: on its first read, and from the cache."""
    dataset = make_dataset(samples, store, TrainConfig().input_spec(), train=True, cache={})
    times = []
    for _ in range(2):
        tic = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        times.append((time.perf_counter() - tic) / len(dataset) * 1e3)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a volume store (stalltriage ingest --store)")
    parser.add_argument("--metadata", type=Path, required=True, help="train_metadata.csv of stacks in the store")
    parser.add_argument("--labels", type=Path, default=None, help="train_labels.csv (default: beside --metadata)")
    parser.add_argument("--stacks", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    labels_path = args.labels or args.metadata.with_name("train_labels.csv")
    labels = pd.read_csv(labels_path).set_index("filename")["stalled"]
    names = pd.read_csv(args.metadata)["filename"].head(args.stacks)
    samples = [TrainSample(n, key_for(n), "p", int(labels[n]), float(labels[n]), True) for n in names]
    load = os.getloadavg()
    later: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for cached in (False, True):
            rates = epoch_rates(samples, args.store, cached, args.epochs, seed=repeat)
            later[cached].append(statistics.median(rates[1:]))
    first, again = item_ms(samples, args.store)
    after = os.getloadavg()
    print(f"{len(samples)} stacks, {args.epochs} epochs (the later {args.epochs - 1} timed), {args.threads} threads, "
          f"median of {args.repeats} repeats; load average {load[0]:.2f} before, {after[0]:.2f} after "
          f"(1-min; 5-min {after[1]:.2f})\n")
    print("| data path | stacks/s per fold | relative |\n|---|---|---|")
    base = statistics.median(later[False])
    for cached in (False, True):
        rate = statistics.median(later[cached])
        print(f"| {'cached focused slices' if cached else 'read, focus, straighten every time'} | {rate:.1f} | "
              f"{rate / base:.2f} |")
    print(f"\npreparing one item: {first:.1f} ms on its first read, {again:.1f} ms from the cache")


if __name__ == "__main__":
    main()
