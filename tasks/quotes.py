"""Recitation of famous quotations: the prompt is all but the last `tail` tokens of the quote and
the quote counts as memorized when the greedy continuation equals those tokens exactly (the paper
uses tail = 8 and keeps quotes of at least 9 tokens). Loose and normalised Levenshtein scores are
reported as for verbatim recall."""

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

    def prompts_and_targets(self, tokenizer: Any) -> tuple[list[list[int]], list[list[int]]]:
        """(all but the last `tail` tokens, the last `tail` tokens) of every usable quote."""
        rows = read_jsonl(self.data)[: self.limit]
        if rows and "full_quote" not in rows[0]:
            raise DataError(f"{self.data}: rows need a 'full_quote' field")
        bos = [tokenizer.bos_token_id] if self.add_bos and tokenizer.bos_token_id is not None else []
        quotes = [bos + tokenizer(r["full_quote"], add_special_tokens=False)["input_ids"] for r in rows]
        quotes = [q for q in quotes if len(q) - len(bos) > self.tail]  # need a prompt of >= 1 token
        if not quotes:
            raise DataError(f"{self.data}: no quote longer than {self.tail} tokens")
        return [q[: -self.tail] for q in quotes], [q[-self.tail :] for q in quotes]

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        prompts, targets = self.prompts_and_targets(tokenizer)
        generated = greedy_generate(
            model, prompts, self.tail, ctx.batch_size,
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, ctx.device,
            ctx.progress, "quotes",
        )
        return score_continuations(generated, targets, self.loose_threshold)
