"""Data-parallel training with PyTorch DDP, launched by ``torchrun``.

``torchrun --nproc-per-node N -m adaptkit fit ...`` starts N processes; each trains on every N-th
image of each global batch (``--batch-size`` is the batch of all processes together), gradients
are averaged by ``DistributedDataParallel`` (NCCL on CUDA, gloo on CPU), and only rank 0 writes
files and shows progress.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError


_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}  # torch before forward_sync_buffers
)


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch of indices."""
        return index[self.rank :: self.world_size]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes (in place; itself when single)."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """Average the gradients of ``params`` (of a module trained outside DDP) over all processes."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.distributed or not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    def wrap(self, module: nn.Module, device: torch.device, *, partly_used: bool = False) -> nn.Module:
        """``module`` in ``DistributedDataParallel`` when distributed, else itself. Buffers are not
        synchronised: the base's are constant (eval mode) and a discriminator's spectral-norm vectors
        evolve the same in every process (several forward passes per step would otherwise fail).
        ``partly_used``: some parameters may get no gradient in a step (e.g. a new class's, when
        a process's share of the batch has none of it)."""
        if not self.distributed:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=partly_used, **_NO_BUFFER_SYNC)


def torchrun_processes() -> Processes:
    """The rank and world size ``torchrun`` put in the environment (one process without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes()
    return Processes(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def start(processes: Processes, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo otherwise) when distributed."""
    if not processes.distributed or dist.is_initialized():
        return
    if device.type == "mps":
        raise ConfigError("data-parallel training runs on CUDA or CPU, not MPS")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop(processes: Processes, *, finished: bool = False) -> None:
    """Leave the process group. ``finished``: every process got here normally, so they first wait for
    each other (the main one writes the run folder last); a process that leaves the gloo group
    while another still uses it can be aborted."""
    if processes.distributed and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
