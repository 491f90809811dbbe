"""MLP matrix lookup on tiny randomly initialised models of each supported architecture."""

from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from models.architectures import (find_mlp_linears, is_transposed, mlp_linears, modules_matching,
                            num_layers, set_weight_out_in, weight_as_out_in)

HIDDEN, MLP = 16, 40


def tiny(arch: str) -> torch.nn.Module:
    import transformers as tf

    torch.manual_seed(0)
    common = dict(num_hidden_layers=3, num_attention_heads=2)
    if arch == "olmo2":
        return tf.Olmo2ForCausalLM(tf.Olmo2Config(vocab_size=50, hidden_size=HIDDEN, intermediate_size=MLP, **common))
    if arch == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=50, hidden_size=HIDDEN, intermediate_size=MLP, **common))
    if arch == "llama_base":
        return tf.LlamaModel(tf.LlamaConfig(vocab_size=50, hidden_size=HIDDEN, intermediate_size=MLP, **common))
    if arch == "neox":
        return tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(vocab_size=50, hidden_size=HIDDEN, intermediate_size=MLP, **common))
    if arch == "neox_base":
        return tf.GPTNeoXModel(tf.GPTNeoXConfig(vocab_size=50, hidden_size=HIDDEN, intermediate_size=MLP, **common))
    if arch == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=50, n_embd=HIDDEN, n_inner=MLP, n_layer=3, n_head=2, n_positions=32))
    if arch == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(
            hidden_size=HIDDEN, intermediate_size=MLP, image_size=8, patch_size=4, num_labels=3, **common))
    raise ValueError(arch)


# arch -> (expected name of layer 1's up matrix, roles it has)
EXPECTED = {
    "olmo2": ("model.layers.1.mlp.up_proj", ("gate", "up", "down")),
    "llama": ("model.layers.1.mlp.up_proj", ("gate", "up", "down")),
    "llama_base": ("layers.1.mlp.up_proj", ("gate", "up", "down")),
    "neox": ("gpt_neox.layers.1.mlp.dense_h_to_4h", ("up", "down")),
    "neox_base": ("layers.1.mlp.dense_h_to_4h", ("up", "down")),
    "gpt2": ("transformer.h.1.mlp.c_fc", ("up", "down")),
    "vit": ("vit.layers.1.mlp.fc1", ("up", "down")),  # transformers 5 layout
}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_finds_mlp_matrices_with_out_in_shapes(arch):
    model = tiny(arch)
    up_name, roles = EXPECTED[arch]
    assert num_layers(model) == 3
    found = mlp_linears(model, layers=[1], matrices=("up",))
    assert list(found) == [up_name]
    everything = find_mlp_linears(model, matrices=roles)
    assert len(everything) == 3 * len(roles)
    assert [(f.layer, f.role) for f in everything[:len(roles)]] == [(0, r) for r in roles]
    for f in everything:
        # (out, in) whatever the storage: up/gate map hidden -> MLP, down maps MLP -> hidden
        expected = (HIDDEN, MLP) if f.role == "down" else (MLP, HIDDEN)
        assert tuple(weight_as_out_in(f.module).shape) == expected, f.name
        assert is_transposed(f.module) == (arch == "gpt2")


@pytest.mark.parametrize("arch", ["neox", "gpt2", "vit"])
def test_missing_gate_is_a_config_error_naming_the_valid_ones(arch):
    with pytest.raises(ConfigError, match="no MLP matrix 'gate'; valid: up, down"):
        mlp_linears(tiny(arch), matrices=("gate", "up"))


def test_negative_layers_count_from_the_end_and_duplicates_collapse():
    model = tiny("olmo2")
    assert list(mlp_linears(model, layers=[-1], matrices=("down",))) == ["model.layers.2.mlp.down_proj"]
    assert len(mlp_linears(model, layers=[2, -1], matrices=("down",))) == 1
    with pytest.raises(ConfigError, match=r"layer 3 does not exist: the model has layers 0..2"):
        mlp_linears(model, layers=[3])
    with pytest.raises(ConfigError, match="unknown MLP matrix 'ffn'"):
        mlp_linears(model, matrices=("ffn",))


def test_unknown_architecture_points_to_module_pattern():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="method.module_pattern"):
        mlp_linears(model)
    assert list(modules_matching(model, r"^2$")) == ["2"]
    with pytest.raises(ConfigError, match="matches no module"):
        modules_matching(model, "nothing")
    with pytest.raises(ConfigError, match="not a valid regex"):
        modules_matching(model, "(")


def test_set_weight_round_trips_through_conv1d_transpose():
    model = tiny("gpt2")
    module = mlp_linears(model, layers=[0], matrices=("up",))["transformer.h.0.mlp.c_fc"]
    new = torch.randn(MLP, HIDDEN)
    set_weight_out_in(module, new)
    assert torch.equal(module.weight, new.T)  # Conv1D stores (in, out)
    x = torch.randn(2, HIDDEN)
    assert torch.allclose(module(x), x @ new.T + module.bias, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        set_weight_out_in(module, new.T)
