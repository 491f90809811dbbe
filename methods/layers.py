"""Find the MLP weight matrices of a model, whatever its architecture.

Methods name matrices by role ("gate", "up", "down") and layers by index; this module maps those
to the modules of OLMo-2 / Llama / Mistral / Qwen, GPT-NeoX, GPT-2 and ViT models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.errors import ConfigError

MATRICES = ("gate", "up", "down")

# (path to the list of blocks, {role: path of the Linear inside a block})
_ARCHITECTURES: list[tuple[str, dict[str, str]]] = [
    ("model.layers", {"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}),
    ("gpt_neox.layers", {"up": "mlp.dense_h_to_4h", "down": "mlp.dense_4h_to_h"}),
    ("transformer.h", {"up": "mlp.c_fc", "down": "mlp.c_proj"}),
    ("vit.encoder.layer", {"up": "intermediate.dense", "down": "output.dense"}),
]


def _blocks_and_roles(model: torch.nn.Module) -> tuple[str, Sequence[torch.nn.Module], dict[str, str]]:
    for blocks_path, roles in _ARCHITECTURES:
        try:
            blocks = model.get_submodule(blocks_path)
        except AttributeError:
            continue
        if isinstance(blocks, torch.nn.ModuleList):
            return blocks_path, blocks, roles
    known = ", ".join(path for path, _ in _ARCHITECTURES)
    raise ConfigError(
        f"cannot find the MLP layers of {type(model).__name__}: known layouts are {known}; "
        "set method.module_pattern to a regex over module names instead"
    )


def num_layers(model: torch.nn.Module) -> int:
    """Number of transformer blocks."""
    return len(_blocks_and_roles(model)[1])


def mlp_linears(model: torch.nn.Module, layers: Sequence[int] | None = None,
                matrices: Sequence[str] = MATRICES) -> dict[str, torch.nn.Module]:
    """Full module name -> the Linear (or GPT-2 Conv1D) of each requested MLP matrix in each
    requested layer. `layers=None` means all layers; negative indices count from the end."""
    blocks_path, blocks, roles = _blocks_and_roles(model)
    missing = [m for m in matrices if m not in roles]
    if missing:
        raise ConfigError(
            f"{type(model).__name__} has no MLP matrix {', '.join(map(repr, missing))}; "
            f"valid: {', '.join(roles)}"
        )
    count = len(blocks)
    chosen = range(count) if layers is None else list(layers)
    found: dict[str, torch.nn.Module] = {}
    for index in chosen:
        if not -count <= int(index) < count:
            raise ConfigError(f"layer {index} does not exist: the model has layers 0..{count - 1}")
        index = int(index) % count
        for role in matrices:
            name = f"{blocks_path}.{index}.{roles[role]}"
            found[name] = model.get_submodule(name)
    return found


def modules_matching(model: torch.nn.Module, pattern: str) -> dict[str, torch.nn.Module]:
    """Linear-like modules whose full name matches the regex `pattern` (for unknown architectures)."""
    import re

    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"module_pattern {pattern!r} is not a valid regex: {e}") from None
    found = {name: m for name, m in model.named_modules()
             if regex.search(name) and getattr(m, "weight", None) is not None and m.weight.dim() == 2}
    if not found:
        raise ConfigError(f"module_pattern {pattern!r} matches no 2-D weight module")
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
    with torch.no_grad():
        target.copy_(weight_out_in.to(dtype=target.dtype, device=target.device))
