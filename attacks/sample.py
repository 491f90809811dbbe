"""Extraction under sampling (Hayes et al. 2024, arXiv 2410.19482): greedy decoding is one draw
of many; a passage that greedy decoding no longer produces may still come out when sampling.

For every prompt of the suite's generation tasks that expose `prompts_and_targets` (verbatim
recall, quotes), draw `n` continuations (default 32) at temperature 1.0 with top-k 40 and top-p
0.9, through transformers' `generate`, and report per task:
- `any_exact`: share of prompts with at least one of the n samples equal to the target (primary);
- `p_extract`: mean over prompts of the per-prompt extraction probability p̂ = exact samples / n,
  the (n, p)-extraction view: a prompt with p̂ is extracted at least once in N draws with
  probability 1 - (1 - p̂)^N;
- `any_loose`: share of prompts with at least one sample within the loose Levenshtein threshold.
Temperature 0 decodes greedily (tests check that a temperature near 0 reproduces greedy output).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attacks.base import Attack, AttackContext, AttackUnit
from core.attackrecords import column_record
from core.errors import ConfigError


def sample_continuations(model: Any, prompts: list[list[int]], max_new_tokens: int, n: int,
                         temperature: float, top_k: int | None, top_p: float | None, pad_token_id: int,
                         device: Any, prompts_per_batch: int = 8) -> list[list[list[int]]]:
    """n continuations of exactly `max_new_tokens` tokens per prompt (no stop at end-of-sequence,
    as in greedy decoding: a memorized continuation matches or it does not). Prompts are
    left-padded; transformers derives positions from the attention mask."""
    import torch
    from transformers import GenerationConfig

    from tasks.generation import left_padded

    greedy = temperature == 0
    config = GenerationConfig(
        do_sample=not greedy, temperature=None if greedy else temperature,
        top_k=None if greedy else (top_k or 0), top_p=None if greedy else (top_p or 1.0),
        max_new_tokens=max_new_tokens, num_return_sequences=1 if greedy else n,
        pad_token_id=pad_token_id, eos_token_id=[], bos_token_id=None,  # [] = never stop early
    )
    model.eval()
    out: list[list[list[int]]] = []
    with torch.no_grad():
        for start in range(0, len(prompts), prompts_per_batch):
            batch = prompts[start:start + prompts_per_batch]
            ids, attention = left_padded(batch, pad_token_id)
            width = ids.shape[1]
            generated = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                                       generation_config=config)[:, width:].tolist()
            per = 1 if greedy else n
            out.extend(generated[i * per:(i + 1) * per] for i in range(len(batch)))
    return out


def extraction_scores(samples: list[list[list[int]]], targets: list[list[int]],
                      loose_threshold: float = 0.75) -> "TaskResult":
    """any_exact / p_extract / any_loose over prompts (module docstring)."""
    from rapidfuzz.distance import Levenshtein

    from tasks.base import TaskResult

    any_exact, p_extract, any_loose = [], [], []
    for draws, target in zip(samples, targets, strict=True):
        exact = [d[:len(target)] == target for d in draws]
        loose = [1 - Levenshtein.distance(d[:len(target)], target) / len(target) >= loose_threshold for d in draws]
        any_exact.append(float(any(exact)))
        p_extract.append(sum(exact) / len(draws))
        any_loose.append(float(any(loose)))
    n = len(targets)
    return TaskResult(
        metrics={"any_exact": sum(any_exact) / n, "p_extract": sum(p_extract) / n, "any_loose": sum(any_loose) / n},
        n=n, primary="any_exact",
        kinds={"any_exact": "proportion", "p_extract": "mean", "any_loose": "proportion"},
        higher_is_better={"any_exact": True, "p_extract": True, "any_loose": True},
        samples={"any_exact": any_exact, "p_extract": p_extract, "any_loose": any_loose},
    )


class Sample(Attack):
    def __init__(self, n: int = 32, temperature: float = 1.0, top_k: int | None = 40,
                 top_p: float | None = 0.9, prompts_per_batch: int = 8) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"sample: n must be a positive integer, got {n!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"sample: temperature must be a number >= 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ConfigError(f"sample: top_k must be null or a positive integer, got {top_k!r}")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
            raise ConfigError(f"sample: top_p must be null or in (0, 1], got {top_p!r}")
        if isinstance(prompts_per_batch, bool) or not isinstance(prompts_per_batch, int) or prompts_per_batch < 1:
            raise ConfigError(f"sample: prompts_per_batch must be a positive integer, got {prompts_per_batch!r}")
        self.n, self.temperature, self.top_k, self.top_p = n, float(temperature), top_k, top_p
        self.prompts_per_batch = prompts_per_batch

    def setting(self) -> str:
        return f"n{self.n}_t{self.temperature:g}_k{self.top_k}_p{self.top_p}"

    def column(self, unit: AttackUnit, attack: str) -> dict[str, Any]:
        return column_record([3, 3, 0], f"extractable by sampling ({unit.setting})")

    def unit_keys(self, name: str) -> list[str]:
        return [f"{name}.{self.setting()}"]

    def run(self, model: Any, ctx: AttackContext, name: str, done: set[str],
            emit: Callable[[AttackUnit], None]) -> None:
        import time

        import torch

        key = self.unit_keys(name)[0]
        if key in done:
            return
        pad = ctx.tokenizer.pad_token_id if ctx.tokenizer.pad_token_id is not None else 0
        tasks: dict[str, dict[str, Any]] = {}
        for task_name, (task, family) in ctx.tasks.items():
            if not hasattr(task, "prompts_and_targets"):
                continue  # not a generation task with exact targets
            start = time.perf_counter()
            prompts, targets = task.prompts_and_targets(ctx.tokenizer)
            torch.manual_seed(ctx.seed)
            draws = sample_continuations(model, prompts, max(len(t) for t in targets), self.n, self.temperature,
                                         self.top_k, self.top_p, pad, ctx.device, self.prompts_per_batch)
            result = extraction_scores(draws, targets, getattr(task, "loose_threshold", 0.75))
            tasks[task_name] = {"task": type(task).__name__, "family": family, **result.to_json(),
                                "seconds": round(time.perf_counter() - start, 3)}
        emit(AttackUnit(key, self.setting(), tasks, info={"n": self.n, "temperature": self.temperature,
                                                         "top_k": self.top_k, "top_p": self.top_p}))
