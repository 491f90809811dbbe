"""Every registered method on a tiny random-weight model of every supported architecture, through
the method API (registry class + the settings of its conf/method YAML, shrunk to tiny budgets).

Checks per (architecture, method): the method edits exactly the weights it should (the MLP
matrices the architecture has; for a method asked for `gate` on a model without one, the others,
with `matrices_absent` in its report), nothing else changes, and every shape is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import registry
from methods.base import Method, MethodContext
from tests.conftest import method_config

VOCAB, HIDDEN, INNER, LAYERS = 64, 32, 64, 2
LM_ARCHS = ("olmo2", "llama", "qwen2", "mistral", "gemma", "gpt2", "gpt_neox", "phi", "phi3")
METHODS = ("none", "kfac", "random_ablation", "svd", "balanced_subnet", "gradient_ascent", "grad_diff",
           "npo", "neuron_zero_out")
VIT_METHODS = ("none", "kfac", "random_ablation", "svd")  # the others need token forget/retain sets

# Tiny budgets; every other setting is the YAML default (notably matrices [gate, up, down]).
TINY = {
    "kfac": {"tokens": 256, "seq_len": 16, "batch_size": 4, "images": 8},
    "random_ablation": {"tokens": 256, "seq_len": 16, "batch_size": 4, "images": 8},
    "svd": {"layers": [-2], "fractions": {"gate": 0.5, "up": 0.25, "down": 0.25}},
    "balanced_subnet": {"epochs": 1, "batch_size": 8, "micro_batch_size": 8, "prefix_len": 8},
    "gradient_ascent": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "prefix_len": 8},
    "grad_diff": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "prefix_len": 8},
    "npo": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "prefix_len": 8},
    "neuron_zero_out": {"ratio": 0.1, "batch_size": 8, "prefix_len": 8},
}

# Roles each architecture has, and the module name of layer 0's "up" matrix.
ROLES = {
    "olmo2": ("gate", "up", "down"), "llama": ("gate", "up", "down"), "qwen2": ("gate", "up", "down"),
    "mistral": ("gate", "up", "down"), "gemma": ("gate", "up", "down"),
    "gpt2": ("up", "down"), "gpt_neox": ("up", "down"), "phi": ("up", "down"), "phi3": ("up", "down"),
    "vit": ("up", "down"),
}
UP_NAME = {
    "olmo2": "model.layers.0.mlp.up_proj", "llama": "model.layers.0.mlp.up_proj",
    "qwen2": "model.layers.0.mlp.up_proj", "mistral": "model.layers.0.mlp.up_proj",
    "gemma": "model.layers.0.mlp.up_proj", "gpt2": "transformer.h.0.mlp.c_fc",
    "gpt_neox": "gpt_neox.layers.0.mlp.dense_h_to_4h", "phi": "model.layers.0.mlp.fc1",
    "phi3": "model.layers.0.mlp.gate_up_proj", "vit": "vit.layers.0.mlp.fc1",
}


def tiny_model(arch: str) -> torch.nn.Module:
    """A 2-layer, hidden-32 random model of `arch` (seeded)."""
    import transformers as tf

    torch.manual_seed(0)
    lm = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INNER, num_hidden_layers=LAYERS,
              num_attention_heads=4, max_position_embeddings=64, pad_token_id=0, bos_token_id=2,
              eos_token_id=3, tie_word_embeddings=False)
    if arch == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_inner=INNER, n_layer=LAYERS,
                                                n_head=4, n_positions=64, bos_token_id=2, eos_token_id=3))
    if arch == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(
            hidden_size=HIDDEN, intermediate_size=INNER, num_hidden_layers=LAYERS, num_attention_heads=4,
            image_size=8, patch_size=4, num_labels=5))
    config = {"olmo2": tf.Olmo2Config, "llama": tf.LlamaConfig, "qwen2": tf.Qwen2Config,
              "mistral": tf.MistralConfig, "gemma": tf.GemmaConfig, "gpt_neox": tf.GPTNeoXConfig,
              "phi": tf.PhiConfig, "phi3": tf.Phi3Config}[arch]
    extra = ({"head_dim": HIDDEN // 4, "num_key_value_heads": 4}
             if arch in ("gemma", "mistral", "qwen2", "llama", "olmo2", "phi3") else {})
    model_cls = {"olmo2": tf.Olmo2ForCausalLM, "llama": tf.LlamaForCausalLM, "qwen2": tf.Qwen2ForCausalLM,
                 "mistral": tf.MistralForCausalLM, "gemma": tf.GemmaForCausalLM,
                 "gpt_neox": tf.GPTNeoXForCausalLM, "phi": tf.PhiForCausalLM, "phi3": tf.Phi3ForCausalLM}[arch]
    return model_cls(config(**lm, **extra))


def context(arch: str, tmp_path: Path) -> MethodContext:
    g = torch.Generator().manual_seed(1)
    if arch == "vit":
        from models.vit import ImageStatistics

        images = [(torch.randn(3, 8, 8, generator=g), i % 5) for i in range(8)]
        return MethodContext(tokenizer=None, device=torch.device("cpu"), seed=0, cache_dir=tmp_path,
                             model_key=f"tiny-{arch}", stats=ImageStatistics(lambda n: iter(images[:n])))
    from models.hf import TokenStatistics

    def windows(seq_len: int, max_tokens: int):
        for _ in range(max(1, max_tokens // seq_len)):
            yield torch.randint(4, VOCAB, (seq_len,), generator=g)

    forget = [torch.randint(4, VOCAB, (16,), generator=g).tolist() for _ in range(8)]
    retain = [torch.randint(4, VOCAB, (16,), generator=g).tolist() for _ in range(8)]
    return MethodContext(tokenizer=None, device=torch.device("cpu"), seed=0, cache_dir=tmp_path,
                         model_key=f"tiny-{arch}", stats=TokenStatistics(windows),
                         forget_set=forget, retain_set=retain)


def build(method: str) -> Method:
    settings = method_config(method)
    assert settings.pop("name") == method
    settings.update(TINY.get(method, {}))
    return registry.load_class("method", method, Method)(**settings)


def mlp_weight_names(arch: str, roles: tuple[str, ...], layers: tuple[int, ...] = (0, 1)) -> set[str]:
    """Parameter names of the given roles' weights, derived from UP_NAME's layout."""
    up = UP_NAME[arch]
    prefix, rest = up.split(".0.", 1)
    mlp = rest.rsplit(".", 1)[0]
    leaf = {"olmo2": {"gate": "gate_proj", "up": "up_proj", "down": "down_proj"},
            "gpt2": {"up": "c_fc", "down": "c_proj"}, "gpt_neox": {"up": "dense_h_to_4h", "down": "dense_4h_to_h"},
            "phi": {"up": "fc1", "down": "fc2"}, "phi3": {"up": "gate_up_proj", "down": "down_proj"},
            "vit": {"up": "fc1", "down": "fc2"}}
    leaf.update({a: leaf["olmo2"] for a in ("llama", "qwen2", "mistral", "gemma")})
    return {f"{prefix}.{layer}.{mlp}.{leaf[arch][role]}.weight" for layer in layers for role in roles}


def expected_changes(arch: str, method: str) -> set[str]:
    roles = ROLES[arch]
    if method == "none":
        return set()
    if method == "svd":
        return mlp_weight_names(arch, roles, layers=(0,))  # layers [-2] of 2
    if method == "neuron_zero_out":
        return mlp_weight_names(arch, ("down",))
    return mlp_weight_names(arch, roles)


CASES = [(arch, method) for arch in LM_ARCHS for method in METHODS] + [("vit", m) for m in VIT_METHODS]


@pytest.mark.parametrize("arch,method", CASES)
def test_method_edits_the_mlp_matrices_of_every_architecture(arch: str, method: str, tmp_path: Path) -> None:
    model = tiny_model(arch).eval()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    report = build(method).apply(model, context(arch, tmp_path))

    after = dict(model.named_parameters())
    assert {n: tuple(p.shape) for n, p in after.items()} == {n: tuple(p.shape) for n, p in before.items()}
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), before[n])}
    expected = expected_changes(arch, method)
    assert changed == expected, f"{arch}/{method}: changed {sorted(changed)}"
    assert all(torch.isfinite(p).all() for p in after.values())
    if method != "none":
        assert set(report["changed"]) == expected, sorted(report["changed"])
    # Asked for gate on a model without one: the other matrices are edited and the report says so.
    asks_gate = method not in ("none", "neuron_zero_out")
    assert report.get("matrices_absent", []) == (["gate"] if asks_gate and "gate" not in ROLES[arch] else [])
    if method == "neuron_zero_out":  # the dropped neurons' down columns are exactly 0
        from models.architectures import mlp_linears, weight_as_out_in

        for name, down in mlp_linears(model, matrices=("down",)).items():
            neurons = report["changed"][f"{name}.weight"]["neurons"]
            assert len(neurons) == round(0.1 * INNER)
            assert (weight_as_out_in(down)[:, neurons] == 0).all()
    if method == "balanced_subnet":  # the masked count is exact per matrix, in (out, in) layout
        for name, facts in report["changed"].items():
            assert int((after[name] == 0).sum()) >= facts["masked"] > 0


@pytest.mark.parametrize("arch", ["phi3"])
def test_fused_gate_up_is_one_up_matrix(arch: str) -> None:
    from models.architectures import available_matrices, mlp_linears, weight_as_out_in

    model = tiny_model(arch)
    assert available_matrices(model) == ("up", "down")
    (name, up), = mlp_linears(model, layers=[0], matrices=("up",)).items()
    assert name == UP_NAME[arch] and tuple(weight_as_out_in(up).shape) == (2 * INNER, HIDDEN)


def test_asking_only_for_a_missing_matrix_is_one_config_error() -> None:
    from core.errors import ConfigError
    from methods.svd import SVDTruncation

    with pytest.raises(ConfigError, match="GPT2LMHeadModel has none of the MLP matrices \\['gate'\\]; it has: up, down"):
        SVDTruncation(fractions={"gate": 0.5}).apply(tiny_model("gpt2"), context("gpt2", Path("/nonexistent")))
