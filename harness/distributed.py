"""Several processes under torchrun: `torchrun --nproc-per-node N -m harness ...`.

torchrun starts N copies of the run and sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
MASTER_PORT. Every rank loads the model; a method that shards its statistics
(`Method.shards_statistics`, K-FAC and its relatives) reads every N-th batch of the statistics
stream on each rank and all-reduces its fp32 sums once at the end (methods/kfac/distributed.py). Rank 0 alone
evaluates the baseline, writes the factor cache, applies the edit and evaluates the edited model;
the other ranks stop after their share of the statistics.

Why not spread the eigendecompositions over ranks too: with the paper's 3 layers × gate+up there
are 4 distinct factors on 7B (one 4,096² A per layer is shared by gate and up, plus 11,008² Gs);
a GPU eigh of 11,008² takes seconds, against tens of minutes for the statistics pass, so
broadcasting eigenvectors (0.5 GB each) would save little and add a collective that can hang.
"""

from __future__ import annotations

import os
from datetime import timedelta


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) in a plain run."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def init_from_env() -> tuple[int, int]:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs); (rank, world).

    The timeout is long (HARNESS_DIST_TIMEOUT_MIN, default 240 minutes) because the other ranks
    wait in the first collective while rank 0 evaluates the baseline of a fresh run."""
    rank, world, local_rank = world_from_env()
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        minutes = float(os.environ.get("HARNESS_DIST_TIMEOUT_MIN", "240"))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=minutes))
    return dist.get_rank(), dist.get_world_size()


def rank_device(spec: str) -> str:
    """Under torchrun with GPUs, `auto` / `cuda` mean this rank's own GPU (cuda:LOCAL_RANK)."""
    _, world, local_rank = world_from_env()
    if world > 1 and spec in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{local_rank}"
    return spec
