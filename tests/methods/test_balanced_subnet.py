"""BalancedSubnet on a tiny OLMo-2 that first memorises its forget set."""

from __future__ import annotations

import pytest
import torch

from tests.methods.finetune_helpers import PREFIX, memorized_model, suffix_nll


def test_masks_exactly_ratio_of_each_selected_matrix_and_nothing_else(method_context):
    from methods.balanced_subnet import BalancedSubnet
    from models.architectures import mlp_linears

    model = memorized_model(method_context.forget_set)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = BalancedSubnet(ratio=0.05, lr=0.3, epochs=2, batch_size=4, layers=[1], prefix_len=PREFIX)
    report = method.apply(model, method_context)
    selected = {f"{name}.weight" for name in mlp_linears(model, layers=[1])}
    assert set(report["changed"]) == selected
    for name, value in model.state_dict().items():
        if name in selected:
            n = value.numel()
            newly_zero = ((value == 0) & (before[name] != 0)).sum().item()
            assert newly_zero == round(0.05 * n) == report["changed"][name]["masked"]
            assert torch.equal(value[value != 0], before[name][value != 0])
        else:
            assert torch.equal(value, before[name]), name


def test_removes_memorised_suffixes(method_context):
    from methods.balanced_subnet import BalancedSubnet

    model = memorized_model(method_context.forget_set)
    nll_before = suffix_nll(model, method_context.forget_set)
    assert nll_before < 0.5  # the tiny model did memorise them
    report = BalancedSubnet(ratio=0.05, retain_weight=0.3, lr=3.0, epochs=3, batch_size=4,
                            prefix_len=PREFIX).apply(model, method_context)
    nll_after = suffix_nll(model, method_context.forget_set)
    assert nll_after > nll_before + 1.0
    assert report["final_forget_nll"] == pytest.approx(nll_after, rel=1e-4)


def test_needs_forget_and_retain_never_validation():
    from methods.balanced_subnet import BalancedSubnet

    assert BalancedSubnet.needs == ("forget", "retain")


@pytest.mark.parametrize("bad", [{"ratio": 0}, {"ratio": 1.5}, {"retain_weight": 1.0}, {"lr": -1},
                                 {"matrices": ["attn"]}, {"layers": "all"}, {"forget_loss_on": "x"},
                                 {"epochs": 0}, {"prefix_len": -1}])
def test_bad_settings_raise_config_error(bad):
    from core.errors import ConfigError
    from methods.balanced_subnet import BalancedSubnet

    with pytest.raises(ConfigError):
        BalancedSubnet(**bad)


def test_straight_through_mask_is_hard_forward_identity_backward():
    from methods.balanced_subnet import straight_through_mask

    scores = torch.tensor([0.3, -1.0, 2.0, 0.1], requires_grad=True)
    mask = straight_through_mask(scores, 2)
    assert mask.tolist() == [1.0, 0.0, 1.0, 0.0]
    (mask * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert scores.grad.tolist() == [1.0, 2.0, 3.0, 4.0]
