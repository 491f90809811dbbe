"""Relearning: fine-tune a copy of the model for k steps and score it again (Hu et al. 2024,
arXiv 2406.13356; Łucki et al. 2024, arXiv 2409.18025: a few steps on related or even unrelated
data bring "unlearned" content back).

One training trajectory per data source, scored at every k in `steps` (default 10, 50, 200), so
the k = 50 checkpoint is the k = 10 one trained 40 steps more. Data sources:
- `forget_half`: a seeded half of the forget set (full passages). The forget task's score is split
  into the trained half (`<task>[trained]`) and the other half (`<task>[heldout]`); the validation
  split was never trained on by anyone.
- `retain`: the model's retain / general text (no memorized content at all).
- `related`: text on the same topic as the passages but not the passages; `related_data` names it
  (organism: `model:verbatim_control`, never-trained passages drawn from the same rare vocabulary
  by the same generator). A scoring task that reads the same file is reported as `<task>[trained]`.
  A model that brings no such file gets the unit recorded as skipped, with the reason.

Training reuses methods/_finetune.py (AdamW, clipped, next-token NLL over every token).
"""

from __future__ import annotations

import random
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attacks.base import Attack, AttackContext, AttackUnit, copy_model, subset_entry
from core.attackrecords import column_record
from core.errors import ConfigError, DataError

SOURCES = ("forget_half", "retain", "related")


class Relearn(Attack):
    def __init__(self, steps: list[int] = (10, 50, 200), data: list[str] = SOURCES,
                 related_data: str | None = None, lr: float = 4e-4, batch_size: int = 8,
                 max_grad_norm: float | None = 1.0, params: str = "all") -> None:
        from methods._finetune import check_positive

        steps = list(steps)
        if not steps or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in steps):
            raise ConfigError(f"relearn: steps must be a non-empty list of positive integers, got {steps!r}")
        unknown = [d for d in data if d not in SOURCES]
        if not data or unknown:
            raise ConfigError(f"relearn: data {list(data)!r} is not valid; choose from {', '.join(SOURCES)}")
        check_positive("relearn: lr", lr)
        check_positive("relearn: batch_size", batch_size, integer=True)
        if max_grad_norm is not None:
            check_positive("relearn: max_grad_norm", max_grad_norm)
        if params not in ("all", "mlp"):
            raise ConfigError(f"relearn: params must be 'all' or 'mlp', got {params!r}")
        self.steps, self.data, self.related_data = sorted(set(steps)), list(data), related_data
        self.lr, self.batch_size, self.max_grad_norm, self.params = lr, batch_size, max_grad_norm, params

    def column(self, unit: AttackUnit, attack: str) -> dict[str, Any]:
        """First among the attacks; by data source (SOURCES' order), then steps."""
        steps = unit.steps or 0
        return column_record([1, SOURCES.index(unit.setting) if unit.setting in SOURCES else 3, steps],
                             f"after relearn {unit.setting} k={steps}")

    def unit_keys(self, name: str) -> list[str]:
        return [f"{name}.{source}.k{k}" for source in self.data for k in self.steps]

    def training_set(self, source: str, ctx: AttackContext) -> tuple[list[list[int]], str | None, list[int]]:
        """(token id lists to train on, scoring task that reads the same file or None, the indices
        of that task's examples trained on)."""
        if source == "retain":
            return ctx.sources.retain(), None, []
        if source == "forget_half":
            forget = ctx.sources.forget()
            order = list(range(len(forget)))
            random.Random(ctx.seed).shuffle(order)
            trained = sorted(order[: len(order) // 2])
            if not trained:
                raise DataError("relearn: the forget set has fewer than 2 examples; cannot split it in halves")
            return [forget[i] for i in trained], ctx.forget_task, trained
        return self.related_set(ctx)

    def related_set(self, ctx: AttackContext) -> tuple[list[list[int]], str | None, list[int]]:
        from core.data import example_ids, iter_texts, read_jsonl, resolve_data_ref, token_windows

        if not self.related_data:
            raise DataError("no related_data set (text on the passages' topic without the passages)")
        path = resolve_data_ref(self.related_data, ctx.data)
        if path.suffix == ".jsonl":
            rows = read_jsonl(path)
            examples = [example_ids(r, "prefix", ctx.tokenizer, path) + example_ids(r, "suffix", ctx.tokenizer, path)
                        for r in rows]
        else:
            examples = [w.tolist() for w in token_windows(iter_texts(self.related_data, ctx.data), ctx.tokenizer, 128, 65536)]
        same = next((name for name, (task, _) in ctx.tasks.items()
                     if getattr(task, "data", None) is not None and Path(task.data) == path), None)
        return examples, same, list(range(len(examples))) if same else []

    def run(self, model: Any, ctx: AttackContext, name: str, done: set[str],
            emit: Callable[[AttackUnit], None]) -> None:
        from methods._finetune import finetune, mean_nll

        for source in self.data:
            keys = {k: f"{name}.{source}.k{k}" for k in self.steps}
            if all(key in done for key in keys.values()):
                continue
            try:
                examples, trained_task, trained_idx = self.training_set(source, ctx)
            except (DataError, ConfigError) as e:  # e.g. a model without related text: say so, go on
                for k, key in keys.items():
                    if key not in done:
                        emit(AttackUnit(key, source, {}, steps=k, info={"skipped": str(e)}))
                continue
            clone = copy_model(model)
            clone.to(ctx.device)

            def checkpoint(step: int) -> None:
                if step in keys and keys[step] not in done:
                    tasks = split_trained(ctx.score(clone), trained_task, trained_idx)
                    clone.train()
                    emit(AttackUnit(keys[step], source, tasks, steps=step,
                                    info={"train_examples": len(examples), "lr": self.lr}))

            # finetune() trains on ctx.forget(); hand it this source's examples under that name.
            train_ctx = types.SimpleNamespace(seed=ctx.seed, progress=ctx.progress, forget=lambda: examples)
            steps_per_epoch = -(-len(examples) // self.batch_size)
            finetune(clone, train_ctx, loss_fn=lambda batch, step: mean_nll(clone, batch, 0, ctx.device),
                     params=self.params, layers=None, matrices=("gate", "up", "down"), lr=self.lr,
                     epochs=-(-max(self.steps) // steps_per_epoch), batch_size=self.batch_size,
                     max_grad_norm=self.max_grad_norm, description=f"relearn {source}",
                     max_steps=max(self.steps), on_step=checkpoint)
            del clone


def split_trained(tasks: dict[str, dict[str, Any]], trained_task: str | None,
                  trained_idx: list[int]) -> dict[str, dict[str, Any]]:
    """Replace the task whose examples were (partly) trained on by `<task>[trained]` and, when
    some were not, `<task>[heldout]`."""
    if trained_task is None or trained_task not in tasks:
        return tasks
    out = {k: v for k, v in tasks.items() if k != trained_task}
    entry = tasks[trained_task]
    trained = set(trained_idx)
    heldout = [i for i in range(entry["n"]) if i not in trained]
    for suffix, idx in (("trained", sorted(trained)), ("heldout", heldout)):
        part = subset_entry(entry, [i for i in idx if i < entry["n"]])
        if part is not None:
            out[f"{trained_task}[{suffix}]"] = part
    return out
