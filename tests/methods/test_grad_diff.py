"""GradDiff on a tiny OLMo-2 that first memorises its forget set."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_tiny_olmo2
from tests.methods.finetune_helpers import PREFIX, memorized_model, suffix_nll


def test_changes_only_the_selected_mlp_weights(method_context):
    from methods.grad_diff import GradDiff
    from methods.layers import mlp_linears

    model = memorized_model(method_context.forget_set)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = GradDiff(lr=1e-3, epochs=1, batch_size=4, layers=[1], matrices=["up"], prefix_len=PREFIX, retain_weight=0.3
                  ).apply(model, method_context)
    selected = {f"{name}.weight" for name in mlp_linears(model, layers=[1], matrices=("up",))}
    assert set(report["changed"]) == selected and report["steps"] == 2
    for name, value in model.state_dict().items():
        if name in selected:
            assert report["changed"][name]["fraction_changed"] > 0.5
        else:
            assert torch.equal(value, before[name]), name
    assert all(p.requires_grad for p in model.parameters())  # restored


def test_raises_forget_nll_of_memorised_suffixes(method_context):
    from methods.grad_diff import GradDiff

    model = memorized_model(method_context.forget_set)
    nll_before = suffix_nll(model, method_context.forget_set)
    assert nll_before < 0.5  # the tiny model did memorise them
    report = GradDiff(lr=1e-2, epochs=5, batch_size=4, prefix_len=PREFIX, retain_weight=0.3).apply(model, method_context)
    nll_after = suffix_nll(model, method_context.forget_set)
    assert nll_after > nll_before + 1.0
    assert report["final_forget_nll"] == pytest.approx(nll_after, rel=1e-4)


def test_params_all_trains_every_parameter(method_context):
    from methods.grad_diff import GradDiff

    model = make_tiny_olmo2()
    report = GradDiff(lr=1e-3, epochs=1, batch_size=8, params="all", prefix_len=PREFIX, retain_weight=0.3
                  ).apply(model, method_context)
    assert set(report["changed"]) == {name for name, _ in model.named_parameters()}


def test_needs():
    from methods.grad_diff import GradDiff

    assert GradDiff().needs == ("forget", "retain")


@pytest.mark.parametrize("bad", [{"lr": 0}, {"epochs": 1.5}, {"batch_size": 0}, {"params": "attn"},
                                 {"matrices": ["q"]}, {"layers": [-1]}, {"max_grad_norm": -1},
                                 {"prefix_len": -2}, {"forget_loss_on": "prefix"}])
def test_bad_settings_raise_config_error(bad):
    from harness.errors import ConfigError
    from methods.grad_diff import GradDiff

    with pytest.raises(ConfigError):
        GradDiff(**bad)


@pytest.mark.parametrize("w", [-0.1, 1.0, "x"])
def test_bad_retain_weight(w):
    from harness.errors import ConfigError
    from methods.grad_diff import GradDiff

    with pytest.raises(ConfigError):
        GradDiff(retain_weight=w)
