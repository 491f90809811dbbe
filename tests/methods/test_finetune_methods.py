"""Tests shared by the fine-tuning unlearning methods (gradient ascent, GradDiff, NPO), each run on
a tiny OLMo-2 that first memorises its forget set. Method-specific tests stay in test_<method>.py."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from tests.conftest import make_tiny_olmo2
from tests.methods.finetune_helpers import PREFIX, memorized_model, suffix_nll


@dataclass(frozen=True)
class FinetuneMethod:
    spec: str  # "module:Class"
    needs: tuple[str, ...]  # `needs` of a default-constructed instance
    extra: dict[str, Any] = field(default_factory=dict)  # settings added when training

    def cls(self) -> type:
        module, name = self.spec.split(":")
        return getattr(importlib.import_module(module), name)

    def make(self, **settings: Any) -> Any:
        return self.cls()(**settings, **self.extra)


METHODS = [
    pytest.param(FinetuneMethod("methods.gradient_ascent:GradientAscent", ("forget",)),
                 id="gradient_ascent"),
    pytest.param(FinetuneMethod("methods.grad_diff:GradDiff", ("forget", "retain"),
                                {"retain_weight": 0.3}), id="grad_diff"),
    pytest.param(FinetuneMethod("methods.npo:NPO", ("forget",), {"beta": 0.1}), id="npo"),
]

BAD_SETTINGS = [
    pytest.param({"lr": 0}, id="lr=0"),
    pytest.param({"epochs": 1.5}, id="epochs=1.5"),
    pytest.param({"batch_size": 0}, id="batch_size=0"),
    pytest.param({"params": "attn"}, id="params=attn"),
    pytest.param({"matrices": ["q"]}, id="matrices=q"),
    pytest.param({"layers": []}, id="layers=[]"),
    pytest.param({"max_grad_norm": -1}, id="max_grad_norm=-1"),
    pytest.param({"prefix_len": -2}, id="prefix_len=-2"),
    pytest.param({"forget_loss_on": "prefix"}, id="forget_loss_on=prefix"),
]


@pytest.mark.parametrize("method", METHODS)
def test_changes_only_the_selected_mlp_weights(method, method_context):
    from models.architectures import mlp_linears

    model = memorized_model(method_context.forget_set)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = method.make(lr=1e-3, epochs=1, batch_size=4, layers=[1], matrices=["up"], prefix_len=PREFIX
                         ).apply(model, method_context)
    selected = {f"{name}.weight" for name in mlp_linears(model, layers=[1], matrices=("up",))}
    assert set(report["changed"]) == selected and report["steps"] == 2
    for name, value in model.state_dict().items():
        if name in selected:
            assert report["changed"][name]["fraction_changed"] > 0.5
        else:
            assert torch.equal(value, before[name]), name
    assert all(p.requires_grad for p in model.parameters())  # restored


@pytest.mark.parametrize("method", METHODS)
def test_raises_forget_nll_of_memorised_suffixes(method, method_context):
    model = memorized_model(method_context.forget_set)
    nll_before = suffix_nll(model, method_context.forget_set)
    assert nll_before < 0.5  # the tiny model did memorise them
    report = method.make(lr=1e-2, epochs=5, batch_size=4, prefix_len=PREFIX).apply(model, method_context)
    nll_after = suffix_nll(model, method_context.forget_set)
    assert nll_after > nll_before + 1.0
    assert report["final_forget_nll"] == pytest.approx(nll_after, rel=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_params_all_trains_every_parameter(method, method_context):
    model = make_tiny_olmo2()
    report = method.make(lr=1e-3, epochs=1, batch_size=8, params="all", prefix_len=PREFIX
                         ).apply(model, method_context)
    assert set(report["changed"]) == {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize("method", METHODS)
def test_needs(method):
    assert method.cls()().needs == method.needs


@pytest.mark.parametrize("bad", BAD_SETTINGS)
@pytest.mark.parametrize("method", METHODS)
def test_bad_settings_raise_config_error(method, bad):
    from core.errors import ConfigError

    with pytest.raises(ConfigError):
        method.cls()(**bad)
