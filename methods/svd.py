"""SVD truncation, the paper's baseline: in the chosen layers, drop the smallest singular values of
each MLP matrix (7B: layer 21 only, the bottom 0.5 % of up/down, 50 % of gate; docs/paper.md).

W = U diag(s) V^T; dropping the k smallest: W' = W - U[:, -k:] diag(s[-k:]) V[:, -k:]^T, computed in
fp32 and written back in the model's dtype. k = round(fraction * min(out, in)) per matrix."""

from __future__ import annotations

import time
from typing import Any

import torch

from core.errors import ConfigError
from methods.base import Method, MethodContext


def drop_smallest_singular_values(weight: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """(W' fp32 without its k smallest singular directions, share of squared norm removed)."""
    W = weight.detach().float()
    if k == 0:
        return W.clone(), 0.0
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)  # s descending
    dropped = (U[:, -k:] * s[-k:]) @ Vh[-k:]
    return W - dropped, float((s[-k:] ** 2).sum() / (s ** 2).sum())


# The paper's 7B setting (docs/paper.md): bottom 0.5 % of up/down, 50 % of gate. Read, never mutated.
PAPER_FRACTIONS = {"gate": 0.5, "up": 0.005, "down": 0.005}


class SVDTruncation(Method):
    """Settings: the keys of conf/method/svd.yaml."""

    needs = ()

    def __init__(self, layers: list[int] | None = (-2,),
                 fractions: dict[str, float] = PAPER_FRACTIONS) -> None:
        from models.architectures import MATRICES, check_layers_setting

        layers = check_layers_setting(layers)
        if not isinstance(fractions, dict) or not fractions or any(m not in MATRICES for m in fractions):
            raise ConfigError(f"fractions must map matrices {list(MATRICES)} to the share of singular "
                              f"values to drop, got {fractions!r}")
        for matrix, value in fractions.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"fractions[{matrix!r}] must be a number in [0, 1), got {value!r}")
        self.layers = layers
        self.fractions = {m: float(v) for m, v in fractions.items()}

    def check(self, model: torch.nn.Module) -> None:
        """The layers exist and the model has at least one of the matrices; a matrix it lacks
        (GPT-2 has no gate) is left out of the edit and reported by apply()."""
        from models.architectures import find_mlp_linears, resolve_matrices

        find_mlp_linears(model, self.layers, resolve_matrices(model, tuple(self.fractions))[0])

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        from models.architectures import (absent_note, find_mlp_linears, resolve_matrices, set_weight_out_in,
                                          weight_as_out_in)

        present, absent = resolve_matrices(model, tuple(self.fractions))
        changed = {}
        for found in find_mlp_linears(model, self.layers, present):
            start = time.perf_counter()
            weight = weight_as_out_in(found.module)
            rank = min(weight.shape)
            k = round(self.fractions[found.role] * rank)
            new_weight, energy = drop_smallest_singular_values(weight, k)
            set_weight_out_in(found.module, new_weight)
            changed[f"{found.name}.weight"] = {
                "fraction": self.fractions[found.role], "singular_values_total": rank,
                "singular_values_removed": k, "norm_squared_removed": energy,
                "components_total": rank, "components_removed": k,  # methods/base.py: what the guard reads
                "seconds": round(time.perf_counter() - start, 4)}
        return {"changed": changed, **absent_note(model, present, absent)}
