"""The band decomposition and the statistics over it, on tiny matrices, against slow obvious
references (loops over components and examples)."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.bands import (BANDS, BOTTOM_HALF, DECILES, TOP_10, band_masks, band_masses, band_norms, band_output,
                            bootstrap_ratios, component_basis, mass_ranks, percent_more, ratio_interval,
                            removed_mask)
from methods.kfac import eigh_descending, keep_counts, kfac_edit_weight


def psd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n + 3, generator=g)
    return m @ m.T / n


@pytest.fixture
def layer():
    out, inn = 6, 5
    W = torch.randn(out, inn, generator=torch.Generator().manual_seed(3))
    mu, U_A = eigh_descending(psd(inn, 1))
    lam, U_G = eigh_descending(psd(out, 2))
    return W, lam, U_G, mu, U_A


def slow_ranks(lam: torch.Tensor, mu: torch.Tensor) -> dict[tuple[int, int], int]:
    """Sort (mass, row-major index) pairs by hand: largest mass first, ties in row-major order."""
    items = [(-(float(lam[i]) * float(mu[j])), i * len(mu) + j, (i, j)) for i in range(len(lam)) for j in range(len(mu))]
    return {ij: rank for rank, (_, _, ij) in enumerate(sorted(items))}


def test_mass_ranks_match_a_sort_by_hand(layer) -> None:
    _, lam, _, mu, _ = layer
    ranks = mass_ranks(lam, mu)
    assert {(i, j): int(ranks[i, j]) for i in range(len(lam)) for j in range(len(mu))} == slow_ranks(lam, mu)


def test_mass_ranks_break_ties_in_row_major_order() -> None:
    ranks = mass_ranks(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]))
    assert ranks.tolist() == [[0, 1], [2, 3]]


def test_bands_from_mass_ranks(layer) -> None:
    _, lam, _, mu, _ = layer
    masks = band_masks(mass_ranks(lam, mu))
    n = lam.numel() * mu.numel()  # 30 components: 3 per decile
    ranks = slow_ranks(lam, mu)
    deciles = [masks[d[0]] for d in DECILES]
    assert all(int(m.sum()) == 3 for m in deciles)
    assert torch.equal(torch.stack(deciles).sum(0), torch.ones_like(deciles[0], dtype=torch.long))  # a partition
    for (i, j), rank in ranks.items():
        assert bool(masks[TOP_10[0]][i, j]) == (rank < n // 10)
        assert bool(masks[BOTTOM_HALF[0]][i, j]) == (rank >= n // 2)
        assert bool(masks["30-40%"][i, j]) == (9 <= rank < 12)
    assert torch.equal(masks[BOTTOM_HALF[0]], torch.stack(deciles[5:]).any(0))
    # The top 10 % by rank holds the 3 largest masses.
    mass = lam[:, None] * mu[None, :]
    assert torch.equal(torch.sort(mass[masks[TOP_10[0]]]).values, torch.sort(mass.flatten()).values[-3:])


def test_band_outputs_sum_to_W_x(layer) -> None:
    W, lam, U_G, mu, U_A = layer
    C = component_basis(W, U_A, U_G)
    x = torch.randn(7, W.shape[1], generator=torch.Generator().manual_seed(4))
    masks = band_masks(mass_ranks(lam, mu))
    total = sum(band_output(C, masks[d[0]], U_A, U_G, x) for d in DECILES)
    assert torch.allclose(total, x @ W.T, atol=1e-5)
    halves = band_output(C, masks[BOTTOM_HALF[0]], U_A, U_G, x) + band_output(C, ~masks[BOTTOM_HALF[0]], U_A, U_G, x)
    assert torch.allclose(halves, x @ W.T, atol=1e-5)


def test_band_norms_are_the_norms_of_the_band_outputs(layer) -> None:
    W, lam, U_G, mu, U_A = layer
    C = component_basis(W, U_A, U_G)
    x = torch.randn(7, W.shape[1], generator=torch.Generator().manual_seed(5))
    masks = band_masks(mass_ranks(lam, mu))
    norms = band_norms(C, torch.stack(list(masks.values())), U_A, x)
    for b, name in enumerate(masks):
        assert torch.allclose(norms[:, b], band_output(C, masks[name], U_A, U_G, x).norm(dim=1), atol=1e-5)


def test_band_masses_sum_to_the_total_mass(layer) -> None:
    _, lam, _, mu, _ = layer
    masks = band_masks(mass_ranks(lam, mu))
    shares = band_masses(lam, mu, masks)
    assert sum(shares[d[0]] for d in DECILES) == pytest.approx(1.0)
    total = sum(float(lam[i]) * float(mu[j]) for i in range(len(lam)) for j in range(len(mu)))
    by_hand = sum(float(lam[i]) * float(mu[j]) for i in range(len(lam)) for j in range(len(mu))
                  if masks[TOP_10[0]][i, j]) / total
    assert shares[TOP_10[0]] == pytest.approx(by_hand)
    assert shares[TOP_10[0]] > 0.1 > shares["90-100%"]  # masses fall with rank


def test_removed_set_is_what_the_edit_takes_away(layer) -> None:
    W, lam, U_G, mu, U_A = layer
    rho = 0.8
    edited, facts = kfac_edit_weight(W, (mu, U_A), (lam, U_G), rho)
    removed = removed_mask(keep_counts(lam, mu, rho), len(mu))
    assert int(removed.sum()) == facts["components_removed"]
    C = component_basis(W, U_A, U_G)
    x = torch.eye(W.shape[1])
    assert torch.allclose(band_output(C, removed, U_A, U_G, x), x @ (W - edited).T, atol=1e-5)


def test_ratio_on_hand_made_activations() -> None:
    # Set a: 3 examples, 2 positions each; set b: 2 examples with 1 and 3 positions. Two bands.
    sums_a = torch.tensor([[4.0, 1.0], [6.0, 1.0], [8.0, 1.0]])  # band 0 norms 2, 3, 4 per position
    counts_a = torch.tensor([2.0, 2.0, 2.0])
    sums_b = torch.tensor([[2.0, 1.0], [6.0, 3.0]])               # band 0: 2 per position; band 1: 1
    counts_b = torch.tensor([1.0, 3.0])
    ratio, lo, hi = ratio_interval(sums_a, counts_a, sums_b, counts_b, resamples=500, seed=0)
    assert ratio.tolist() == pytest.approx([(18 / 6) / (8 / 4), (3 / 6) / (4 / 4)])  # 1.5 and 0.5
    assert (lo <= ratio).all() and (ratio <= hi).all()
    assert lo[0] < hi[0]                              # band 0 varies between examples of a
    assert lo[1] == pytest.approx(0.5) and hi[1] == pytest.approx(0.5)  # band 1 does not
    assert percent_more(float(ratio[0])) == pytest.approx(50.0)
    assert percent_more(float(ratio[1])) == pytest.approx(-50.0)


def test_bootstrap_resamples_examples_with_replacement() -> None:
    """The replicates equal a loop over the same draws, example by example."""
    g = torch.Generator().manual_seed(9)
    sums_a, counts_a = torch.rand(5, 3, generator=g), torch.randint(1, 4, (5,), generator=g).float()
    sums_b, counts_b = torch.rand(4, 3, generator=g), torch.randint(1, 4, (4,), generator=g).float()
    _, replicates = bootstrap_ratios(sums_a, counts_a, sums_b, counts_b, resamples=20, seed=3)
    draw = torch.Generator().manual_seed(3)
    ia = torch.randint(5, (20, 5), generator=draw)
    ib = torch.randint(4, (20, 4), generator=draw)
    for r in range(20):
        for band in range(3):
            mean_a = sum(float(sums_a[i, band]) for i in ia[r]) / sum(float(counts_a[i]) for i in ia[r])
            mean_b = sum(float(sums_b[i, band]) for i in ib[r]) / sum(float(counts_b[i]) for i in ib[r])
            assert float(replicates[r, band]) == pytest.approx(mean_a / mean_b)


def test_band_table_names_the_paper_bands() -> None:
    names = [b[0] for b in BANDS]
    assert names[:10] == [f"{10 * k}-{10 * k + 10}%" for k in range(10)]
    assert "top 10%" in names and "bottom half" in names
    assert math.isnan(percent_more(float("nan")))
