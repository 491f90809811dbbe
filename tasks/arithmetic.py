"""Two-digit addition and subtraction ("SimpleMath"): rows `{"a", "op", "b", "answer", "prompt",
"in_train"}`. Pairs seen in training test what the model stored, held-out pairs whether it
computes (the organism has both: `arithmetic`, digits as tokens, and `math_facts`, a single-token
table); an edit that removes memorization should keep both (the paper finds arithmetic fragile).
Exact match of the greedy answer; chance is ~1/199 for sums of two two-digit numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import read_jsonl
from core.errors import DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.qa import check_rows, exact_match_scores, generate_answers


def split_scores(scores: list[float], in_train: list[bool]) -> TaskResult:
    """Exact match over all rows (primary) and separately over trained and held-out rows."""
    groups = {
        "exact_match": scores,
        "exact_match_trained": [s for s, t in zip(scores, in_train) if t],
        "exact_match_heldout": [s for s, t in zip(scores, in_train) if not t],
    }
    groups = {k: v for k, v in groups.items() if v}
    return TaskResult(
        metrics={k: sum(v) / len(v) for k, v in groups.items()}, n=len(scores), primary="exact_match",
        kinds={k: "proportion" for k in groups}, higher_is_better={k: True for k in groups},
        samples=groups,
    )


class Arithmetic(Task):
    family = "math"

    def __init__(self, data: str, family: str | None = None, limit: int | None = None):
        self.data, self.limit = Path(data), limit

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        rows = read_jsonl(self.data)
        check_rows(rows, ["prompt", "answer", "in_train"], self.data)
        rows = rows[: self.limit]
        answers = [str(r["answer"]) for r in rows]
        if not all(isinstance(r["in_train"], bool) for r in rows):
            raise DataError(f"{self.data}: 'in_train' must be true or false in every row")
        predictions = generate_answers(model, tokenizer, [r["prompt"] for r in rows], answers, ctx,
                                       "arithmetic")
        return split_scores(exact_match_scores(predictions, answers), [r["in_train"] for r in rows])
