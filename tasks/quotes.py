"""Recitation of famous quotations: the prompt is all but the last `tail` tokens of the quote and
the quote counts as memorized when the greedy continuation equals those tokens exactly (the paper
uses tail = 8 and keeps quotes of at least 9 tokens). Loose and normalised Levenshtein scores are
reported as for verbatim recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import check_token_ids, read_jsonl_lines
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.generation import greedy_generate, model_limits
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

    def quotes(self, tokenizer: Any, model: torch.nn.Module | None = None) -> list[list[int]]:
        """Token ids of the quotes long enough to score; with `model`, each checked against its
        positions. A bad row is a DataError naming the file and line."""
        vocab, positions = model_limits(model) if model is not None else (None, None)
        bos = [tokenizer.bos_token_id] if self.add_bos and tokenizer.bos_token_id is not None else []
        quotes = []
        for lineno, row in read_jsonl_lines(self.data)[: self.limit]:
            if not isinstance(row.get("full_quote"), str):
                raise DataError(f"{self.data}:{lineno}: rows need a 'full_quote' string field")
            quote = bos + tokenizer(row["full_quote"], add_special_tokens=False)["input_ids"]
            check_token_ids(f"{self.data}:{lineno}", quote, vocab, positions, what="the quote")
            if len(quote) - len(bos) > self.tail:  # need a prompt of >= 1 token
                quotes.append(quote)
        if not quotes:
            raise DataError(f"{self.data}: no quote longer than {self.tail} tokens")
        return quotes

    def check(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.quotes(tokenizer, model)

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        quotes = self.quotes(tokenizer, model)
        generated = greedy_generate(
            model, [q[: -self.tail] for q in quotes], self.tail, ctx.batch_size,
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, ctx.device,
            ctx.progress, "quotes",
        )
        return score_continuations(generated, [q[-self.tail :] for q in quotes], self.loose_threshold)
