"""Membership inference, privacy leakage and extraction on memorized passages (issue 30).

Members are memorized passages (the verbatim files: {prefix, suffix} rows), nonmembers are
never-trained passages of the same form (e.g. the organism's verbatim_control). ONE teacher-forced
forward pass over prefix + suffix per passage gives every score (formulas: tasks/mia.py):
  auc_loss, auc_zlib, auc_min_k, auc_min_k_pp  - ROC AUC of members against nonmembers, each with a
      stratified bootstrap interval; 1 = members told apart perfectly, 0.5 = chance. The attacks
      score the whole passage (every token after the first), as MUSE's PrivLeak does.
  auc_reference  - the loss minus the UNEDITED model's loss (saved by the baseline evaluation in
      ctx.artifacts_dir; at the baseline it is the model itself, so 0.5 by construction; absent
      where no baseline losses are at hand, e.g. inside attacks).
  privleak       - MUSE's PrivLeak (%) of the Min-K% AUC against a `reference` model that never saw
      the members (a save_pretrained folder); without one, against AUC 0.5 (open-unlearning's
      default `ref_value`). info["privleak_reference"] says which. 0 = as private as the reference,
      negative = leaks.
  extraction_strength, exact_memorization - over the members' suffix tokens given the prefix
      (open-unlearning, on MUSE's verbmem prompts and continuations); per-member samples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.errors import ConfigError, DataError
from core.hashing import canonical_hash
from core.io import atomic_write_json, read_json
from tasks import mia
from tasks.base import Task, TaskContext, TaskResult, TaskSkipped
from tasks.verbatim import VerbatimRecall

ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")
PRIVLEAK_ATTACK = "min_k"  # MUSE's PrivLeak key is forget_holdout_Min-40%; open-unlearning's privleak uses mia_min_k


def passage_stats(model: Any, passages: list[list[int]], batch_size: int, device: Any, progress: Any = None,
                  description: str = "membership") -> list[dict[str, np.ndarray]]:
    """Per passage, for every position t >= 1 (teacher forced, right-padded batches): the true
    token's log-prob `logprob`, the vocabulary mean `mu` and variance `variance` of log p, and
    whether the greedy prediction is the true token (`correct`)."""
    import torch

    model.eval()
    out: list[dict[str, np.ndarray]] = []
    task = progress.add_task(description, total=len(passages)) if progress is not None else None
    with torch.no_grad():
        for start in range(0, len(passages), batch_size):
            batch = passages[start : start + batch_size]
            width = max(len(p) for p in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, passage in enumerate(batch):
                ids[row, : len(passage)] = torch.tensor(passage)
                attention[row, : len(passage)] = 1
            ids, attention = ids.to(device), attention.to(device)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=attention).logits[:, :-1].float(), -1)
            target = ids[:, 1:]
            token = logp.gather(-1, target[..., None]).squeeze(-1)
            p = logp.exp()
            mu = torch.where(p > 0, p * logp, 0).sum(-1)
            variance = torch.where(p > 0, p * logp.square(), 0).sum(-1) - mu.square()
            correct = logp.argmax(-1) == target
            stats = [t.cpu().numpy() for t in (token.double(), mu.double(), variance.double(), correct)]
            for row, passage in enumerate(batch):
                n = len(passage) - 1
                out.append(dict(zip(("logprob", "mu", "variance", "correct"), (s[row, :n] for s in stats))))
            if task is not None:
                progress.advance(task, len(batch))
    if task is not None:
        progress.remove_task(task)
    return out


def attack_scores(stats: dict[str, np.ndarray], text: str, k: float) -> dict[str, float]:
    """Every reference-free attack's score of one passage (lower = more member-like)."""
    loss = mia.loss_score(stats["logprob"])
    return {"loss": loss, "zlib": mia.zlib_score(loss, text), "min_k": mia.min_k_score(stats["logprob"], k),
            "min_k_pp": mia.min_k_plus_plus_score(stats["logprob"], stats["mu"], stats["variance"], k)}


def _refs(value: str | list[str], key: str) -> list[Path]:
    refs = [value] if isinstance(value, (str, os.PathLike)) else list(value or [])
    if not refs or not all(isinstance(r, (str, os.PathLike)) for r in refs):
        raise ConfigError(f"membership: {key} must be a data file or a list of them, got {value!r}")
    return [Path(r) for r in refs]


class MembershipInference(Task):
    family = "membership"
    # Keys the pipeline resolves like `data` (model:<name> references or paths).
    data_keys: ClassVar[tuple[str, ...]] = ("data", "members", "nonmembers", "reference")

    def __init__(self, members: str | list[str] | None = None, nonmembers: str | list[str] | None = None,
                 family: str | None = None, data: str | None = None, k: float = mia.DEFAULT_K,
                 reference: str | None = None, resamples: int = 1000, level: float = 0.95,
                 limit: int | None = None):
        # `data` is the members under the name every other task uses (the organism's suite entries
        # carry one data file each); kept as `members` only, so attacks that match tasks by their
        # `data` file (relearning's forget half) never take this task for a verbatim one.
        if (members is None) == (data is None):
            raise ConfigError("membership: give the memorized passages as `members` (or `data`), once")
        members = members if members is not None else data
        if not 0 < k <= 1:
            raise ConfigError(f"membership: k must be in (0, 1], got {k}")
        if not 0 < level < 1 or int(resamples) < 1:
            raise ConfigError(f"membership: level must be in (0, 1) and resamples >= 1, got {level}, {resamples}")
        self.members = _refs(members, "members")
        # None: a suite that offers the task to users who may have no never-trained passages; skipped.
        self.nonmembers = _refs(nonmembers, "nonmembers") if nonmembers is not None else None
        self.reference = Path(reference) if reference else None
        self.k, self.resamples, self.level, self.limit = float(k), int(resamples), float(level), limit

    def passages(self, files: list[Path], tokenizer: Any, model: Any = None) -> tuple[list[list[int]], list[int]]:
        """(prefix + suffix ids, prefix length) of every row of `files`, checked like verbatim's."""
        passages, prefix_lengths = [], []
        for path in files:
            prefixes, suffixes = VerbatimRecall(str(path), limit=self.limit).prompts_and_targets(tokenizer, model)
            passages += [p + s for p, s in zip(prefixes, suffixes)]
            prefix_lengths += [len(p) for p in prefixes]
        if any(len(p) < 2 for p in passages):
            raise DataError(f"membership: every passage in {', '.join(map(str, files))} needs >= 2 tokens")
        return passages, prefix_lengths

    def check(self, model: Any, tokenizer: Any) -> None:
        if self.nonmembers is None:
            return
        self.passages(self.members, tokenizer, model)
        self.passages(self.nonmembers, tokenizer, model)
        if self.reference is not None and not any(self.reference.glob("*.safetensors")):
            raise DataError(f"membership: reference {self.reference} is not a save_pretrained folder with "
                            "safetensors weights (a model that never saw the members)")

    def evaluate(self, model: Any, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        if self.nonmembers is None:
            raise TaskSkipped("membership: no nonmembers (never-trained passages of the members' form); "
                              "set suite.tasks.membership.nonmembers=<file.jsonl>")
        members, member_prefix = self.passages(self.members, tokenizer, model)
        nonmembers, _ = self.passages(self.nonmembers, tokenizer, model)
        stats = passage_stats(model, members + nonmembers, ctx.batch_size, ctx.device, ctx.progress)
        scores = self.all_scores(stats, members + nonmembers, tokenizer)
        key = canonical_hash([members, nonmembers, self.k], 16)
        baseline_file = Path(ctx.artifacts_dir) / f"membership_baseline_{key}.json"
        if ctx.role == "baseline":
            atomic_write_json(baseline_file, {"loss": scores["loss"]})
        base = (read_json(baseline_file) or {}).get("loss")
        if isinstance(base, list) and len(base) == len(scores["loss"]):
            scores["reference"] = [mia.reference_score(a, b) for a, b in zip(scores["loss"], base, strict=True)]
        retrain = self.retrain_scores(members + nonmembers, ctx, key)
        correct = [s["correct"][p - 1 :] for s, p in zip(stats, member_prefix)]
        return self.result(scores, len(members), retrain, correct)

    def all_scores(self, stats: list[dict[str, np.ndarray]], passages: list[list[int]], tokenizer: Any
                   ) -> dict[str, list[float]]:
        """Attack -> score of every passage (members first)."""
        texts = [tokenizer.decode(p) for p in passages]  # zlib compresses the scored text
        per_passage = [attack_scores(s, t, self.k) for s, t in zip(stats, texts)]
        return {a: [p[a] for p in per_passage] for a in ATTACKS}

    def retrain_scores(self, passages: list[list[int]], ctx: TaskContext, key: str) -> list[float] | None:
        """The reference model's Min-K% scores of every passage, cached in ctx.artifacts_dir by
        the reference folder and the passages; None without a reference."""
        if self.reference is None:
            return None
        path = self.reference.resolve()
        weights = sorted((w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in path.glob("*.safetensors"))
        cache = Path(ctx.artifacts_dir) / f"membership_reference_{canonical_hash([str(path), weights, key], 16)}.json"
        cached = (read_json(cache) or {}).get("min_k")
        if isinstance(cached, list) and len(cached) == len(passages):
            return cached
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM

        try:
            reference = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True,
                                                             trust_remote_code=False).to(ctx.device)
        except (OSError, ValueError, SafetensorError) as e:
            raise DataError(f"membership: cannot load the reference model {path}: {str(e).splitlines()[0]}") from None
        vocab = reference.get_input_embeddings().num_embeddings
        if max(max(p) for p in passages) >= vocab:
            raise DataError(f"membership: reference {path} has {vocab} tokens, fewer than the passages use")
        stats = passage_stats(reference, passages, ctx.batch_size, ctx.device, ctx.progress, "membership reference")
        del reference
        values = [mia.min_k_score(s["logprob"], self.k) for s in stats]
        atomic_write_json(cache, {"min_k": values, "reference": str(path)})
        return values

    def result(self, scores: dict[str, list[float]], n_members: int, retrain: list[float] | None,
               correct: list[np.ndarray]) -> TaskResult:
        """The TaskResult of the attacks' scores (members first), the reference model's Min-K%
        scores (or None) and the members' suffix-token correctness."""
        boot = {"resamples": self.resamples, "level": self.level, "seed": 0}
        metrics: dict[str, float] = {}
        intervals: dict[str, list[float]] = {}
        for attack, values in scores.items():
            m, n = values[:n_members], values[n_members:]
            metrics[f"auc_{attack}"] = mia.auc(m, n)
            intervals[f"auc_{attack}"] = list(mia.auc_interval(m, n, **boot))
        m, n = scores[PRIVLEAK_ATTACK][:n_members], scores[PRIVLEAK_ATTACK][n_members:]
        rm, rn = (retrain[:n_members], retrain[n_members:]) if retrain is not None else (None, None)
        retrain_auc = mia.auc(rm, rn) if rm is not None else 0.5
        leak = mia.privleak(metrics[f"auc_{PRIVLEAK_ATTACK}"], retrain_auc)
        if not np.isnan(leak):  # NaN only when the reference itself tells members apart perfectly
            metrics["privleak"] = leak
            intervals["privleak"] = list(mia.privleak_interval(m, n, rm, rn, **boot))
        metrics["retrain_auc"] = retrain_auc
        es = [mia.extraction_strength(c) for c in correct]
        em = [mia.exact_memorization(c) for c in correct]
        metrics["extraction_strength"], metrics["exact_memorization"] = float(np.mean(es)), float(np.mean(em))
        names = list(metrics)
        info = {
            "members": n_members, "nonmembers": len(scores["loss"]) - n_members, "k": self.k,
            "member_files": [str(p) for p in self.members], "nonmember_files": [str(p) for p in self.nonmembers],
            "auc": "P(nonmember score > member score) + ties/2: 1 = members told apart, 0.5 = chance",
            "privleak": "MUSE, %: ((1-auc_min_k) - (1-retrain_auc)) / (1-retrain_auc) x 100; 0 = as the "
                        "reference, negative = leaks",
            "privleak_reference": (f"retrained model {self.reference}" if retrain is not None else
                                   "none: retrain AUC 0.5 (open-unlearning's default ref_value)"),
            "reference_attack": ("loss minus the unedited model's loss" if "reference" in scores else
                                 "not computed: no baseline losses in this evaluation's artifacts"),
            "bootstrap": {**boot, "stratified": True, "interval": "percentile"},
        }
        return TaskResult(
            metrics=metrics, n=n_members, primary=f"auc_{PRIVLEAK_ATTACK}",
            kinds={name: ("mean" if name in ("extraction_strength", "exact_memorization") else "value")
                   for name in names},
            # An AUC of 0.5 (privleak 0) is the goal; lower membership AUC is better for an edit.
            higher_is_better={name: name == "privleak" for name in names},
            samples={"extraction_strength": es, "exact_memorization": em},
            intervals=intervals, info=info,
        )
