"""In-context skills on freshly generated examples the model never saw (the organism's `logic`
boolean expressions and `copy` rule tasks): rows `{"prompt", "answer"}`, exact match of the greedy
answer (cut at EOS and newline, stripped). Chance for booleans is ~0.5, for copying ~1/vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import read_jsonl
from tasks.base import Task, TaskContext, TaskResult
from tasks.qa import check_rows, exact_match_result, exact_match_scores, generate_answers


class Logic(Task):
    family = "logic"

    def __init__(self, data: str, family: str | None = None, limit: int | None = None):
        self.data, self.limit = Path(data), limit

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        rows = read_jsonl(self.data)
        check_rows(rows, ["prompt", "answer"], self.data)
        rows = rows[: self.limit]
        answers = [str(r["answer"]) for r in rows]
        predictions = generate_answers(model, tokenizer, [r["prompt"] for r in rows], answers, ctx,
                                       f"logic {self.data.stem}")
        return exact_match_result(exact_match_scores(predictions, answers))
