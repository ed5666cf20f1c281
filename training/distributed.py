"""DDP under ``torchrun``: process-group set-up and helpers that are no-ops on one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 when not launched by ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and evaluates; the others only train."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` describes (gloo on CPU, NCCL on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return info


def broadcast_ints(values: list[int], info: DistInfo) -> list[int]:
    """Rank 0's ``values`` on every rank (decisions such as 'stop now' must agree)."""
    if not info.enabled:
        return values
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.int64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def gather_to_main(value: object, info: DistInfo) -> list[object] | None:
    """Every rank's ``value`` (pickled over the process group), in rank order, on rank 0; ``None`` elsewhere.

    On one process: ``[value]``.
    """
    if not info.enabled:
        return [value]
    out: list[object] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(value, out, dst=0)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op on one process)."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
