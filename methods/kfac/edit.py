"""The edit of one weight matrix: W' = W - U_G (C * removed) U_A^T with C = U_G^T W U_A, keeping
the components spectrum.keep_counts selects (W stays bit-identical when nothing is removed)."""

from __future__ import annotations

from typing import Any

import torch

from methods.kfac.spectrum import eigh_descending, keep_counts


def kfac_edit_weight(weight: torch.Tensor, A: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                     G: torch.Tensor | tuple[torch.Tensor, torch.Tensor], rho: float
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
    """W' (fp32, out x in) keeping the top-curvature components of `weight` (out x in). A and G are
    the factors or their precomputed eigh_descending results."""
    mu, U_A = A if isinstance(A, tuple) else eigh_descending(A)
    lam, U_G = G if isinstance(G, tuple) else eigh_descending(G)
    W = weight.detach().float()
    counts = keep_counts(lam, mu, rho).to(W.device)
    removed = torch.arange(W.shape[1], device=W.device)[None, :] >= counts[:, None]
    C = U_G.T @ W @ U_A
    W_new = W - U_G @ (C * removed) @ U_A.T if removed.any() else W.clone()
    lam64, mu64 = lam.double().cpu(), mu.double().cpu()
    total = lam64.sum() * mu64.sum()
    mu_prefix = torch.cat([mu64.new_zeros(1), mu64.cumsum(0)])
    kept_mass = (lam64 * mu_prefix[counts.cpu()]).sum()
    kept = int(counts.sum())
    return W_new, {"mass_kept": float(kept_mass / total) if total > 0 else 1.0,
                   "components_total": W.numel(), "components_kept": kept,
                   "components_removed": W.numel() - kept}
