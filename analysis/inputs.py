"""Input sets for the spectrum analysis, read from a suite's task data: which token positions (or
which image token) of which inputs count, per task instance.

  verbatim, perturbed_recall   prefix + suffix; the positions that predict the suffix (the last
                               prefix position through the second-to-last suffix position)
  quotes                       the quote; the positions that predict its last `tail` tokens
  qa, arithmetic, logic        the prompt as the task asks it, then the answer; every position
  perplexity, ndcg10           windows of held-out text (analyze.seq_len tokens); every position
  mislabeled                   images of the task's subset; the CLS token (position 0)
Task types not listed (lm_eval) bring no inputs here; they are reported as skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from core.data import example_ids, iter_texts, read_jsonl, token_windows
from core.errors import DataError

# One batch: the model's keyword inputs, and a (batch, positions) bool mask of the layer-input rows
# that count, row b belonging to example b of the batch.
Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class InputSet:
    name: str
    family: str
    examples: int
    batches: Callable[[int], Iterator[Batch]]  # batch_size -> batches, examples in order


@dataclasses.dataclass
class TokenExample:
    ids: list[int]
    positions: list[int]  # indices into ids whose layer inputs count


def token_batches(examples: list[TokenExample], pad_id: int, batch_size: int) -> Iterator[Batch]:
    """Right-padded batches; with causal attention the padding never reaches a counted position."""
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        width = max(len(e.ids) for e in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        for row, e in enumerate(chunk):
            ids[row, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
            mask[row, e.positions] = True
        yield {"input_ids": ids}, mask


def suffix_example(prefix: list[int], suffix: list[int]) -> TokenExample:
    """Positions that predict the suffix: len(prefix) - 1 .. len(prefix) + len(suffix) - 2."""
    if not prefix or not suffix:
        raise DataError("a verbatim example needs a non-empty prefix and suffix")
    ids = prefix + suffix
    return TokenExample(ids, list(range(len(prefix) - 1, len(ids) - 1)))


def whole_example(ids: list[int]) -> TokenExample:
    return TokenExample(ids, list(range(len(ids))))


def lm_examples(task_type: str, entry: dict[str, Any], task: Any, tokenizer: Any, path: Path,
                seq_len: int, max_tokens: int) -> list[TokenExample] | None:
    """The examples of one task instance, or None for a task type with no inputs here."""
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    limit = entry.get("limit")
    if task_type in ("verbatim", "perturbed_recall"):
        rows = read_jsonl(path)[:limit]
        return [suffix_example(example_ids(r, "prefix", tokenizer, path), example_ids(r, "suffix", tokenizer, path))
                for r in rows]
    if task_type == "quotes":
        tail = int(entry.get("tail", 8))
        out = []
        for r in read_jsonl(path)[:limit]:
            ids = encode(r["full_quote"])
            if len(ids) > tail:
                out.append(TokenExample(ids, list(range(len(ids) - tail - 1, len(ids) - 1))))
        return out
    if task_type == "qa":
        rows = task.select(read_jsonl(path))  # the questions this instance asks, as it asks them
        return [whole_example(encode(task.prompt(r) + " " + str(r["answer"]))) for r in rows]
    if task_type in ("arithmetic", "logic"):
        return [whole_example(encode(r["prompt"] + " " + str(r["answer"]))) for r in read_jsonl(path)[:limit]]
    if task_type in ("perplexity", "ndcg10"):
        return [whole_example(w.tolist()) for w in token_windows(iter_texts(str(path), {}), tokenizer, seq_len, max_tokens)]
    return None


def image_batches_for(path: Path, subset: str, limit: int | None, seed: int, dtype: torch.dtype
                      ) -> Callable[[int], Iterator[Batch]]:
    def batches(batch_size: int) -> Iterator[Batch]:
        from core.images import image_batches

        for pixels, _, _ in image_batches(path, subset, batch_size, limit, seed):
            yield {"pixel_values": pixels.to(dtype)}, None  # type: ignore[misc]  # CLS: see collect
    return batches


def suite_input_sets(tasks: dict[str, tuple[Any, str]], suite: dict[str, dict[str, Any]], tokenizer: Any,
                     model_kind: str, *, seq_len: int, max_tokens: int, image_limit: int | None, seed: int,
                     dtype: torch.dtype) -> tuple[dict[str, InputSet], list[str]]:
    """Task instance name -> its input set, and the names of instances that bring none."""
    sets: dict[str, InputSet] = {}
    skipped: list[str] = []
    for name, (task, family) in tasks.items():
        entry = suite[name]
        task_type = entry["task"]
        path = Path(getattr(task, "data", "")) if getattr(task, "data", None) is not None else None
        if model_kind == "image_classifier":
            if task_type != "mislabeled" or path is None:
                skipped.append(name)
                continue
            limit = entry.get("limit") if entry.get("limit") is not None else image_limit
            if image_limit is not None and limit is not None:
                limit = min(limit, image_limit)
            count = _count_images(path, task.subset, limit, seed)
            sets[name] = InputSet(name, family, count, image_batches_for(path, task.subset, limit, seed, dtype))
            continue
        if path is None:
            skipped.append(name)
            continue
        examples = lm_examples(task_type, entry, task, tokenizer, path, seq_len, max_tokens)
        if examples is None:
            skipped.append(name)
            continue
        examples = [e for e in examples if e.positions]
        if not examples:
            raise DataError(f"task '{name}' ({path}): no examples with positions to analyse")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        sets[name] = InputSet(name, family, len(examples),
                              lambda batch_size, ex=examples, pad=pad: token_batches(ex, pad, batch_size))
    return sets, skipped


def _count_images(path: Path, subset: str, limit: int | None, seed: int) -> int:
    from core.images import image_batches

    return sum(len(p) for p, _, _ in image_batches(path, subset, 256, limit, seed))
