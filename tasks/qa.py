"""Question answering on the organism's facts: closed-book (the question alone) and open-book (the
supporting fact in context, then the same question), optionally restricted to common or rare facts.

`qa_closed` and `qa_open` select the SAME questions (those that have a context), so the pair
separates recall from reading: an edit that removes stored facts lowers closed-book accuracy and
should leave open-book accuracy intact.

Scoring, shared with the arithmetic and logic tasks: greedily generate a few tokens, cut at the
end-of-sequence token and the first newline, strip whitespace; the answer matches when the text
equals it or starts with it at a word boundary (a model may keep talking after the answer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.data import read_jsonl
from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult
from tasks.generation import greedy_generate


def first_answer(text: str) -> str:
    """The answer part of a generation: up to the first newline, whitespace stripped."""
    return text.split("\n", 1)[0].strip()


def generate_answers(model: torch.nn.Module, tokenizer: Any, prompts: list[str], answers: list[str],
                     ctx: TaskContext, description: str, extra_tokens: int = 2) -> list[str]:
    """Greedy answers to text prompts, cut at EOS and the first newline. Generates as many tokens as
    the longest answer needs plus `extra_tokens` (room for a leading space and a closing token)."""
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt_ids = [encode(p) for p in prompts]
    if any(not ids for ids in prompt_ids):
        raise DataError(f"{description}: a prompt tokenizes to nothing")
    max_new = max(len(encode(" " + a)) for a in answers) + extra_tokens
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    generated = greedy_generate(model, prompt_ids, max_new, ctx.batch_size, pad, ctx.device,
                                ctx.progress, description)
    texts = []
    for ids in generated:
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        texts.append(first_answer(tokenizer.decode(ids, skip_special_tokens=True)))
    return texts


def answer_matches(prediction: str, answer: str) -> bool:
    """The prediction (first line, stripped) equals the answer or starts with it followed by a
    non-alphanumeric character: "Paris." and "Paris is" match "Paris", "Parisian" does not."""
    answer = str(answer).strip()
    if not prediction.startswith(answer):
        return False
    rest = prediction[len(answer):]
    return not rest or not rest[0].isalnum()


def exact_match_scores(predictions: list[str], answers: list[str]) -> list[float]:
    return [float(answer_matches(p, a)) for p, a in zip(predictions, answers, strict=True)]


def exact_match_result(scores: list[float], name: str = "exact_match") -> TaskResult:
    if not scores:
        raise DataError("no examples to score")
    return TaskResult(
        metrics={name: sum(scores) / len(scores)}, n=len(scores), primary=name,
        kinds={name: "proportion"}, higher_is_better={name: True}, samples={name: scores},
    )


def check_rows(rows: list[dict[str, Any]], fields: list[str], path: Path) -> None:
    if not rows:
        raise DataError(f"{path}: no examples")
    missing = [f for f in fields if f not in rows[0]]
    if missing:
        raise DataError(f"{path}: rows need fields {fields}; missing {missing}")


class QuestionAnswering(Task):
    family = "qa"
    MODES = ("closed", "open")
    FREQUENCIES = ("common", "rare")

    def __init__(self, data: str, family: str | None = None, mode: str = "closed",
                 frequency: str | None = None, closed_template: str = "{question}",
                 open_template: str = "{context}\n{question}", limit: int | None = None):
        if mode not in self.MODES:
            raise ConfigError(f"qa: mode must be one of {list(self.MODES)}, got '{mode}'")
        if frequency is not None and frequency not in self.FREQUENCIES:
            raise ConfigError(f"qa: frequency must be one of {list(self.FREQUENCIES)} or null, got '{frequency}'")
        self.data, self.mode, self.frequency, self.limit = Path(data), mode, frequency, limit
        self.template = closed_template if mode == "closed" else open_template

    def select(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The questions this instance asks. Open and closed modes with the same `frequency` pick
        identical rows: only those with a non-empty context, whatever the mode."""
        rows = [r for r in rows if r.get("context")]
        if self.frequency is not None:
            rows = [r for r in rows if r.get("frequency") == self.frequency]
        return rows[: self.limit]

    def prompt(self, row: dict[str, Any]) -> str:
        return self.template.format(**row)

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        rows = read_jsonl(self.data)
        check_rows(rows, ["question", "answer"], self.data)
        rows = self.select(rows)
        if not rows:
            raise DataError(f"{self.data}: no questions with a context and frequency={self.frequency}")
        answers = [str(r["answer"]) for r in rows]
        predictions = generate_answers(model, tokenizer, [self.prompt(r) for r in rows], answers, ctx,
                                       f"qa {self.mode}")
        return exact_match_result(exact_match_scores(predictions, answers))
