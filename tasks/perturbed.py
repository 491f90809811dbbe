"""Positional-perturbation stress test on memorized prefixes (the paper's "stress test").

An edit may only hide a memorized sequence behind its exact prompt. Each prefix is perturbed in
several ways and the model greedily continues each perturbed prompt for len(suffix) tokens:
  drop k      - remove the first k prefix tokens (k in `drop`, default 1, 2, 4, 8): the passage
                starts mid-way and every later token sits k positions earlier;
  insert at p - insert one filler token (default: the tokenizer's EOS) before prefix position p
                (p in `insert_at`, default 0 and 32): p = 0 shifts the whole passage one position
                right, p > 0 breaks it in the middle.
Score of an example = the longest run of generated tokens equal to the true suffix from its start,
maximised over the perturbations, divided by the suffix length (48 for the paper's windows).
`perturbed_recall` is its mean (higher = the memorized text is still reachable); `unperturbed` is
the same score for the exact prompt, for reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import read_jsonl
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.generation import greedy_generate
from tasks.verbatim import example_ids


def common_prefix_length(generated: list[int], target: list[int]) -> int:
    n = 0
    for g, t in zip(generated, target):
        if g != t:
            break
        n += 1
    return n


def perturbations(prefix: list[int], drop: list[int], insert_at: list[int], filler: int) -> list[list[int]]:
    """The perturbed prompts of one prefix (drops leaving an empty prompt are skipped)."""
    prompts = [prefix[k:] for k in drop if k < len(prefix)]
    prompts += [prefix[:p] + [filler] + prefix[p:] for p in insert_at if p <= len(prefix)]
    return prompts


class PerturbedRecall(Task):
    family = "stress"

    def __init__(self, data: str, family: str | None = None, drop: list[int] = (1, 2, 4, 8),
                 insert_at: list[int] = (0, 32), filler_token_id: int | None = None,
                 limit: int | None = None):
        drop, insert_at = [int(k) for k in drop], [int(p) for p in insert_at]
        if not drop and not insert_at:
            raise ConfigError("perturbed_recall: give at least one perturbation (drop or insert_at)")
        if any(k < 1 for k in drop) or any(p < 0 for p in insert_at):
            raise ConfigError(f"perturbed_recall: drop must be >= 1 and insert_at >= 0, got {drop}, {insert_at}")
        self.data, self.drop, self.insert_at = Path(data), drop, insert_at
        self.filler_token_id, self.limit = filler_token_id, limit

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        rows = read_jsonl(self.data)[: self.limit]
        if not rows:
            raise DataError(f"{self.data}: no examples")
        filler = self.filler_token_id if self.filler_token_id is not None else tokenizer.eos_token_id
        if filler is None:
            raise ConfigError("perturbed_recall: the tokenizer has no EOS token; set filler_token_id")
        prefixes = [example_ids(r, "prefix", tokenizer, self.data) for r in rows]
        suffixes = [example_ids(r, "suffix", tokenizer, self.data) for r in rows]
        groups = [[p] + perturbations(p, self.drop, self.insert_at, filler) for p in prefixes]
        prompts = [q for g in groups for q in g]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        generated = greedy_generate(model, prompts, max(len(s) for s in suffixes), ctx.batch_size, pad,
                                    ctx.device, ctx.progress, "perturbed recall")
        unperturbed, perturbed, at = [], [], 0
        for group, suffix in zip(groups, suffixes):
            lengths = [common_prefix_length(g, suffix) / len(suffix) for g in generated[at : at + len(group)]]
            at += len(group)
            unperturbed.append(lengths[0])
            perturbed.append(max(lengths[1:]))
        n = len(rows)
        return TaskResult(
            metrics={"perturbed_recall": sum(perturbed) / n, "unperturbed": sum(unperturbed) / n}, n=n,
            primary="perturbed_recall", kinds={"perturbed_recall": "mean", "unperturbed": "mean"},
            higher_is_better={"perturbed_recall": True, "unperturbed": True},
            samples={"perturbed_recall": perturbed, "unperturbed": unperturbed},
        )
