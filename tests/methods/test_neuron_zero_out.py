"""Neuron zero-out on a tiny OLMo-2: the chunked scorer is exact, the edit touches only the chosen
down_proj columns, and on a model that memorised its forget set it removes the memorised suffixes."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.conftest import make_tiny_olmo2
from tests.methods.finetune_helpers import PREFIX, memorized_model, suffix_nll

CPU = torch.device("cpu")
_MEMORISED: dict[str, torch.nn.Module] = {}


def memorised(forget):
    """A fresh copy of the tiny model that memorised `forget` (trained once per test module)."""
    key = repr(forget)
    if key not in _MEMORISED:
        _MEMORISED[key] = memorized_model(forget)
    return copy.deepcopy(_MEMORISED[key])


def reference_score(model, down, neuron: int, examples) -> float:
    """The obvious slow way: zero one neuron with a plain hook, measure the suffix NLL."""
    def hook(module, args):
        x = args[0].clone()
        x[..., neuron] = 0
        return (x,)

    handle = down.register_forward_pre_hook(hook)
    try:
        zeroed = suffix_nll(model, examples)
    finally:
        handle.remove()
    return zeroed - suffix_nll(model, examples)


@pytest.mark.parametrize("chunk,batch_size", [(24, 3), (64, 16)])  # ragged chunks/batches; one of each
def test_chunked_zero_out_scores_equal_one_neuron_at_a_time(method_context, chunk, batch_size):
    from models.architectures import mlp_linears
    from methods.neuron_zero_out import zero_out_scores

    model = memorised(method_context.forget_set)
    forget = method_context.forget_set
    forget = forget[:-1] + [forget[-1][:20]]  # one shorter example: right padding is handled
    down = mlp_linears(model, layers=[1], matrices=("down",))["model.layers.1.mlp.down_proj"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = zero_out_scores(model, down, forget, PREFIX, CPU, chunk=chunk, batch_size=batch_size)
    assert scores.shape == (64,) and scores.max() > 5e-4  # the neurons do matter (top ~1.5e-3)
    for neuron in (0, 5, 23, 24, 47, 63):
        assert scores[neuron].item() == pytest.approx(reference_score(model, down, neuron, forget), abs=1e-5)
    assert not down._forward_pre_hooks  # hook removed
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # scoring edits nothing


def test_changes_only_the_top_down_proj_columns_of_the_chosen_layers(method_context):
    from models.architectures import mlp_linears
    from methods.neuron_zero_out import NeuronZeroOut, zero_out_scores

    model = make_tiny_olmo2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    down = mlp_linears(model, layers=[1], matrices=("down",))["model.layers.1.mlp.down_proj"]
    scores = zero_out_scores(model, down, method_context.forget_set, PREFIX, CPU)
    report = NeuronZeroOut(ratio=0.1, score="zero_out", layers=[1], prefix_len=PREFIX).apply(model, method_context)
    name = "model.layers.1.mlp.down_proj.weight"
    assert set(report["changed"]) == {name} and report["scorer"] == "zero_out"
    neurons = report["changed"][name]["neurons"]
    assert len(set(neurons)) == len(neurons) == round(0.1 * 64) == 6
    assert report["changed"][name]["fraction"] == 6 / 64
    assert neurons == torch.topk(scores, 6).indices.tolist()  # the highest scores, highest first
    after = model.state_dict()
    assert torch.all(after[name][:, neurons] == 0) and torch.all(before[name][:, neurons] != 0)
    kept = [i for i in range(64) if i not in neurons]
    assert torch.equal(after[name][:, kept], before[name][:, kept])
    for key, value in after.items():
        if key != name:
            assert torch.equal(value, before[key]), key


def test_dropping_one_neuron_costs_its_score(method_context):
    """Zeroing a down_proj column is the same edit the scorer measured."""
    from models.architectures import mlp_linears
    from methods.neuron_zero_out import NeuronZeroOut, zero_out_scores

    model = memorised(method_context.forget_set)
    forget = method_context.forget_set
    down = mlp_linears(model, layers=[0], matrices=("down",))["model.layers.0.mlp.down_proj"]
    top = zero_out_scores(model, down, forget, PREFIX, CPU).max().item()
    nll_before = suffix_nll(model, forget)
    report = NeuronZeroOut(ratio=1 / 64, score="zero_out", layers=[0], prefix_len=PREFIX).apply(model, method_context)
    assert len(report["changed"]["model.layers.0.mlp.down_proj.weight"]["neurons"]) == 1
    assert report["final_forget_nll"] == pytest.approx(nll_before + top, abs=1e-5)


def test_removes_memorised_suffixes_better_than_random_neurons(method_context):
    from models.architectures import mlp_linears
    from methods.neuron_zero_out import NeuronZeroOut

    forget = method_context.forget_set
    model = memorised(forget)
    nll_before = suffix_nll(model, forget)
    assert nll_before < 0.5  # the tiny model did memorise them
    control = copy.deepcopy(model)  # the same number of neurons per layer, chosen at random
    g = torch.Generator().manual_seed(0)
    for down in mlp_linears(control, matrices=("down",)).values():
        with torch.no_grad():
            down.weight[:, torch.randperm(64, generator=g)[:13]] = 0
    report = NeuronZeroOut(ratio=0.2, score="zero_out", prefix_len=PREFIX).apply(model, method_context)  # 13 of 64
    nll_after = suffix_nll(model, forget)
    assert report["final_forget_nll"] == pytest.approx(nll_after, rel=1e-4)
    assert nll_after > 10 * nll_before  # measured ~19x
    assert nll_after > 3 * suffix_nll(control, forget)  # measured ~7x the random control


def test_activations_scorer_picks_the_largest_activation_times_column_norm(method_context):
    from models.architectures import mlp_linears
    from methods.neuron_zero_out import NeuronZeroOut, activation_scores

    model = make_tiny_olmo2()
    forget = method_context.forget_set
    downs = mlp_linears(model, matrices=("down",))
    seen = {}
    handles = [d.register_forward_pre_hook(lambda m, a, n=n: seen.__setitem__(n, a[0].clone()))
               for n, d in downs.items()]
    with torch.no_grad():
        model(input_ids=torch.tensor(forget))
    for h in handles:
        h.remove()
    scores = activation_scores(model, downs, forget, PREFIX, CPU, batch_size=3)
    for name, d in downs.items():  # positions PREFIX-1 .. T-2 predict the suffix tokens
        expected = seen[name][:, PREFIX - 1:-1].mean((0, 1)).abs() * d.weight.norm(dim=0)
        assert torch.allclose(scores[name], expected, atol=1e-6)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = NeuronZeroOut(ratio=0.05, score="activations", prefix_len=PREFIX).apply(model, method_context)
    assert report["scorer"] == "activations" and set(report["changed"]) == {f"{n}.weight" for n in downs}
    for name in downs:
        neurons = report["changed"][f"{name}.weight"]["neurons"]
        assert neurons == torch.topk(scores[name], round(0.05 * 64)).indices.tolist()
        assert torch.all(model.state_dict()[f"{name}.weight"][:, neurons] == 0)
        assert not torch.all(before[f"{name}.weight"][:, neurons] == 0)


def test_needs_forget_only():
    from methods.neuron_zero_out import NeuronZeroOut

    assert NeuronZeroOut().needs == ("forget",)


@pytest.mark.parametrize("bad", [{"ratio": 0}, {"ratio": 1}, {"ratio": True}, {"score": "gradient"},
                                 {"layers": "all"}, {"layers": []}, {"chunk": 0}, {"chunk": 2.5},
                                 {"batch_size": 0}, {"prefix_len": -1}])
def test_bad_settings_raise_config_error(bad):
    from core.errors import ConfigError
    from methods.neuron_zero_out import NeuronZeroOut

    with pytest.raises(ConfigError):
        NeuronZeroOut(**bad)


def test_missing_layer_and_too_long_prefix_raise_config_error(method_context):
    from core.errors import ConfigError
    from methods.neuron_zero_out import NeuronZeroOut

    with pytest.raises(ConfigError, match="does not exist"):
        NeuronZeroOut(layers=[5], prefix_len=PREFIX).apply(make_tiny_olmo2(), method_context)
    for score in ("zero_out", "activations"):
        with pytest.raises(ConfigError, match="prefix_len"):
            NeuronZeroOut(score=score, prefix_len=24).apply(make_tiny_olmo2(), method_context)
