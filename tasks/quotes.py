"""Recitation of famous quotations: the model is prompted with the start of a quote and the quote
counts as memorized when the greedy continuation equals the rest exactly. Loose and normalised
Levenshtein scores are reported as for verbatim recall.

Where the split comes from, per row:
- `prefix` and `target_suffix` (the paper authors' files: a character-level split): the prompt is
  the tokenized `prefix`, the target the tokenized `target_suffix` (each tokenized on its own,
  without special tokens), whatever `tail` says;
- otherwise `full_quote`: the prompt is all but the last `tail` tokens, the target those tokens
  (the paper uses tail = 8 and keeps quotes of at least 9 tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import read_jsonl
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.generation import greedy_generate
from tasks.verbatim import score_continuations


class QuoteRecall(Task):
    family = "quotes"

    def __init__(self, data: str, family: str | None = None, tail: int = 8, add_bos: bool = False,
                 loose_threshold: float = 0.75, limit: int | None = None):
        if tail < 1:
            raise ConfigError(f"quotes: tail must be >= 1, got {tail}")
        self.data = Path(data)
        self.tail, self.add_bos = tail, add_bos
        self.loose_threshold, self.limit = loose_threshold, limit

    def split(self, row: dict[str, Any], tokenizer: Any, bos: list[int]) -> tuple[list[int], list[int]] | None:
        """(prompt ids, target ids) of one row, or None when the quote is too short to split."""
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        if "prefix" in row and "target_suffix" in row:  # the authors' given split
            prompt, target = encode(row["prefix"]), encode(row["target_suffix"])
            return (bos + prompt, target) if prompt and target else None
        ids = encode(row["full_quote"])
        if len(ids) <= self.tail:  # need a prompt of >= 1 token
            return None
        return bos + ids[: -self.tail], ids[-self.tail:]

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        rows = read_jsonl(self.data)[: self.limit]
        for i, row in enumerate(rows):
            if "full_quote" not in row and not ("prefix" in row and "target_suffix" in row):
                raise DataError(f"{self.data}: row {i + 1} needs 'full_quote' or both 'prefix' and "
                                f"'target_suffix'; it has {sorted(row)}")
        bos = [tokenizer.bos_token_id] if self.add_bos and tokenizer.bos_token_id is not None else []
        pairs = [p for p in (self.split(r, tokenizer, bos) for r in rows) if p is not None]
        if not pairs:
            raise DataError(f"{self.data}: no quote longer than {self.tail} tokens (or with a non-empty "
                            "prefix and target_suffix)")
        prompts, targets = [p for p, _ in pairs], [t for _, t in pairs]
        generated = greedy_generate(
            model, prompts, max(len(t) for t in targets), ctx.batch_size,
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, ctx.device,
            ctx.progress, "quotes",
        )
        return score_continuations(generated, targets, self.loose_threshold)
