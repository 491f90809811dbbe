"""Random ablation removes exactly as many eigenbasis components as K-FAC, at random, seeded."""

from __future__ import annotations

import dataclasses

import torch

from methods.kfac import KFAC, eigh_descending
from methods.random_ablation import RandomAblation, random_ablation_weight
from tests.conftest import make_tiny_olmo2

SETTINGS = dict(rho=0.9, layers=[0, 1], matrices=["gate", "up", "down"], tokens=256, seq_len=16, batch_size=4)


def test_removes_as_many_components_as_kfac_from_the_same_cached_factors(method_context):
    kfac = KFAC(**SETTINGS).apply(make_tiny_olmo2(), method_context)
    model = make_tiny_olmo2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = RandomAblation(**SETTINGS).apply(model, method_context)
    assert report["factor_cache"] == "hit"  # K-FAC's factors, not a second collection
    assert set(report["changed"]) == set(kfac["changed"])
    for name, facts in report["changed"].items():
        assert facts["components_removed"] == kfac["changed"][name]["components_removed"] > 0
        # a random choice keeps less curvature mass than the top-mass choice of the same size
        assert facts["mass_kept"] < kfac["changed"][name]["mass_kept"]
        assert not torch.equal(dict(model.named_parameters())[name], before[name])
    # seeded: the same seed gives the same edit, another seed another one
    again = make_tiny_olmo2()
    RandomAblation(**SETTINGS).apply(again, method_context)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), model.parameters()))
    other = make_tiny_olmo2()
    RandomAblation(**SETTINGS).apply(other, dataclasses.replace(method_context, seed=1))
    assert not all(torch.equal(a, b) for a, b in zip(other.parameters(), model.parameters()))


def test_random_ablation_weight_removes_exactly_the_drawn_components():
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(50, 6, generator=g), torch.randn(50, 4, generator=g)
    A_eig, G_eig = eigh_descending(X.T @ X), eigh_descending(Y.T @ Y)
    W = torch.randn(4, 6, generator=g)
    new, removed = random_ablation_weight(W, A_eig, G_eig, 7, torch.Generator().manual_seed(3))
    assert int(removed.sum()) == 7
    C_new = G_eig[1].T @ new @ A_eig[1]
    C = G_eig[1].T @ W @ A_eig[1]
    assert torch.allclose(C_new[removed], torch.zeros(7), atol=1e-5)
    assert torch.allclose(C_new[~removed], C[~removed], atol=1e-5)
    same, none = random_ablation_weight(W, A_eig, G_eig, 0, torch.Generator())
    assert torch.equal(same, W) and not none.any()
