"""Verbatim recall of memorized sequences (the paper's main memorization metric).

Each example is a 64-token prefix and a 48-token suffix that the model reproduced exactly before
any edit. The model greedily generates `len(suffix)` tokens after the prefix; with d the token-level
Levenshtein distance to the true suffix and L its length:
  strict  = d == 0                 (exact recall)
  loose   = 1 - d / L >= 0.75      (near recall)
  lev_norm = d / L                 (mean normalised distance; 0 = perfect recall)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rapidfuzz.distance import Levenshtein

from core.data import check_token_ids, example_ids, read_jsonl_lines
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.generation import greedy_generate, model_limits


def score_continuations(generated: list[list[int]], targets: list[list[int]],
                        loose_threshold: float = 0.75) -> TaskResult:
    """Strict / loose / normalised-Levenshtein scores of generated token ids against targets."""
    strict, loose, lev = [], [], []
    for gen, target in zip(generated, targets, strict=True):
        distance = Levenshtein.distance(gen[: len(target)], target) / len(target)
        strict.append(float(distance == 0))
        loose.append(float(1 - distance >= loose_threshold))
        lev.append(distance)
    n = len(targets)
    return TaskResult(
        metrics={"strict": sum(strict) / n, "loose": sum(loose) / n, "lev_norm": sum(lev) / n},
        n=n,
        primary="strict",
        kinds={"strict": "proportion", "loose": "proportion", "lev_norm": "mean"},
        higher_is_better={"strict": True, "loose": True, "lev_norm": False},
        samples={"strict": strict, "loose": loose, "lev_norm": lev},
    )


class VerbatimRecall(Task):
    family = "memorized"

    def __init__(self, data: str, family: str | None = None, loose_threshold: float = 0.75,
                 limit: int | None = None):
        if not 0 < loose_threshold <= 1:
            raise ConfigError(f"verbatim: loose_threshold must be in (0, 1], got {loose_threshold}")
        self.data = Path(data)
        self.loose_threshold = loose_threshold
        self.limit = limit

    def prompts_and_targets(self, tokenizer: Any, model: torch.nn.Module | None = None
                            ) -> tuple[list[list[int]], list[list[int]]]:
        """(prefixes, suffixes) of the data file; with `model`, each checked against its vocabulary
        and positions. A bad row is a DataError naming the file and line."""
        rows = read_jsonl_lines(self.data)[: self.limit]
        if not rows:
            raise DataError(f"{self.data}: no examples")
        vocab, positions = model_limits(model) if model is not None else (None, None)
        prefixes, suffixes = [], []
        for lineno, row in rows:
            prefixes.append(example_ids(row, "prefix", tokenizer, self.data, lineno))
            suffixes.append(example_ids(row, "suffix", tokenizer, self.data, lineno))
            check_token_ids(f"{self.data}:{lineno}", prefixes[-1] + suffixes[-1], vocab, positions)
        return prefixes, suffixes

    def check(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.prompts_and_targets(tokenizer, model)

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        prefixes, suffixes = self.prompts_and_targets(tokenizer, model)
        generated = greedy_generate(
            model, prefixes, max(len(s) for s in suffixes), ctx.batch_size,
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, ctx.device,
            ctx.progress, f"verbatim {self.data.stem}",
        )
        return score_continuations(generated, suffixes, self.loose_threshold)
