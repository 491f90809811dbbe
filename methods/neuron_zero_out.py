"""Neuron zero-out (Chang et al. 2024, "Do localization methods actually localize memorized data in
LLMs?", as used by Sakarvadia et al., ICLR 2025): drop the MLP neurons the forget set depends on.

A neuron is one inner dimension of an MLP block, the input of `down_proj` (GPT-2: `c_proj`,
GPT-NeoX: `dense_4h_to_h`). Every neuron of the chosen layers gets a score, and per layer exactly
round(ratio * inner) neurons with the highest scores are dropped by zeroing their `down_proj`
columns; nothing else changes. Two scorers (`score`):

- `zero_out` (default, exact): score_i = NLL(forget suffixes with neuron i's activation set to 0)
  - NLL(forget suffixes unedited), NLL as in the other methods' reports (mean over examples of the
  per-token NLL at positions >= prefix_len). One forward zeroes `chunk` neurons at once: the batch is
  repeated chunk times and a pre-hook on down_proj zeroes neuron c in copy c. Cost: layers x
  ceil(inner / chunk) x ceil(forget / batch_size) forwards of chunk x batch_size sequences (the
  logits alone are chunk x batch_size x seq_len x vocab floats: lower chunk on large vocabularies).
  The organism (4 x 1024 neurons) is cheap; OLMo-2 1B is 16 x 8192 neurons, so use `activations`
  or a few `layers` there. (Sakarvadia's zero_out.py scores the loss on the whole sequence; we score
  the suffix, the memorised part, as the other methods' forget losses do.)
- `activations` (Sakarvadia's `largest_act`): |mean activation at the down_proj input over the
  positions that predict suffix tokens| x L2 norm of the neuron's down_proj column. One forward per
  forget batch. As in the reference code the absolute value is taken after averaging (not the mean
  of |activation|), and the mean is over all scored tokens (the same when examples are equal length).

Only `ctx.forget()` is read, never retain or validation data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from core.errors import ConfigError
from methods._finetune import (advance, check_layer_settings, check_positive, dataset_nll,
                               per_sequence_nll, progress_task, right_padded, select_linears)
from methods.base import Method, MethodContext
from models.architectures import weight_as_out_in

SCORERS = ("zero_out", "activations")


def inner_size(down: torch.nn.Module) -> int:
    """Number of neurons feeding `down` (its in_features, whatever its weight layout)."""
    return weight_as_out_in(down).shape[1]


@torch.no_grad()
def zero_out_scores(model: torch.nn.Module, down: torch.nn.Module, examples: list[list[int]],
                    loss_start: int, device: torch.device, chunk: int = 16, batch_size: int = 16,
                    on_forward: Callable[[], None] | None = None) -> torch.Tensor:
    """score[i] = NLL(examples, neuron i of `down`'s input zeroed) - NLL(examples), fp32 on the CPU.
    Exact (one zeroed neuron per sequence copy); `chunk` neurons share one forward."""
    inner = inner_size(down)
    mask: list[torch.Tensor] = []  # the current (C, inner) mask; empty = no edit

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not mask:
            return None
        x, m = args[0], mask[0]
        copies = m.shape[0]
        shaped = x.reshape(copies, x.shape[0] // copies, *x.shape[1:])  # (C, B, T, inner)
        edited = shaped * m.view(copies, *([1] * (shaped.dim() - 2)), inner).to(x.dtype)
        return (edited.reshape(x.shape), *args[1:])

    base = torch.zeros(())
    zeroed = torch.zeros(inner)
    handle = down.register_forward_pre_hook(hook)
    try:
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            base += per_sequence_nll(model, batch, loss_start, device).sum().cpu()
            if on_forward is not None:
                on_forward()
            for start in range(0, inner, chunk):
                neurons = torch.arange(start, min(start + chunk, inner))
                m = torch.ones(len(neurons), inner, device=device)
                m[torch.arange(len(neurons)), neurons.to(device)] = 0
                mask[:] = [m]
                nll = per_sequence_nll(model, batch * len(neurons), loss_start, device)
                zeroed[neurons] += nll.view(len(neurons), len(batch)).sum(1).cpu()
                mask.clear()
                if on_forward is not None:
                    on_forward()
    finally:
        handle.remove()
    return (zeroed - base) / len(examples)


@torch.no_grad()
def activation_scores(model: torch.nn.Module, downs: dict[str, torch.nn.Module],
                      examples: list[list[int]], loss_start: int, device: torch.device,
                      batch_size: int = 16, on_forward: Callable[[], None] | None = None
                      ) -> dict[str, torch.Tensor]:
    """Per module name: |mean input activation over the positions predicting scored tokens| x the
    L2 norm of each down_proj column (fp32, CPU). Positions as in `per_sequence_nll`."""
    sums = {name: torch.zeros(inner_size(d), dtype=torch.float64) for name, d in downs.items()}
    count = 0
    scored: list[torch.Tensor] = []  # (B, T) 0/1 weights of the input positions of this batch

    def capture(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].float()
            sums[name] += torch.einsum("bt,bti->i", scored[0], x).double().cpu()
        return hook

    handles = [d.register_forward_pre_hook(capture(name)) for name, d in downs.items()]
    try:
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            ids, attention = right_padded(batch)
            length = ids.shape[1]
            # input position p predicts target p + 1, scored when p + 1 >= max(loss_start, 1)
            position = torch.arange(length).unsqueeze(0)
            weights = torch.zeros(len(batch), length)
            weights[:, :-1] = ((attention[:, 1:] == 1) & (position[:, 1:] >= max(loss_start, 1))).float()
            if (weights.sum(1) == 0).any():
                raise ConfigError(f"an example has no tokens after position {loss_start}: lower prefix_len")
            scored[:] = [weights.to(device)]
            model(input_ids=ids.to(device), attention_mask=attention.to(device))
            count += int(weights.sum())
            if on_forward is not None:
                on_forward()
    finally:
        for handle in handles:
            handle.remove()
    return {name: (sums[name] / count).abs().float()
                  * weight_as_out_in(d).detach().float().norm(dim=0).cpu()
            for name, d in downs.items()}


def top_neurons(scores: torch.Tensor, n: int) -> list[int]:
    """Indices of the n highest scores, highest first."""
    return torch.topk(scores, n).indices.tolist() if n > 0 else []


def zero_columns(down: torch.nn.Module, neurons: list[int]) -> None:
    """Zero the down_proj columns (GPT-2 Conv1D: rows) of `neurons`, in place."""
    if neurons:
        with torch.no_grad():
            weight_as_out_in(down)[:, torch.tensor(neurons, device=down.weight.device)] = 0


class NeuronZeroOut(Method):
    """Settings: the keys of conf/method/neuron_zero_out.yaml."""

    needs = ("forget",)

    def __init__(self, ratio: float = 0.01, score: str = "activations", layers: list[int] | None = None,
                 chunk: int = 16, batch_size: int = 16, prefix_len: int = 64) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise ConfigError(f"ratio must be a fraction in (0, 1), got {ratio!r}")
        if score not in SCORERS:
            raise ConfigError(f"score must be one of {list(SCORERS)}, got {score!r}")
        check_positive("chunk", chunk, integer=True)
        check_positive("batch_size", batch_size, integer=True)
        if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or prefix_len < 0:
            raise ConfigError(f"prefix_len must be an integer >= 0, got {prefix_len!r}")
        check_layer_settings(layers, ("down",))
        self.ratio, self.score, self.layers = float(ratio), score, None if layers is None else list(layers)
        self.chunk, self.batch_size, self.prefix_len = chunk, batch_size, prefix_len

    def check(self, model: torch.nn.Module) -> None:
        select_linears(model, self.layers, ("down",), quiet=True)

    def check_data(self, data: Any) -> None:
        from methods._finetune import check_forget_lengths

        check_forget_lengths(data.forget(), self.prefix_len, switch="")

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        start = time.perf_counter()
        forget = ctx.forget()
        downs = select_linears(model, self.layers, ("down",))[0]
        n_batches = -(-len(forget) // self.batch_size)
        was_training = model.training
        model.eval()
        try:
            if self.score == "zero_out":
                forwards = sum(n_batches * (1 + -(-inner_size(d) // self.chunk)) for d in downs.values())
                task = progress_task(ctx.progress, "neuron zero-out scores", forwards)
                scores = {name: zero_out_scores(model, d, forget, self.prefix_len, ctx.device, self.chunk,
                                                self.batch_size, lambda: advance(ctx.progress, task))
                          for name, d in downs.items()}
            else:
                task = progress_task(ctx.progress, "neuron activation scores", n_batches)
                scores = activation_scores(model, downs, forget, self.prefix_len, ctx.device,
                                           self.batch_size, lambda: advance(ctx.progress, task))
        finally:
            model.train(was_training)

        changed = {}
        for name, d in downs.items():
            inner = inner_size(d)
            neurons = top_neurons(scores[name], round(self.ratio * inner))
            zero_columns(d, neurons)
            changed[f"{name}.weight"] = {"neurons": neurons, "fraction": len(neurons) / inner,
                                         "components_total": inner, "components_removed": len(neurons)}
        return {"changed": changed, "scorer": self.score,
                "final_forget_nll": dataset_nll(model, forget, self.prefix_len, ctx.device),
                "seconds": time.perf_counter() - start}
