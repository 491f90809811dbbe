"""GradDiff: gradient ascent on the forget set plus ordinary descent on the retain set.

loss = -(1 - retain_weight) * NLL(forget batch) + retain_weight * NLL(retain batch); the retain
term keeps the model working on clean text while the forget term pushes memorized suffixes away."""

from __future__ import annotations

import random
import time
from typing import Any

import torch

from core.errors import ConfigError
from methods._finetune import (ForgetLossMethod, check_finetune_settings, dataset_nll, finetune, mean_nll,
                               trainable_parameters)
from methods.base import MethodContext


class GradDiff(ForgetLossMethod):
    needs = ("forget", "retain")

    def __init__(self, lr: float = 1e-5, epochs: int = 5, batch_size: int = 8,
                 retain_weight: float = 0.5, max_grad_norm: float | None = 1.0, params: str = "mlp",
                 layers: list[int] | None = None, matrices: tuple[str, ...] = ("gate", "up", "down"),
                 prefix_len: int = 64, forget_loss_on: str = "suffix") -> None:
        if forget_loss_on not in ("suffix", "all"):
            raise ConfigError(f"forget_loss_on must be 'suffix' or 'all', got {forget_loss_on!r}")
        if isinstance(retain_weight, bool) or not isinstance(retain_weight, (int, float)) or not 0 <= retain_weight < 1:
            raise ConfigError(f"retain_weight must be a number in [0, 1), got {retain_weight!r}")
        matrices = tuple(matrices)
        layers = None if layers is None else list(layers)
        check_finetune_settings(lr, epochs, batch_size, max_grad_norm, params, layers, matrices, prefix_len)
        self.lr, self.epochs, self.batch_size, self.retain_weight = lr, epochs, batch_size, retain_weight
        self.max_grad_norm, self.params, self.layers, self.matrices = max_grad_norm, params, layers, matrices
        self.loss_start = prefix_len if forget_loss_on == "suffix" else 0

    def check(self, model: torch.nn.Module) -> None:
        trainable_parameters(model, self.params, self.layers, self.matrices, quiet=True)

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        start = time.perf_counter()
        retain = ctx.retain()
        rng = random.Random(ctx.seed + 1)

        def loss_fn(batch: list[list[int]], step: int) -> torch.Tensor:
            retain_batch = rng.sample(retain, min(self.batch_size, len(retain)))
            forget_nll = mean_nll(model, batch, self.loss_start, ctx.device)
            retain_nll = mean_nll(model, retain_batch, 0, ctx.device)
            return -(1 - self.retain_weight) * forget_nll + self.retain_weight * retain_nll

        report = finetune(
            model, ctx, loss_fn=loss_fn, params=self.params, layers=self.layers, matrices=self.matrices,
            lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
            max_grad_norm=self.max_grad_norm, description="GradDiff")
        report["final_forget_nll"] = dataset_nll(model, ctx.forget(), self.loss_start, ctx.device)
        report["final_retain_nll"] = dataset_nll(model, retain, 0, ctx.device)
        report["seconds"] = time.perf_counter() - start
        return report
