"""Find the MLP weight matrices of a model, whatever its architecture: the one map every method uses.

Methods name matrices by role ("gate", "up", "down") and layers by index; this module maps those
to the modules of OLMo-2 / Llama / Mistral / Qwen2 / Gemma, Phi, Phi-3, GPT-NeoX, GPT-2 and ViT
models (the task heads, e.g. *ForCausalLM, and the bare base models, e.g. Olmo2Model).

Roles per architecture:
  OLMo-2, Llama, Mistral, Qwen2, Gemma  gate = mlp.gate_proj, up = mlp.up_proj, down = mlp.down_proj
  Phi-3                                 up = mlp.gate_up_proj (gate and up fused: see below), down = mlp.down_proj
  Phi (1, 1.5, 2)                       up = mlp.fc1, down = mlp.fc2
  GPT-NeoX (Pythia)                     up = mlp.dense_h_to_4h, down = mlp.dense_4h_to_h
  GPT-2                                 up = mlp.c_fc, down = mlp.c_proj (Conv1D: weight stored (in, out))
  ViT                                   up = mlp.fc1 / intermediate.dense, down = mlp.fc2 / output.dense

Phi-3's fused gate_up_proj (rows [0, inner) are the gate, [inner, 2 inner) the up projection) is
ONE matrix with role "up": methods edit it as one Linear, as its forward uses it (one input, one
output), and K-FAC's factors are those of that Linear. Splitting its rows into two roles would
make every method edit half-matrices; we chose not to.

A method asked for a role the architecture lacks (the default `[gate, up, down]` on GPT-2) edits
the roles that exist and names the missing ones in its report (`matrices_absent`); asking only
for missing roles is a one-line ConfigError. See `resolve_matrices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from core.errors import ConfigError

MATRICES = ("gate", "up", "down")

_LLAMA = {"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
_NEOX = {"up": "mlp.dense_h_to_4h", "down": "mlp.dense_4h_to_h"}
_GPT2 = {"up": "mlp.c_fc", "down": "mlp.c_proj"}
_VIT = {"up": "intermediate.dense", "down": "output.dense"}   # transformers 4
_VIT5 = {"up": "mlp.fc1", "down": "mlp.fc2"}                   # transformers 5; also Phi (1, 1.5, 2)
_PHI3 = {"up": "mlp.gate_up_proj", "down": "mlp.down_proj"}    # gate and up fused: one "up" matrix

# (path to the list of blocks, {role: path of the Linear inside a block}). A layout matches when
# the path is a ModuleList and its first block has every listed Linear: "layers" is both a bare
# Llama-style model and a bare GPT-NeoX model, told apart by their MLP names.
_ARCHITECTURES: list[tuple[str, dict[str, str]]] = [
    ("model.layers", _LLAMA),           # OLMo-2, Llama, Mistral, Qwen2, Gemma (*ForCausalLM)
    ("model.layers", _PHI3),            # Phi3ForCausalLM
    ("model.layers", _VIT5),            # PhiForCausalLM (mlp.fc1 / mlp.fc2)
    ("gpt_neox.layers", _NEOX),         # GPTNeoXForCausalLM (Pythia)
    ("transformer.h", _GPT2),           # GPT2LMHeadModel (Conv1D, weight stored transposed)
    ("vit.layers", _VIT5),              # ViTForImageClassification (transformers 5)
    ("vit.encoder.layer", _VIT),        # ViTForImageClassification (transformers 4)
    ("layers", _LLAMA), ("layers", _PHI3), ("layers", _NEOX), ("h", _GPT2), ("layers", _VIT5),  # base models
    ("encoder.layer", _VIT),
]


class MLPLinear(NamedTuple):
    name: str                 # full module name, e.g. "model.layers.3.mlp.up_proj"
    layer: int                # block index, 0-based
    role: str                 # "gate" | "up" | "down"
    module: torch.nn.Module   # nn.Linear or GPT-2's Conv1D


def _has(module: torch.nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _blocks_and_roles(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList, dict[str, str]]:
    for blocks_path, roles in _ARCHITECTURES:
        if not _has(model, blocks_path):
            continue
        blocks = model.get_submodule(blocks_path)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0 and all(
                _has(blocks[0], path) for path in roles.values()):
            return blocks_path, blocks, roles
    known = ", ".join(sorted({path for path, _ in _ARCHITECTURES}))
    raise ConfigError(
        f"cannot find the MLP layers of {type(model).__name__}: known layouts are "
        f"OLMo-2/Llama/Mistral/Qwen2/Gemma, Phi, Phi-3, GPT-NeoX, GPT-2, ViT (block lists {known}); "
        "set method.module_pattern to a regex over module names instead"
    )


def num_layers(model: torch.nn.Module) -> int:
    """Number of transformer blocks."""
    return len(_blocks_and_roles(model)[1])


def check_layers_setting(layers: Any) -> list[int] | None:
    """A method's `layers` setting: null (every layer) or a non-empty list of layer indices
    (negative ones count from the end). Checked against the model's depth when it is loaded."""
    if layers is not None and (not isinstance(layers, (list, tuple)) or not layers or any(
            isinstance(i, bool) or not isinstance(i, int) for i in layers)):
        raise ConfigError(f"layers must be null (all layers) or a non-empty list of layer indices, got {layers!r}")
    return None if layers is None else list(layers)


def check_matrices_setting(matrices: Any) -> tuple[str, ...]:
    """A method's `matrices` setting: a non-empty list drawn from MATRICES."""
    if isinstance(matrices, str) or not matrices or any(m not in MATRICES for m in matrices):
        raise ConfigError(f"matrices must be a non-empty list drawn from {list(MATRICES)}, got {matrices!r}")
    return tuple(matrices)


def available_matrices(model: torch.nn.Module) -> tuple[str, ...]:
    """The roles this architecture has, in MATRICES order (e.g. ('up', 'down') for GPT-2)."""
    roles = _blocks_and_roles(model)[2]
    return tuple(m for m in MATRICES if m in roles)


def resolve_matrices(model: torch.nn.Module, matrices: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requested roles the model has, requested roles it lacks), requested order kept. The
    methods' rule for a missing role: edit what exists, report the rest; none present is an error."""
    unknown = [m for m in matrices if m not in MATRICES]
    if unknown:
        raise ConfigError(f"unknown MLP matrix {', '.join(map(repr, unknown))}; valid: {', '.join(MATRICES)}")
    have = available_matrices(model)
    present = tuple(m for m in matrices if m in have)
    absent = tuple(m for m in matrices if m not in have)
    if not present:
        raise ConfigError(f"{type(model).__name__} has none of the MLP matrices {list(matrices)}; "
                          f"it has: {', '.join(have)}")
    return present, absent


def absent_note(model: torch.nn.Module, present: Sequence[str], absent: Sequence[str],
                quiet: bool = False) -> dict[str, list[str]]:
    """What a method puts in its report about roles it was asked for but the model lacks (and
    one log line saying so, unless `quiet`: a method's check() before the baseline says nothing,
    its apply() says it once); {} when nothing is missing."""
    if not absent:
        return {}
    if quiet:
        return {"matrices_absent": list(absent)}
    import logging

    logging.getLogger("harness").warning("%s has no MLP matrix %s: editing %s only", type(model).__name__,
                                         ", ".join(map(repr, absent)), ", ".join(present))
    return {"matrices_absent": list(absent)}


def find_mlp_linears(model: torch.nn.Module, layers: Sequence[int] | None = None,
                     matrices: Sequence[str] = MATRICES) -> list[MLPLinear]:
    """Each requested MLP matrix of each requested layer, in layer order then `matrices` order.
    `layers=None` means all layers; negative indices count from the end."""
    blocks_path, blocks, roles = _blocks_and_roles(model)
    unknown = [m for m in matrices if m not in MATRICES]
    if unknown:
        raise ConfigError(f"unknown MLP matrix {', '.join(map(repr, unknown))}; valid: {', '.join(MATRICES)}")
    missing = [m for m in matrices if m not in roles]
    if missing:
        raise ConfigError(
            f"{type(model).__name__} has no MLP matrix {', '.join(map(repr, missing))}; "
            f"valid: {', '.join(roles)}"
        )
    count = len(blocks)
    chosen = range(count) if layers is None else list(layers)
    found: list[MLPLinear] = []
    seen: set[int] = set()
    for index in chosen:
        if isinstance(index, bool) or not isinstance(index, int) or not -count <= index < count:
            raise ConfigError(f"layer {index!r} does not exist: the model has layers 0..{count - 1} "
                              f"(or -{count}..-1 from the end)")
        index %= count
        if index in seen:  # [1, -1] on a 2-layer model names layer 1 twice: edit it once
            continue
        seen.add(index)
        for role in matrices:
            name = f"{blocks_path}.{index}.{roles[role]}"
            found.append(MLPLinear(name, index, role, model.get_submodule(name)))
    return found


def mlp_linears(model: torch.nn.Module, layers: Sequence[int] | None = None,
                matrices: Sequence[str] = MATRICES) -> dict[str, torch.nn.Module]:
    """Full module name -> the Linear (or GPT-2 Conv1D) of each requested MLP matrix in each
    requested layer. `layers=None` means all layers; negative indices count from the end."""
    return {found.name: found.module for found in find_mlp_linears(model, layers, matrices)}


def modules_matching(model: torch.nn.Module, pattern: str) -> dict[str, torch.nn.Module]:
    """Linear-like modules whose full name matches the regex `pattern` (for unknown architectures)."""
    import re

    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"module_pattern {pattern!r} is not a valid regex: {e}") from None
    found = {name: m for name, m in model.named_modules()
             if regex.search(name) and isinstance(getattr(m, "weight", None), torch.Tensor)
             and m.weight.dim() == 2 and not isinstance(m, torch.nn.Embedding)}
    if not found:
        raise ConfigError(f"module_pattern {pattern!r} matches no module with a 2-D weight "
                          "(Linear or Conv1D); embeddings are excluded")
    return found


def is_transposed(module: torch.nn.Module) -> bool:
    """GPT-2's Conv1D stores its weight as (in, out), the transpose of nn.Linear."""
    return type(module).__name__ == "Conv1D"


def weight_as_out_in(module: torch.nn.Module) -> torch.Tensor:
    """The weight as an (out_features, in_features) view, whatever the module stores."""
    return module.weight.T if is_transposed(module) else module.weight


def set_weight_out_in(module: torch.nn.Module, weight_out_in: torch.Tensor) -> None:
    """Write an (out, in) matrix back into the module's own layout and dtype."""
    target = weight_as_out_in(module)
    if tuple(weight_out_in.shape) != tuple(target.shape):
        raise ValueError(f"weight shape {tuple(weight_out_in.shape)} != module's (out, in) {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(weight_out_in.to(dtype=target.dtype, device=target.device))
