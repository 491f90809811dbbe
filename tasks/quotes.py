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

from core.data import check_token_ids, read_jsonl_lines
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult, TaskSkipped
from tasks.generation import greedy_generate, model_limits
from tasks.verbatim import score_continuations


class QuoteRecall(Task):
    family = "quotes"

    def __init__(self, data: str | None, family: str | None = None, tail: int = 8, add_bos: bool = False,
                 loose_threshold: float = 0.75, limit: int | None = None):
        if tail < 1:
            raise ConfigError(f"quotes: tail must be >= 1, got {tail}")
        # None: a suite that offers the task to users who may have no quotes file (own_model); skipped.
        self.data = Path(data) if data is not None else None
        self.tail, self.add_bos = tail, add_bos
        self.loose_threshold, self.limit = loose_threshold, limit

    def prompts_and_targets(self, tokenizer: Any, model: torch.nn.Module | None = None
                            ) -> tuple[list[list[int]], list[list[int]]]:
        """(prompt ids, target ids) of each quote long enough to score; with `model`, each checked
        against its vocabulary and positions. A bad row is a DataError naming the file and line."""
        vocab, positions = model_limits(model) if model is not None else (None, None)
        bos = [tokenizer.bos_token_id] if self.add_bos and tokenizer.bos_token_id is not None else []
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        pairs = []
        for lineno, row in read_jsonl_lines(self.data)[: self.limit]:
            if isinstance(row.get("prefix"), str) and isinstance(row.get("target_suffix"), str):
                prompt, target = encode(row["prefix"]), encode(row["target_suffix"])  # the authors' split
                if not (prompt and target):
                    continue
            elif isinstance(row.get("full_quote"), str):
                ids = encode(row["full_quote"])
                if len(ids) <= self.tail:  # need a prompt of >= 1 token
                    continue
                prompt, target = ids[: -self.tail], ids[-self.tail:]
            else:
                raise DataError(f"{self.data}:{lineno}: rows need a 'full_quote' string, or 'prefix' and "
                                f"'target_suffix' strings; this one has {sorted(row)}")
            check_token_ids(f"{self.data}:{lineno}", bos + prompt + target, vocab, positions, what="the quote")
            pairs.append((bos + prompt, target))
        if not pairs:
            raise DataError(f"{self.data}: no quote longer than {self.tail} tokens (or with a non-empty "
                            "prefix and target_suffix)")
        return [p for p, _ in pairs], [t for _, t in pairs]

    def check(self, model: torch.nn.Module, tokenizer: Any) -> None:
        if self.data is not None:
            self.prompts_and_targets(tokenizer, model)

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        if self.data is None:
            raise TaskSkipped("quotes: no quotes file; set suite.tasks.quotes.data=<file.jsonl> to score "
                              "quotation recall")
        prompts, targets = self.prompts_and_targets(tokenizer, model)
        generated = greedy_generate(
            model, prompts, max(len(t) for t in targets), ctx.batch_size,
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, ctx.device,
            ctx.progress, "quotes",
        )
        return score_continuations(generated, targets, self.loose_threshold)
