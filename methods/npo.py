"""NPO, Negative Preference Optimization (Zhang, Lin, Bai, Mei 2024).

loss = (2/beta) * mean over forget sequences of log(1 + (pi_theta(y|x) / pi_ref(y|x))^beta)
     = (2/beta) * mean softplus(beta * (log pi_theta - log pi_ref)),
with log pi the summed log-probability of the scored tokens (the suffix by default). The
reference is the unedited model; instead of keeping a frozen copy (2x memory on a 1B model) its
log-probs are computed once before training, which is exact because the reference never changes.
An optional retain NLL term (`retain_weight` > 0) adds GradDiff-style regularisation; `needs`
then includes "retain" (set per instance in __init__)."""

from __future__ import annotations

import random
import time
from typing import Any

import torch

from core.errors import ConfigError
from methods._finetune import (ForgetLossMethod, check_finetune_settings, check_positive, dataset_nll, finetune,
                               mean_nll, sequence_logprobs, trainable_parameters)
from methods.base import MethodContext


class NPO(ForgetLossMethod):
    needs = ("forget",)

    def __init__(self, beta: float = 0.1, retain_weight: float = 0.0, lr: float = 1e-5,
                 epochs: int = 5, batch_size: int = 8, max_grad_norm: float | None = 1.0,
                 params: str = "mlp", layers: list[int] | None = None,
                 matrices: tuple[str, ...] = ("gate", "up", "down"), prefix_len: int = 64,
                 forget_loss_on: str = "suffix") -> None:
        check_positive("beta", beta)
        if forget_loss_on not in ("suffix", "all"):
            raise ConfigError(f"forget_loss_on must be 'suffix' or 'all', got {forget_loss_on!r}")
        if isinstance(retain_weight, bool) or not isinstance(retain_weight, (int, float)) or retain_weight < 0:
            raise ConfigError(f"retain_weight must be a number >= 0, got {retain_weight!r}")
        matrices = tuple(matrices)
        layers = None if layers is None else list(layers)
        check_finetune_settings(lr, epochs, batch_size, max_grad_norm, params, layers, matrices, prefix_len)
        self.beta, self.retain_weight = float(beta), float(retain_weight)
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.max_grad_norm, self.params, self.layers, self.matrices = max_grad_norm, params, layers, matrices
        self.loss_start = prefix_len if forget_loss_on == "suffix" else 0
        # The pipeline hands over only what `needs` names: the retain set only when it is used.
        self.needs = ("forget", "retain") if self.retain_weight > 0 else ("forget",)

    def check(self, model: torch.nn.Module) -> None:
        trainable_parameters(model, self.params, self.layers, self.matrices, quiet=True)

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        start = time.perf_counter()
        forget = ctx.forget()
        retain = ctx.retain() if self.retain_weight > 0 else None
        with torch.no_grad():  # reference log-probs of every forget sequence, once
            reference = {tuple(x): sequence_logprobs(model, [x], self.loss_start, ctx.device)[0].item()
                         for x in forget}
        rng = random.Random(ctx.seed + 1)

        def loss_fn(batch: list[list[int]], step: int) -> torch.Tensor:
            logp, _ = sequence_logprobs(model, batch, self.loss_start, ctx.device)
            ref = torch.tensor([reference[tuple(x)] for x in batch], device=logp.device)
            loss = (2 / self.beta) * torch.nn.functional.softplus(self.beta * (logp - ref)).mean()
            if retain is not None:
                retain_batch = rng.sample(retain, min(self.batch_size, len(retain)))
                loss = loss + self.retain_weight * mean_nll(model, retain_batch, 0, ctx.device)
            return loss

        report = finetune(
            model, ctx, loss_fn=loss_fn, params=self.params, layers=self.layers, matrices=self.matrices,
            lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
            max_grad_norm=self.max_grad_norm, description="NPO")
        report["final_forget_nll"] = dataset_nll(model, forget, self.loss_start, ctx.device)
        if retain is not None:
            report["final_retain_nll"] = dataset_nll(model, retain, 0, ctx.device)
        report["seconds"] = time.perf_counter() - start
        return report
