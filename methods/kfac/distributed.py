"""K-FAC under torchrun: every rank reads a shard of the statistics stream, and the fp32 sums
are added up once at the end, so every rank holds the factors of the whole stream."""

from __future__ import annotations

import torch

from core.errors import DataError


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the default torch.distributed process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sums(a_sums: dict[str, torch.Tensor], g_sums: dict[str, torch.Tensor],
                    a_owner: dict[str, str], modules: dict[str, torch.nn.Module], positions: int,
                    inputs: int, device: torch.device) -> tuple[int, int]:
    """Sum every rank's fp32 sums and counts in place (one all-reduce per factor, in name order);
    returns the global (positions, inputs). A rank that read no batch has no sums: every rank
    then raises the same one-line error instead of hanging in a mismatched collective."""
    import torch.distributed as dist

    counts = torch.tensor([positions, inputs], dtype=torch.float64, device=device)
    empty = torch.tensor([0 if positions else 1], dtype=torch.float64, device=device)
    dist.all_reduce(counts)
    dist.all_reduce(empty)
    if empty.item() > 0:
        raise DataError(f"{int(empty.item())} of {dist.get_world_size()} processes got no statistics batch: "
                        "give the stream at least one batch per process (raise method.tokens or lower batch_size)")
    for name in sorted(set(a_owner.values())):
        dist.all_reduce(a_sums[name])
    for name in sorted(modules):
        if name in g_sums:
            dist.all_reduce(g_sums[name])
    return int(counts[0].item()), int(counts[1].item())
