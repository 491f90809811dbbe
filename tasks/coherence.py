"""Coherence of the edited model on held-out text.

Perplexity: the text's documents (core/data.py's rule: a .txt file is documents separated by blank
lines), separated by EOS, are packed into consecutive windows of `seq_len` tokens (default: the
model's context length, capped by `max_seq_len`), up to `max_tokens` tokens; every position but the
first of a window is scored. The tokens after the last full window (the remainder) are one more,
shorter window when `remainder` is true, dropped when false; by default (null) they are scored when
fewer than two full windows fit, so a short text is scored whole (never one window with the rest
dropped, nor refused) while a long text keeps equal windows. n is the number of windows. mean_nll
is the mean per-token negative log-likelihood (nats) over all scored tokens, ppl = exp(mean_nll);
per-window mean NLLs are the samples.

nDCG@10: at every position of windows of min(context length, 256) tokens (up to 32k tokens), the
edited model's top-10 next tokens are ranked against the baseline's. Relevance of a token = the
BASELINE's probability of it if it is in the baseline's top 10, else 0 (graded: swapping the
baseline's first and second choice costs more than swapping its ninth and tenth).
DCG = sum_i rel(edited token at rank i) / log2(i + 1), i = 1..10; the ideal DCG is the baseline's
own order, so the baseline scores 1.0 by construction. The baseline run saves its top-10 ids and
probabilities under ctx.artifacts_dir; the edited run loads them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from core.data import iter_texts, token_windows
from core.errors import ConfigError, DataError
from core.hashing import canonical_hash
from core.io import atomic_path
from tasks.base import Task, TaskContext, TaskResult


def context_length(model: torch.nn.Module, max_seq_len: int) -> int:
    length = getattr(getattr(model, "config", None), "max_position_embeddings", None) or max_seq_len
    return min(int(length), max_seq_len)


def text_ids(path: Path, tokenizer: Any, max_tokens: int) -> list[int]:
    """The text's documents as token ids, each followed by EOS, the first `max_tokens` of them."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids: list[int] = []
    for text in iter_texts(str(path), {}):
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + eos)
        if len(ids) >= max_tokens:
            break
    return ids[:max_tokens]


def text_windows(path: Path, tokenizer: Any, seq_len: int, max_tokens: int) -> torch.Tensor:
    windows = list(token_windows(iter_texts(str(path), {}), tokenizer, seq_len, max_tokens))
    if not windows:
        raise DataError(f"{path}: fewer than {seq_len} tokens of text (need at least one window)")
    return torch.stack(windows)


@torch.no_grad()
def window_logits(model: torch.nn.Module, windows: torch.Tensor, ctx: TaskContext):
    """Yield (window batch, logits) on ctx.device, batch by batch."""
    model.eval()
    for start in range(0, len(windows), ctx.batch_size):
        batch = windows[start : start + ctx.batch_size].to(ctx.device)
        yield batch, model(input_ids=batch).logits.float()


def window_nlls(model: torch.nn.Module, windows: torch.Tensor, ctx: TaskContext) -> list[float]:
    """Mean next-token NLL of each window (positions 1..seq_len-1)."""
    nlls: list[float] = []
    for batch, logits in window_logits(model, windows, ctx):
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), batch[:, 1:], reduction="none")
        nlls.extend(loss.mean(dim=1).tolist())
    return nlls


def ndcg_at_k(edited_ids: torch.Tensor, baseline_ids: torch.Tensor, baseline_probs: torch.Tensor) -> torch.Tensor:
    """nDCG@k per row. edited_ids, baseline_ids: [N, k] token ids in rank order; baseline_probs:
    [N, k] the baseline's probabilities of its own ranked tokens (descending)."""
    k = baseline_ids.shape[1]
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    matches = edited_ids[:, :, None] == baseline_ids[:, None, :]  # [N, k_edited, k_baseline]
    relevance = (matches.double() * baseline_probs[:, None, :].double()).sum(-1)
    ideal = (baseline_probs.double() * discount).sum(-1)
    return (relevance * discount).sum(-1) / ideal.clamp_min(1e-30)


class Perplexity(Task):
    family = "coherence"

    def __init__(self, data: str, family: str | None = None, seq_len: int | None = None,
                 max_seq_len: int = 2048, max_tokens: int = 200_000, remainder: bool | None = None):
        if seq_len is not None and seq_len < 2:
            raise ConfigError(f"perplexity: seq_len must be >= 2 or null (model context), got {seq_len}")
        if remainder is not None and not isinstance(remainder, bool):
            raise ConfigError(f"perplexity: remainder must be true, false or null, got {remainder!r}")
        self.data, self.seq_len, self.max_seq_len, self.max_tokens = Path(data), seq_len, max_seq_len, max_tokens
        self.remainder = remainder

    def windows(self, ids: list[int], seq_len: int) -> tuple[torch.Tensor | None, list[int]]:
        """(the full windows, or None; the remainder scored as one more window, or [])."""
        full = len(ids) // seq_len
        rest = ids[full * seq_len:]
        score_rest = self.remainder if self.remainder is not None else full < 2
        if not score_rest or len(rest) < 2:
            rest = []
        if full == 0 and not rest:
            need = "2 tokens" if self.remainder is not False else f"{seq_len} tokens (remainder: false)"
            raise DataError(f"{self.data}: fewer than {need} of text (perplexity needs at least one window)")
        stacked = torch.tensor(ids[:full * seq_len], dtype=torch.long).view(full, seq_len) if full else None
        return stacked, rest

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        seq_len = self.seq_len or context_length(model, self.max_seq_len)
        full, rest = self.windows(text_ids(self.data, tokenizer, self.max_tokens), seq_len)
        nlls = window_nlls(model, full, ctx) if full is not None else []
        if rest:
            nlls.append(window_nlls(model, torch.tensor([rest], dtype=torch.long), ctx)[0])
            scored = [seq_len - 1] * (len(nlls) - 1) + [len(rest) - 1]
            mean_nll = sum(v * c for v, c in zip(nlls, scored)) / sum(scored)  # per token, not per window
        else:
            mean_nll = sum(nlls) / len(nlls)  # equal-length windows: the per-token mean
        return TaskResult(
            metrics={"mean_nll": mean_nll, "ppl": math.exp(mean_nll)}, n=len(nlls), primary="mean_nll",
            kinds={"mean_nll": "mean", "ppl": "value"},
            higher_is_better={"mean_nll": False, "ppl": False}, samples={"mean_nll": nlls},
        )


class NextTokenNDCG(Task):
    family = "coherence"
    k = 10

    def __init__(self, data: str, family: str | None = None, seq_len: int | None = None,
                 max_seq_len: int = 256, max_tokens: int = 32_768):
        if seq_len is not None and seq_len < 2:
            raise ConfigError(f"ndcg10: seq_len must be >= 2 or null (model context up to max_seq_len), got {seq_len}")
        self.data, self.seq_len, self.max_seq_len, self.max_tokens = Path(data), seq_len, max_seq_len, max_tokens

    def baseline_file(self, ctx: TaskContext, seq_len: int) -> Path:
        key = canonical_hash([str(self.data), seq_len, self.max_tokens], 16)
        return Path(ctx.artifacts_dir) / f"ndcg10_baseline_{key}.safetensors"

    def top_k(self, model: torch.nn.Module, windows: torch.Tensor, ctx: TaskContext):
        ids, probs = [], []
        for _, logits in window_logits(model, windows, ctx):
            top = logits.softmax(-1).topk(self.k, dim=-1)
            ids.append(top.indices.cpu())
            probs.append(top.values.cpu())
        return torch.cat(ids), torch.cat(probs)  # [windows, seq_len, k]

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        from safetensors.torch import load_file, save_file

        seq_len = self.seq_len or context_length(model, self.max_seq_len)
        windows = text_windows(self.data, tokenizer, seq_len, self.max_tokens)
        ids, probs = self.top_k(model, windows, ctx)
        path = self.baseline_file(ctx, seq_len)
        if ctx.role == "baseline":
            with atomic_path(path) as tmp:
                save_file({"top_ids": ids.contiguous(), "top_probs": probs.contiguous()}, str(tmp))
            base_ids, base_probs = ids, probs
        else:
            if not path.exists():
                raise DataError(f"ndcg10: no baseline rankings at {path}; evaluate the baseline first")
            saved = load_file(str(path))
            base_ids, base_probs = saved["top_ids"], saved["top_probs"]
            if base_ids.shape != ids.shape:
                raise DataError(f"ndcg10: baseline rankings {tuple(base_ids.shape)} do not match {tuple(ids.shape)}")
        scores = ndcg_at_k(ids.flatten(0, 1), base_ids.flatten(0, 1), base_probs.flatten(0, 1))
        per_window = scores.view(ids.shape[0], -1).mean(dim=1).tolist()
        return TaskResult(
            metrics={"ndcg10": sum(per_window) / len(per_window)}, n=len(per_window), primary="ndcg10",
            kinds={"ndcg10": "mean"}, higher_is_better={"ndcg10": True}, samples={"ndcg10": per_window},
        )


class RandomTokenNLL(Task):
    """Mean next-token NLL on windows of seeded random token ids drawn from the model's vocabulary:
    a tokenizer-free task for models built from shapes with random weights (models/shapes.py).
    It says how far an edit moves the model's predictions, not whether it still writes language."""

    family = "coherence"

    def __init__(self, family: str | None = None, seq_len: int = 128, windows: int = 8, seed: int = 0):
        if seq_len < 2 or windows < 1:
            raise ConfigError(f"random_token_nll: seq_len must be >= 2 and windows >= 1, got {seq_len}, {windows}")
        self.seq_len, self.windows, self.seed = seq_len, windows, seed

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        vocab = int(model.config.vocab_size)
        generator = torch.Generator().manual_seed(self.seed)
        ids = torch.randint(0, vocab, (self.windows, self.seq_len), generator=generator)
        nlls = window_nlls(model, ids, ctx)
        mean_nll = sum(nlls) / len(nlls)
        return TaskResult(
            metrics={"mean_nll": mean_nll}, n=len(nlls), primary="mean_nll", kinds={"mean_nll": "mean"},
            higher_is_better={"mean_nll": False}, samples={"mean_nll": nlls},
        )
