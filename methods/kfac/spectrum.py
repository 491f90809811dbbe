"""The spectrum and the selection: eigendecompositions of the factors, and which components
(largest curvature mass lam_i * mu_j first) a given rho keeps. Pure functions on tensors."""

from __future__ import annotations

import torch


def eigh_descending(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors as columns) of a symmetric PSD matrix, largest first, fp32.
    Rounding makes some eigenvalues of a PSD matrix slightly negative: they are clamped to 0."""
    values, vectors = torch.linalg.eigh(matrix.float())
    return values.flip(0).clamp_min(0), vectors.flip(1)


def keep_counts(lam: torch.Tensor, mu: torch.Tensor, rho: float, band_limit: int = 1 << 16) -> torch.Tensor:
    """How many components to keep in each row: the kept set is {(i, j): j < counts[i]}, with
    lam (rows) and mu (columns) sorted descending and >= 0. It is the smallest set of largest
    products lam_i * mu_j whose sum reaches rho * sum(lam) * sum(mu); rho >= 1 keeps everything.

    Never materialises all out x in products: a bisection on the product threshold t (counts per
    row by searchsorted, masses by prefix sums: O(out log in) a step) narrows the boundary to a
    band of at most `band_limit` pairs (or to a tie), which is then sorted exactly."""
    lam, mu = lam.double().cpu(), mu.double().cpu()
    out, inn = len(lam), len(mu)
    if rho >= 1:
        return torch.full((out,), inn, dtype=torch.long)
    target = rho * lam.sum().item() * mu.sum().item()
    if target <= 0:
        return torch.zeros(out, dtype=torch.long)
    mu_ascending = mu.flip(0)
    mu_prefix = torch.cat([mu.new_zeros(1), mu.cumsum(0)])  # mu_prefix[k] = sum of the k largest

    def counts_at_least(t: float) -> torch.Tensor:  # per row, #{j : lam_i * mu_j >= t}, t > 0
        return inn - torch.searchsorted(mu_ascending, t / lam, right=False)

    def mass(counts: torch.Tensor) -> float:
        return (lam * mu_prefix[counts]).sum().item()

    lo = (lam[lam > 0].min() * mu[mu > 0].min()).item() / 2  # every positive pair: mass = total >= target
    hi = (lam[0] * mu[0]).item() * 2.0                    # no pair: mass 0 < target
    lo_counts, hi_counts = counts_at_least(lo), counts_at_least(hi)
    for _ in range(400):
        if int((lo_counts - hi_counts).sum()) <= band_limit:
            break
        mid = (lo * hi) ** 0.5  # geometric: products span many orders of magnitude
        if not lo < mid < hi:
            break
        mid_counts = counts_at_least(mid)
        if mass(mid_counts) >= target:
            lo, lo_counts = mid, mid_counts
        else:
            hi, hi_counts = mid, mid_counts
    # Exact finish on the band lo <= product < hi: rows in order, columns ascending within a row,
    # so a stable descending sort keeps each row's choice a prefix even among equal products.
    widths = lo_counts - hi_counts
    rows = torch.repeat_interleave(torch.arange(out), widths)
    cols = hi_counts[rows] + (torch.arange(len(rows)) - torch.repeat_interleave(widths.cumsum(0) - widths, widths))
    values = lam[rows] * mu[cols]
    order = torch.sort(values, descending=True, stable=True).indices
    need = target - mass(hi_counts)
    taken = int(torch.searchsorted(values[order].cumsum(0), torch.tensor([need], dtype=torch.float64)).item()) + 1
    taken = min(taken, len(order)) if need > 0 else 0
    return hi_counts + torch.bincount(rows[order[:taken]], minlength=out)
