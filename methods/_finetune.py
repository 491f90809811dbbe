"""Shared pieces of the training-based methods (BalancedSubnet, gradient ascent, GradDiff, NPO):
choosing the weights to train, batching token-id lists, and per-sequence losses."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import torch

from core.errors import ConfigError
from methods.base import Method


def check_positive(name: str, value: Any, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")


def check_forget_lengths(forget: list[list[int]], loss_start: int, switch: str = " or method.forget_loss_on=all") -> None:
    """Every forget example must have a token to score after `loss_start` (prefix_len), or its
    loss is empty: checked with the data, before the baseline, not when training reaches it."""
    start = max(loss_start, 1)
    short = [(i, len(ids)) for i, ids in enumerate(forget, 1) if len(ids) <= start]
    if short:
        shortest = min(len(ids) for ids in forget)
        i, n = short[0]
        raise ConfigError(f"prefix_len={loss_start} leaves nothing to score in {len(short)} of {len(forget)} forget "
                          f"examples (example {i} has {n} tokens; the loss is on the tokens after the prefix); "
                          f"set method.prefix_len below {shortest}{switch}")


class ForgetLossMethod(Method):
    """A method whose loss is on each forget example's tokens after `self.loss_start` (prefix_len,
    or 0 with forget_loss_on=all): the forget set is checked for them before the baseline."""

    loss_start: int

    def check_data(self, data: Any) -> None:
        check_forget_lengths(data.forget(), self.loss_start)


def check_layer_settings(layers: Any, matrices: Any) -> None:
    from models.architectures import check_layers_setting, check_matrices_setting

    check_layers_setting(layers)
    check_matrices_setting(matrices)


def select_linears(model: torch.nn.Module, layers: list[int] | None, matrices: tuple[str, ...], quiet: bool = False
                   ) -> tuple[dict[str, torch.nn.Module], dict[str, list[str]]]:
    """(full module name -> module of each MLP matrix to edit, report note on requested matrices
    the architecture lacks: those are skipped, models/architectures.py; `quiet`: no log line,
    for a method's check(), so that the edit says it once)."""
    from models.architectures import absent_note, mlp_linears, resolve_matrices

    present, absent = resolve_matrices(model, tuple(matrices))
    found = mlp_linears(model, layers=layers, matrices=present)
    if not found:
        raise ConfigError(f"no MLP matrices {list(matrices)} found in layers {layers} of this model")
    return found, absent_note(model, present, absent, quiet)


def batches(examples: list[list[int]], batch_size: int, rng: random.Random) -> Iterator[list[list[int]]]:
    """One epoch of shuffled batches."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    for i in range(0, len(order), batch_size):
        yield [examples[j] for j in order[i:i + batch_size]]


def right_padded(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of a right-padded batch, on the CPU."""
    length = max(len(x) for x in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    attention = torch.zeros(len(batch), length, dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        attention[i, :len(x)] = 1
    return ids, attention


def sequence_logprobs(model: torch.nn.Module, batch: list[list[int]], loss_start: int,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of token log-probs, number of scored tokens) per sequence, scoring the tokens at
    positions >= loss_start (0 scores every token after the first). Right-padded batch."""
    ids, attention = right_padded(batch)
    length = ids.shape[1]
    ids, attention = ids.to(device), attention.to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    targets = ids[:, 1:]
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    position = torch.arange(1, length, device=device).unsqueeze(0)
    scored = (attention[:, 1:] == 1) & (position >= max(loss_start, 1))
    return (token_logp * scored).sum(1), scored.sum(1)


def per_sequence_nll(model: torch.nn.Module, batch: list[list[int]], loss_start: int,
                     device: torch.device) -> torch.Tensor:
    """Per-token NLL of the scored part (positions >= loss_start) of each sequence (differentiable)."""
    logp, count = sequence_logprobs(model, batch, loss_start, device)
    if (count == 0).any():
        raise ConfigError(f"an example has no tokens after position {loss_start}: lower prefix_len")
    return -logp / count


def mean_nll(model: torch.nn.Module, batch: list[list[int]], loss_start: int,
             device: torch.device) -> torch.Tensor:
    """Mean over sequences of the per-token NLL of the scored part (differentiable)."""
    return per_sequence_nll(model, batch, loss_start, device).mean()


@torch.no_grad()
def dataset_nll(model: torch.nn.Module, examples: list[list[int]], loss_start: int,
                device: torch.device, batch_size: int = 16) -> float:
    """Mean per-sequence NLL over a whole set, for reports."""
    total = 0.0
    for i in range(0, len(examples), batch_size):
        batch = examples[i:i + batch_size]
        total += mean_nll(model, batch, loss_start, device).item() * len(batch)
    return total / max(len(examples), 1)


def trainable_parameters(model: torch.nn.Module, params: str, layers: list[int] | None,
                         matrices: tuple[str, ...], quiet: bool = False
                         ) -> tuple[dict[str, torch.nn.Parameter], dict[str, list[str]]]:
    """(parameter name -> parameter for the gradient methods: 'mlp' (selected MLP weights) or
    'all'; report note on requested matrices the architecture lacks; `quiet`: select_linears')."""
    if params == "all":
        return dict(model.named_parameters()), {}
    linears, note = select_linears(model, layers, matrices, quiet)
    return {f"{name}.weight": module.weight for name, module in linears.items()}, note


def fraction_changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, dict[str, float]]:
    now = dict(model.named_parameters())
    return {name: {"fraction_changed": (now[name].detach().cpu() != old).float().mean().item()}
            for name, old in before.items()}


def progress_task(progress: Any, description: str, total: int) -> Any:
    return None if progress is None else progress.add_task(description, total=total)


def advance(progress: Any, task: Any) -> None:
    if progress is not None:
        progress.advance(task)


def check_finetune_settings(lr: Any, epochs: Any, batch_size: Any, max_grad_norm: Any, params: Any,
                            layers: Any, matrices: Any, prefix_len: Any) -> None:
    check_positive("lr", lr)
    check_positive("epochs", epochs, integer=True)
    check_positive("batch_size", batch_size, integer=True)
    if max_grad_norm is not None:
        check_positive("max_grad_norm", max_grad_norm)
    if params not in ("mlp", "all"):
        raise ConfigError(f"params must be 'mlp' (selected MLP matrices) or 'all', got {params!r}")
    check_layer_settings(layers, matrices)
    if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or prefix_len < 0:
        raise ConfigError(f"prefix_len must be an integer >= 0, got {prefix_len!r}")


def finetune(model: torch.nn.Module, ctx: Any, *, loss_fn: Any, params: str, layers: list[int] | None,
             matrices: tuple[str, ...], lr: float, epochs: int, batch_size: int,
             max_grad_norm: float | None, description: str, max_steps: int | None = None,
             on_step: Any = None) -> dict[str, Any]:
    """AdamW on the chosen parameters (all others frozen), one step per forget batch.
    loss_fn(forget_batch, step) -> scalar loss. Returns the report's `changed` and `steps`.
    max_steps stops early (epochs is then an upper bound); on_step(steps done) is called after
    each step, with the model in train mode (relearning attacks score checkpoints with it)."""
    chosen, note = trainable_parameters(model, params, layers, matrices)
    before = {name: p.detach().cpu().clone() for name, p in chosen.items()}
    was_training = model.training
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in chosen.values():
        p.requires_grad_(True)
    torch.manual_seed(ctx.seed)
    rng = random.Random(ctx.seed)
    forget = ctx.forget()
    optimizer = torch.optim.AdamW(list(chosen.values()), lr=lr, weight_decay=0.0)
    steps_per_epoch = -(-len(forget) // batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    task = progress_task(ctx.progress, description, total)
    model.train()  # dropout is 0 in the supported models; train() only matters for modules that check it
    step = 0
    try:
        for _ in range(epochs):
            if step == total:
                break
            for batch in batches(forget, batch_size, rng):
                if step == total:
                    break
                loss = loss_fn(batch, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(list(chosen.values()), max_grad_norm)
                optimizer.step()
                step += 1
                advance(ctx.progress, task)
                if on_step is not None:
                    on_step(step)
    finally:
        model.train(was_training)
        for name, p in model.named_parameters():
            p.requires_grad_(requires[name])
            p.grad = None
    return {"changed": fraction_changed(before, model), "steps": step, **note}
