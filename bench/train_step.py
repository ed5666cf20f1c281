"""Training cost per stack of network variants on the CPU recipe's input, side by side.

    python -m bench.train_step [--nets "stages=3;stages=4;stages=5;stages=4,width=24;stages=4,width=12"]
                               [--arch plain3d] [--batch-sizes 8,16] [--steps 12] [--repeats 3] [--threads 2]
                               [--size 32] [--depth 32]

One training step = forward, backward and an AdamW update on a random batch shaped like the CPU
recipe's input (``InputSpec(size, depth, mask_channel=True, vessel=True)``: the image and the
outline channel, ``depth × 2·size × size/2``), with outline pooling as in training. Data loading is
left out: this measures the network, the part a time budget buys epochs with. The variants take
turns within each repeat so machine noise hits them alike; each figure is the median over repeats
of the median step, in milliseconds per stack. Prints a Markdown table with the parameter count
and the cost relative to the first variant.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from core.model.nets import create_model
from core.model.preprocess import InputSpec


def parse_net(text: str) -> dict[str, int]:
    """``"stages=4,width=12"`` → ``{"stages": 4, "width": 12}`` (``""``: the network's defaults)."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {key.strip(): int(value) for key, value in pairs}


def step_ms(model: torch.nn.Module, optimiser: torch.optim.Optimizer, batch: torch.Tensor, depth_mask: torch.Tensor,
            steps: int) -> float:
    """Median milliseconds per stack of ``steps`` training steps (after two warm-up steps)."""
    times = []
    for step in range(steps + 2):
        tic = time.perf_counter()
        loss = model(batch, depth_mask).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step >= 2:
            times.append(time.perf_counter() - tic)
    return statistics.median(times) / len(batch) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="stages=3;stages=4;stages=5;stages=4,width=24;stages=4,width=12",
                        help="network options per variant, ';'-separated (default: plain3d depths and widths)")
    parser.add_argument("--arch", default="plain3d")
    parser.add_argument("--batch-sizes", default="8,16")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--depth", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = InputSpec(args.size, args.depth, mask_channel=True, focus_depth=True, vessel=True)
    variants = [(net, batch) for net in args.nets.split(";") for batch in map(int, args.batch_sizes.split(","))]
    models = {}
    for net, _ in variants:
        if net not in models:
            model = create_model(args.arch, in_channels=spec.channels, outline_pool=True, **parse_net(net))
            models[net] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3))
    times: dict[tuple[str, int], list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for net, batch_size in variants:
            batch = torch.randn(batch_size, spec.channels, args.depth, *spec.grid)
            batch[:, 1] = (batch[:, 1] > 0).float()  # an outline channel in {0, 1}
            times[(net, batch_size)].append(step_ms(*models[net], batch, torch.ones(batch_size, args.depth),
                                                    args.steps))
    first = statistics.median(times[variants[0]])
    print(f"{args.arch}, input {spec.channels} × {args.depth} × {spec.grid[0]} × {spec.grid[1]}, "
          f"{args.threads} threads, median of {args.repeats} repeats × {args.steps} steps\n")
    print("| network options | batch | parameters | ms per stack | relative |\n|---|---|---|---|---|")
    for net, batch_size in variants:
        ms = statistics.median(times[(net, batch_size)])
        params = sum(p.numel() for p in models[net][0].parameters())
        print(f"| {net or '(defaults)'} | {batch_size} | {params:,} | {ms:.2f} | {ms / first:.2f} |")


if __name__ == "__main__":
    main()
