"""BalancedSubnet (Sakarvadia et al., ICLR 2025): learn which MLP weights to drop.

The weights stay frozen. Every weight of the chosen MLP matrices gets a real-valued score; the
forward pass uses W * mask, where the mask zeros the `ratio` lowest-scoring weights of each matrix
and the gradient passes straight through the hard mask to the scores (edge-popup style). The
scores are trained with SGD on
    loss = -(1 - w) * NLL(forget batch) + w * NLL(retain batch),
and at the end the mask is folded into the weights (the selected entries become exactly 0).

Selection rule: per matrix, exactly round(ratio * numel) weights are masked (torch.topk on that
matrix's scores). We chose per-matrix over a global threshold because it is exact, needs no
sort across the model and bounds the damage to any single matrix; whether the paper's code ranks
per matrix or globally we could not check, so this is our choice, not theirs.

Memory: scores are one tensor per selected matrix in the model dtype (same size as the weights):
OLMo-2 1B has 16 layers x 3 x 2048 x 8192 = 0.8B MLP weights, so bf16 scores take 1.6 GB plus
1.6 GB of SGD momentum and 1.6 GB of gradient; no copy of the model is made. `layers` restricts
the scores to a subset of layers. Only `ctx.forget()` and `ctx.retain()` are read, never
validation data."""

from __future__ import annotations

import random
import time
from typing import Any

import torch

from core.errors import ConfigError
from methods._finetune import (ForgetLossMethod, advance, batches, check_layer_settings, check_positive,
                               dataset_nll, mean_nll, progress_task, select_linears)
from methods.base import MethodContext
from models.architectures import weight_as_out_in


def lowest_mask(scores: torch.Tensor, n_masked: int) -> torch.Tensor:
    """0/1 mask (scores' dtype) that is 0 at exactly the n_masked lowest scores."""
    mask = torch.ones(scores.shape, dtype=scores.dtype, device=scores.device)  # contiguous, whatever scores' strides
    if n_masked > 0:
        index = torch.topk(scores.flatten().float(), n_masked, largest=False).indices
        mask.view(-1)[index] = 0
    return mask


def straight_through_mask(scores: torch.Tensor, n_masked: int) -> torch.Tensor:
    """Hard mask in the forward pass, identity gradient to the scores in the backward pass."""
    return lowest_mask(scores.detach(), n_masked) + (scores - scores.detach())  # exactly 0/1 forward


class BalancedSubnet(ForgetLossMethod):
    needs = ("forget", "retain")

    def __init__(self, ratio: float = 0.01, retain_weight: float = 0.3, lr: float = 30.0,
                 momentum: float = 0.9, weight_decay: float = 5e-4, epochs: int = 50,
                 batch_size: int = 16, micro_batch_size: int | None = 16,
                 layers: list[int] | None = None, matrices: tuple[str, ...] = ("gate", "up", "down"),
                 prefix_len: int = 64, forget_loss_on: str = "suffix") -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise ConfigError(f"ratio must be a fraction in (0, 1), got {ratio!r}")
        if isinstance(retain_weight, bool) or not isinstance(retain_weight, (int, float)) or not 0 <= retain_weight < 1:
            raise ConfigError(f"retain_weight (w) must be a number in [0, 1), got {retain_weight!r}")
        check_positive("lr", lr)
        check_positive("epochs", epochs, integer=True)
        check_positive("batch_size", batch_size, integer=True)
        if micro_batch_size is not None:
            check_positive("micro_batch_size", micro_batch_size, integer=True)
        for name, value in (("momentum", momentum), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if forget_loss_on not in ("suffix", "all"):
            raise ConfigError(f"forget_loss_on must be 'suffix' or 'all', got {forget_loss_on!r}")
        if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or prefix_len < 0:
            raise ConfigError(f"prefix_len must be an integer >= 0, got {prefix_len!r}")
        matrices = tuple(matrices)
        layers = None if layers is None else list(layers)
        check_layer_settings(layers, matrices)
        self.ratio, self.retain_weight, self.lr = float(ratio), float(retain_weight), float(lr)
        self.momentum, self.weight_decay, self.epochs = float(momentum), float(weight_decay), epochs
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size or batch_size
        self.layers, self.matrices = layers, matrices
        self.loss_start = prefix_len if forget_loss_on == "suffix" else 0

    def check(self, model: torch.nn.Module) -> None:
        select_linears(model, self.layers, self.matrices, quiet=True)

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        import torch.nn.functional as F

        start = time.perf_counter()
        forget, retain = ctx.forget(), ctx.retain()
        linears, absent = select_linears(model, self.layers, self.matrices)
        torch.manual_seed(ctx.seed)
        rng = random.Random(ctx.seed)

        # Scores start at |W|, so the initial mask drops the smallest-magnitude weights (a benign
        # start); SGD then moves them by how much each weight helps recall vs clean text. Scores and
        # masks are (out, in) whatever the module stores (GPT-2's Conv1D keeps (in, out)).
        scores = {name: weight_as_out_in(m).detach().abs().contiguous().requires_grad_(True)
                  for name, m in linears.items()}
        n_masked = {name: round(self.ratio * m.weight.numel()) for name, m in linears.items()}
        requires = {name: p.requires_grad for name, p in model.named_parameters()}
        for p in model.parameters():
            p.requires_grad_(False)

        def masked_forward(module: torch.nn.Module, name: str):
            def forward(x: torch.Tensor) -> torch.Tensor:
                mask = straight_through_mask(scores[name], n_masked[name])
                return F.linear(x, weight_as_out_in(module) * mask, module.bias)
            return forward

        for name, module in linears.items():
            module.forward = masked_forward(module, name)  # instance attribute, removed below
        optimizer = torch.optim.SGD(list(scores.values()), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        steps_per_epoch = -(-len(forget) // self.batch_size)
        task = progress_task(ctx.progress, "BalancedSubnet", self.epochs * steps_per_epoch)
        step = 0
        try:
            for _ in range(self.epochs):
                for batch in batches(forget, self.batch_size, rng):
                    retain_batch = rng.sample(retain, min(len(batch), len(retain)))
                    optimizer.zero_grad(set_to_none=True)
                    # gradient accumulation: micro-batches weighted by their share of the batch
                    for i in range(0, len(batch), self.micro_batch_size):
                        part = batch[i:i + self.micro_batch_size]
                        loss = -(1 - self.retain_weight) * mean_nll(model, part, self.loss_start, ctx.device)
                        (loss * len(part) / len(batch)).backward()
                    for i in range(0, len(retain_batch), self.micro_batch_size):
                        part = retain_batch[i:i + self.micro_batch_size]
                        loss = self.retain_weight * mean_nll(model, part, 0, ctx.device)
                        (loss * len(part) / len(retain_batch)).backward()
                    optimizer.step()
                    step += 1
                    advance(ctx.progress, task)
        finally:
            for module in linears.values():
                del module.forward  # back to the class's forward
            for name, p in model.named_parameters():
                p.requires_grad_(requires[name])

        changed = {}
        with torch.no_grad():  # fold the final mask into the weights
            for name, module in linears.items():
                weight_as_out_in(module).mul_(lowest_mask(scores[name].detach(), n_masked[name]))
                changed[f"{name}.weight"] = {"fraction_masked": n_masked[name] / module.weight.numel(),
                                             "masked": n_masked[name], "components_total": module.weight.numel(),
                                             "components_removed": n_masked[name]}
        del scores, optimizer
        return {"changed": changed, "steps": step, **absent,
                "final_forget_nll": dataset_nll(model, forget, self.loss_start, ctx.device),
                "final_retain_nll": dataset_nll(model, retain, 0, ctx.device),
                "seconds": time.perf_counter() - start}
