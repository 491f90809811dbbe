"""Round-to-nearest weight quantization, dequantized back (Zhang et al., ICLR 2025, arXiv
2410.16454: 4-bit quantization can restore what unlearning removed).

Each Linear weight of the transformer blocks (not the output head, as usual in weight-only
quantization) is quantized symmetrically to `bits` with the absmax scale of each output channel
(`group_size: null`) or of each group of `group_size` consecutive inputs in a row, then
dequantized: w' = scale · clamp(round(w / scale), -qmax, qmax), scale = max|w| / qmax,
qmax = 2^(bits-1) - 1. Because the absmax maps to ±qmax exactly, nothing is clipped and every
weight moves by at most half a step (scale / 2).

Why a few lines of torch and no library: what changes the model's behaviour is the rounding, not
the storage format; torchao's and bitsandbytes' int4 paths are built for GPU kernels, and
optimum-quanto would add a dependency to compute the same rounding. The fake-quantized copy runs
on any device, and the maths is tested directly (tests/attacks/test_quantize.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from attacks.base import Attack, AttackContext, AttackUnit, copy_model
from core.attackrecords import column_record
from core.errors import ConfigError

SCHEME = re.compile(r"^int(\d+)(?:_g(\d+))?$")  # int8, int4, int4_g128


def parse_scheme(scheme: str) -> tuple[int, int | None]:
    """'int4_g128' -> (4, 128); 'int8' -> (8, None) (per output channel)."""
    match = SCHEME.match(str(scheme))
    if not match or not 2 <= int(match.group(1)) <= 16 or (match.group(2) and int(match.group(2)) < 1):
        raise ConfigError(f"quantize: scheme {scheme!r} is not valid; use int<bits> or int<bits>_g<group>, "
                          "bits 2..16 (e.g. int8, int4, int4_g128)")
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def rtn_quantize(weight: "torch.Tensor", bits: int, group_size: int | None = None) -> "torch.Tensor":
    """Symmetric round-to-nearest quantization of a 2-D weight (out × in), dequantized back, in
    the weight's dtype. Per output channel, or per `group_size` inputs of each row (the last group
    of a row may be shorter)."""
    import torch

    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float()
    out_features, in_features = w.shape
    size = in_features if group_size is None else group_size
    pad = (-in_features) % size
    padded = torch.nn.functional.pad(w, (0, pad)).reshape(out_features, -1, size)
    scale = padded.abs().amax(dim=-1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group stays zero
    deq = (padded / scale).round().clamp(-qmax, qmax) * scale
    return deq.reshape(out_features, -1)[:, :in_features].to(weight.dtype)


def quantizable_linears(model: "torch.nn.Module") -> dict[str, "torch.nn.Module"]:
    """The Linear layers quantized: every torch.nn.Linear (or GPT-2 style Conv1D) except the
    output head."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    found = {}
    for name, module in model.named_modules():
        is_conv1d = type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None
        if (isinstance(module, torch.nn.Linear) or is_conv1d) and module is not head:
            found[name] = module
    return found


class Quantize(Attack):
    def __init__(self, schemes: list[str] = ("int8", "int4", "int4_g128")) -> None:
        if not schemes:
            raise ConfigError("quantize: schemes must list at least one scheme (e.g. [int8, int4, int4_g128])")
        self.schemes = {s: parse_scheme(s) for s in schemes}

    def column(self, unit: AttackUnit, attack: str) -> dict[str, Any]:
        """After relearning; more bits first, per channel before grouped, larger groups first."""
        bits, group = parse_scheme(unit.setting)
        return column_record([2, -1000 * bits - (group or 10 ** 6) // 10 ** 3, 0], f"after {unit.setting}")

    def unit_keys(self, name: str) -> list[str]:
        return [f"{name}.{s}" for s in self.schemes]

    def run(self, model: Any, ctx: AttackContext, name: str, done: set[str],
            emit: Callable[[AttackUnit], None]) -> None:
        import torch

        for scheme, (bits, group) in self.schemes.items():
            key = f"{name}.{scheme}"
            if key in done:
                continue
            clone = copy_model(model)
            linears = quantizable_linears(clone)
            moved = 0.0
            with torch.no_grad():
                for module in linears.values():
                    # Conv1D stores (in, out): quantize per output channel of the transposed view.
                    w = module.weight.T if type(module).__name__ == "Conv1D" else module.weight
                    q = rtn_quantize(w, bits, group)
                    moved = max(moved, (q.float() - w.float()).abs().max().item())
                    w.copy_(q)
            tasks = ctx.score(clone)
            del clone
            emit(AttackUnit(key, scheme, tasks, info={"bits": bits, "group_size": group,
                                                     "layers_quantized": len(linears), "max_abs_change": moved}))
