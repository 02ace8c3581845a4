"""Training on several processes with PyTorch's own distributed engine.

``torchrun --nproc_per_node=N -m cnnlab classify train ...`` starts N copies; torchrun passes each
its rank through the standard ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` variables, read by
``init_process_group("env://")`` (gloo on CPUs, NCCL on GPUs; multi-node through torchrun's
rendezvous flags). Every rank draws the same shuffled order of the epoch; batch ``b`` of
``batch_size`` images is cut into ``world_size`` contiguous shares (:func:`shard`, what a
``DistributedSampler`` does per batch), each rank backpropagates the *sum* of its share's losses,
and :func:`all_reduce_gradients` sums the gradients and divides by the batch size: exactly the
gradient of one process on the whole batch. Only rank 0 logs and writes files; each rank's own
random generator (augmentation, dropout) is gathered into ``last.pt`` (:func:`gather_from_ranks`)
so that ``--resume`` on as many processes continues every rank's draws.

Note: batch normalisation sees each rank's share, not the whole batch, as with plain DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun set up, or return a single-process :class:`DistInfo`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def shard(indices: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous share of one batch's indices (sizes differ by at most one)."""
    if not info.enabled:
        return indices
    bounds = [len(indices) * r // info.world_size for r in range(info.world_size + 1)]
    return indices[bounds[info.rank] : bounds[info.rank + 1]]


def all_reduce_gradients(model: nn.Module, batch_size: int, info: DistInfo) -> None:
    """Sum every gradient over the ranks (one flat buffer) and divide by the global batch size."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:  # a rank whose share of a short last batch is empty still takes part
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    if info.enabled:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= batch_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few numbers (loss sums, counts) over the ranks."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def from_main(text: str, info: DistInfo, device: torch.device) -> str:
    """Rank 0's ``text`` on every rank (the run folder rank 0 claimed: each rank claiming its
    own would make two folders). Sent as UTF-8 bytes in a tensor, on ``device`` for NCCL."""
    if not info.enabled:
        return text
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=device)
    size = torch.tensor([len(data)], device=device)
    dist.broadcast(size, src=0)
    if not info.is_main:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return bytes(data.cpu().tolist()).decode()


def gather_from_ranks(t: torch.Tensor, info: DistInfo, device: torch.device) -> list[torch.Tensor]:
    """Every rank's ``t`` (the same shape and dtype on each: a random generator's state), in
    rank order, on the CPU; a single process gets ``[t]``. Via ``device`` for NCCL."""
    if not info.enabled:
        return [t]
    mine = t.to(device)
    parts = [torch.empty_like(mine) for _ in range(info.world_size)]
    dist.all_gather(parts, mine)
    return [part.cpu() for part in parts]


def barrier(info: DistInfo) -> None:
    """Wait for every process (nothing when not distributed)."""
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """End the process group this run started (nothing when not distributed)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
