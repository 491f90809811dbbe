"""Curvature bands of one weight matrix, and the statistics over them. Pure functions on tensors.

With the K-FAC factors A = U_A diag(mu) U_A^T (inputs) and G = U_G diag(lam) U_G^T (output
gradients), eigenvalues descending, the weight W (out x in) in the curvature basis is
C = U_G^T W U_A; component (i, j) is the rank-one direction u_i v_j^T with mass lam_i * mu_j (the
same basis and masses the edit uses, methods/kfac/). A band is a set of components chosen by
their mass rank (0 = largest mass); its output on an input x is U_G (C * M_band) U_A^T x. As U_G is
orthogonal, the norm of that output is ||(C * M_band) U_A^T x||, which is what we compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from core.measures import percentile_interval, ratio_replicates

# Bands by mass rank, as fractions of all components, 0 = the largest curvature mass: the ten
# deciles, plus the two bands the paper reports (its "top 10 %" and "lower half").
DECILES = tuple((f"{10 * k}-{10 * (k + 1)}%", k / 10, (k + 1) / 10) for k in range(10))
TOP_10 = ("top 10%", 0.0, 0.1)
BOTTOM_HALF = ("bottom half", 0.5, 1.0)
BANDS = DECILES + (TOP_10, BOTTOM_HALF)


def mass_ranks(lam: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """(out, in) long tensor: the rank of component (i, j) by mass lam_i * mu_j, 0 = largest.
    Equal masses are ranked in row-major order (stable sort), so the ranks are a permutation."""
    mass = (lam.double()[:, None] * mu.double()[None, :]).flatten()
    order = torch.sort(mass, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order))
    return ranks.view(len(lam), len(mu))


def band_mask(ranks: torch.Tensor, start: float, end: float) -> torch.Tensor:
    """Components whose rank lies in [round(start * N), round(end * N)), N = number of components."""
    n = ranks.numel()
    lo, hi = round(start * n), round(end * n)
    return (ranks >= lo) & (ranks < hi)


def band_masks(ranks: torch.Tensor, bands: Sequence[tuple[str, float, float]] = BANDS) -> dict[str, torch.Tensor]:
    return {name: band_mask(ranks, start, end) for name, start, end in bands}


def removed_mask(counts: torch.Tensor, inn: int) -> torch.Tensor:
    """The components an edit removes, from methods.kfac.keep_counts's per-row counts (row i keeps
    columns j < counts[i] of the descending-sorted basis)."""
    return torch.arange(inn)[None, :] >= counts.cpu()[:, None]


def component_basis(weight: torch.Tensor, U_A: torch.Tensor, U_G: torch.Tensor) -> torch.Tensor:
    """C = U_G^T W U_A (fp32)."""
    return U_G.T.float() @ weight.float() @ U_A.float()


def band_output(C: torch.Tensor, mask: torch.Tensor, U_A: torch.Tensor, U_G: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
    """(n, out): U_G (C * M) U_A^T x for each row x of (n, in)."""
    return (x.float() @ U_A) @ (C * mask).T @ U_G.T


def band_norms(C: torch.Tensor, masks: torch.Tensor, U_A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(n, bands): ||(C * M_b) U_A^T x|| for each row x of (n, in) and each mask M_b of the stacked
    (bands, out, in) `masks` (= the norm of the band's output, U_G being orthogonal)."""
    z = x.float() @ U_A
    return torch.stack([(z @ (C * m).T).norm(dim=1) for m in masks], dim=1)


def band_masses(lam: torch.Tensor, mu: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of the total curvature mass in each band."""
    mass = lam.double()[:, None] * mu.double()[None, :]
    total = mass.sum()
    return {name: float((mass * m).sum() / total) if total > 0 else 0.0 for name, m in masks.items()}


# ---------------------------------------------------------------------------------------------
# Statistics over examples: each example contributes the sum of its positions' norms and a count
# ---------------------------------------------------------------------------------------------

def pooled_mean(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean over positions of examples (sums: (examples, ...) per-example sums; counts: (examples,))."""
    return sums.sum(0) / counts.sum()


def bootstrap_ratios(sums_a: torch.Tensor, counts_a: torch.Tensor, sums_b: torch.Tensor, counts_b: torch.Tensor,
                     resamples: int = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The ratio of the mean norm per position in set a to that in set b, for every column of the
    (examples, k) sums, and (resamples, k) bootstrap replicates of it: examples (not positions,
    which are correlated within an example) are resampled with replacement, each set on its own,
    with the same draw for every column (so columns can be combined per replicate)."""
    sums_a, sums_b = sums_a.double().reshape(len(counts_a), -1), sums_b.double().reshape(len(counts_b), -1)
    counts_a, counts_b = counts_a.double(), counts_b.double()
    ratio = pooled_mean(sums_a, counts_a) / pooled_mean(sums_b, counts_b)
    g = torch.Generator().manual_seed(seed)
    draw = lambda n: torch.randint(n, (resamples, n), generator=g)  # noqa: E731  (torch's stream: a, then b)
    return ratio, ratio_replicates(sums_a, sums_b, draw, counts_a, counts_b)


def ratio_interval(sums_a: torch.Tensor, counts_a: torch.Tensor, sums_b: torch.Tensor, counts_b: torch.Tensor,
                   resamples: int = 2000, level: float = 0.95, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ratio, low, high) per column: bootstrap_ratios with a percentile interval."""
    ratio, replicates = bootstrap_ratios(sums_a, counts_a, sums_b, counts_b, resamples, seed)
    lo, hi = percentile_interval(replicates.cpu().numpy(), level)
    return ratio, torch.from_numpy(lo), torch.from_numpy(hi)


def percent_more(ratio: float) -> float:
    """A ratio as 'percent more in the numerator set': 1.23 -> 23.0, 0.8 -> -20.0."""
    return 100.0 * (ratio - 1.0) if math.isfinite(ratio) else float("nan")
