"""SVD truncation drops exactly the requested smallest singular values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import ConfigError
from models.architectures import weight_as_out_in
from methods.svd import SVDTruncation, drop_smallest_singular_values
from tests.conftest import make_tiny_olmo2


def test_drop_smallest_singular_values_against_reconstruction():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(9, 5, generator=g)
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    new, energy = drop_smallest_singular_values(W, 2)
    assert torch.allclose(new, (U[:, :3] * s[:3]) @ Vh[:3], atol=1e-5)  # rank-3 reconstruction
    assert torch.allclose(torch.linalg.svdvals(new)[:3], s[:3], atol=1e-5)
    assert energy == pytest.approx(float((s[3:] ** 2).sum() / (s ** 2).sum()), rel=1e-5)
    same, zero = drop_smallest_singular_values(W, 0)
    assert torch.equal(same, W) and zero == 0.0


def test_apply_drops_round_fraction_times_rank_in_the_chosen_layer(method_context):
    model = make_tiny_olmo2()  # 2 layers, hidden 32, MLP 64: rank 32 everywhere
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = SVDTruncation(layers=[-1], fractions={"gate": 0.5, "down": 0.1}).apply(model, method_context)
    assert set(report["changed"]) == {"model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    assert report["changed"]["model.layers.1.mlp.gate_proj.weight"]["singular_values_removed"] == 16
    assert report["changed"]["model.layers.1.mlp.down_proj.weight"]["singular_values_removed"] == 3  # round(3.2)
    gate = weight_as_out_in(model.model.layers[1].mlp.gate_proj)
    assert torch.linalg.matrix_rank(gate.detach()) == 16
    for name, p in model.named_parameters():
        if name not in report["changed"]:
            assert torch.equal(p, before[name]), name


def test_bad_settings_are_config_errors():
    for bad in (dict(fractions={"ffn": 0.1}), dict(fractions={"up": 1.0}), dict(fractions={}),
                dict(layers="21"), dict(fractions={"up": "0.1"})):
        with pytest.raises(ConfigError):
            SVDTruncation(**bad)


def test_shipped_configs_build():
    from omegaconf import OmegaConf

    for name in ("svd", "svd_olmo2_7b"):
        cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / "conf" / "method" / f"{name}.yaml"))
        assert cfg.pop("name") == "svd"
        SVDTruncation(**cfg)
