"""Random ablation: the control for K-FAC. Same layers, matrices, factors and eigenbasis as K-FAC;
in each matrix it removes exactly as many components as K-FAC would at that rho, but chosen
uniformly at random (seeded with the run seed). If it removed memorization as well as K-FAC, the
curvature ranking would not be what does the work (docs/paper.md, "Baselines")."""

from __future__ import annotations

from typing import Any

import torch

from methods.kfac import KFAC, keep_counts


def random_ablation_weight(weight: torch.Tensor, A_eig: tuple[torch.Tensor, torch.Tensor],
                           G_eig: tuple[torch.Tensor, torch.Tensor], n_removed: int,
                           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(W' fp32, removed mask over the eigenbasis): n_removed components (i, j) of
    C = U_G^T W U_A drawn uniformly without replacement, W' = W - U_G (C * removed) U_A^T."""
    (_, U_A), (_, U_G) = A_eig, G_eig
    W = weight.detach().float()
    removed = torch.zeros(W.numel(), dtype=torch.bool)
    removed[torch.randperm(W.numel(), generator=generator)[:n_removed]] = True
    removed = removed.view(W.shape).to(W.device)
    if n_removed == 0:
        return W.clone(), removed
    C = U_G.T @ W @ U_A
    return W - U_G @ (C * removed) @ U_A.T, removed


class RandomAblation(KFAC):
    """Settings: the keys of conf/method/random_ablation.yaml (the same as kfac's)."""

    def edit(self, weight: torch.Tensor, A_eig: tuple[torch.Tensor, torch.Tensor],
             G_eig: tuple[torch.Tensor, torch.Tensor], rho: float,
             generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        (mu, _), (lam, _) = A_eig, G_eig
        n_removed = weight.numel() - int(keep_counts(lam, mu, rho).sum())  # what K-FAC removes
        new_weight, removed = random_ablation_weight(weight, A_eig, G_eig, n_removed, generator)
        rows, cols = removed.nonzero(as_tuple=True)  # curvature mass its random choice kept
        lam, mu = lam.double().to(rows.device), mu.double().to(rows.device)
        total = float(lam.sum() * mu.sum())
        mass_removed = float((lam[rows] * mu[cols]).sum())
        return new_weight, {"mass_kept": 1.0 - mass_removed / total if total > 0 else 1.0,
                            "components_total": weight.numel(),
                            "components_kept": weight.numel() - n_removed,
                            "components_removed": n_removed}
