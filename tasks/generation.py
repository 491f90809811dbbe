"""Batched greedy decoding with a KV cache, shared by every generation task.

Prompts of different lengths are left-padded so that all of them end at the same position and the
next token of every row is read from the last column. Position ids are computed from the attention
mask so padding does not shift positions (the result equals decoding each prompt alone).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def model_limits(model: torch.nn.Module) -> tuple[int | None, int | None]:
    """(vocabulary size, maximum positions) of a model, None where it does not say."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    vocab = getattr(embeddings, "num_embeddings", None) or getattr(getattr(model, "config", None), "vocab_size", None)
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return vocab, positions


def _cache_keyword(model: torch.nn.Module, output: Any) -> str:
    """transformers 5 renamed the KV cache argument and output `past_key_values` -> `cache` (the
    old name warns, and goes in 5.40); older versions and plain modules only know `past_key_values`.
    The model's signature says which it takes; a wrapper that only passes **kwargs on (a PEFT
    model) is read through its first output instead."""
    parameters = inspect.signature(model.forward).parameters
    for keyword in ("cache", "past_key_values"):
        if keyword in parameters:
            return keyword
    return "cache" if getattr(output, "cache", None) is not None else "past_key_values"


@torch.no_grad()
def left_padded(prompts: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of prompts padded on the left, so every row's last token is the
    last position and generation continues all rows at once; on the CPU."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        attention[row, width - len(prompt):] = 1
    return ids, attention


def greedy_generate(
    model: torch.nn.Module,
    prompts: list[list[int]],
    max_new_tokens: int,
    batch_size: int,
    pad_token_id: int,
    device: torch.device | str,
    progress: Any = None,
    description: str = "generating",
) -> list[list[int]]:
    """Return exactly `max_new_tokens` greedily chosen token ids for each prompt (no early stop at
    end-of-sequence: a memorized continuation either matches or it does not)."""
    model.eval()
    results: list[list[int]] = []
    task = progress.add_task(description, total=len(prompts)) if progress is not None else None
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        input_ids, attention = left_padded(batch, pad_token_id)
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)

        out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        cache_keyword = _cache_keyword(model, out)
        next_ids = out.logits[:, -1].argmax(-1)
        generated = [next_ids]
        for _ in range(max_new_tokens - 1):
            attention = torch.cat([attention, attention.new_ones((len(batch), 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = model(
                input_ids=next_ids[:, None], attention_mask=attention, position_ids=positions,
                use_cache=True, **{cache_keyword: getattr(out, cache_keyword)},
            )
            next_ids = out.logits[:, -1].argmax(-1)
            generated.append(next_ids)
        results.extend(torch.stack(generated, dim=1).tolist())
        if task is not None:
            progress.advance(task, len(batch))
    if task is not None:
        progress.remove_task(task)
    return results
