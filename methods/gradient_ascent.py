"""Gradient ascent: raise the NLL of the forget set by descending on its negative.

The simplest unlearning baseline. Trains only the selected MLP weights by default (`params: all`
trains every parameter) with AdamW; the gradient norm is clipped because the ascent objective is
unbounded and a single large step wrecks the model."""

from __future__ import annotations

import time
from typing import Any

import torch

from methods._finetune import (ForgetLossMethod, check_finetune_settings, dataset_nll, finetune, mean_nll,
                               trainable_parameters)
from methods.base import MethodContext


class GradientAscent(ForgetLossMethod):
    needs = ("forget",)

    def __init__(self, lr: float = 1e-5, epochs: int = 5, batch_size: int = 8,
                 max_grad_norm: float | None = 1.0, params: str = "mlp",
                 layers: list[int] | None = None, matrices: tuple[str, ...] = ("gate", "up", "down"),
                 prefix_len: int = 64, forget_loss_on: str = "suffix") -> None:
        from core.errors import ConfigError

        if forget_loss_on not in ("suffix", "all"):
            raise ConfigError(f"forget_loss_on must be 'suffix' or 'all', got {forget_loss_on!r}")
        matrices = tuple(matrices)
        layers = None if layers is None else list(layers)
        check_finetune_settings(lr, epochs, batch_size, max_grad_norm, params, layers, matrices, prefix_len)
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.max_grad_norm, self.params, self.layers, self.matrices = max_grad_norm, params, layers, matrices
        self.loss_start = prefix_len if forget_loss_on == "suffix" else 0

    def check(self, model: torch.nn.Module) -> None:
        trainable_parameters(model, self.params, self.layers, self.matrices, quiet=True)

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        start = time.perf_counter()
        report = finetune(
            model, ctx, loss_fn=lambda batch, step: -mean_nll(model, batch, self.loss_start, ctx.device),
            params=self.params, layers=self.layers, matrices=self.matrices, lr=self.lr,
            epochs=self.epochs, batch_size=self.batch_size, max_grad_norm=self.max_grad_norm,
            description="gradient ascent")
        report["final_forget_nll"] = dataset_nll(model, ctx.forget(), self.loss_start, ctx.device)
        report["seconds"] = time.perf_counter() - start
        return report
