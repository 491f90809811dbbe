"""The organism's check targets and how they are measured: the same task code the benchmark uses.
The build measures them during training (its learning curve); `python -m models.organism.check`
prints them for the default organism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.organism.families import Evaluation, check_targets

# Check name -> the family evaluation it measures (with its goal); from the family registry.
TARGETS: dict[str, Evaluation] = check_targets()


def check_names(names: list[str] | None) -> None:
    """Every name is a check target (`train.quick_check.names` is checked before training)."""
    from core.errors import ConfigError, did_you_mean

    for name in names or []:
        if name not in TARGETS:
            raise ConfigError(f"unknown organism check '{name}'{did_you_mean(name, list(TARGETS))}; "
                              f"valid: {', '.join(TARGETS)}")


def measure(model: torch.nn.Module, tokenizer: Any, data_dir: Path, limit: int | None = None,
            names: list[str] | None = None, batch_size: int = 64) -> dict[str, float]:
    """Each target's metric (its task's primary one, strict recall / exact match, unless the target
    names another), on up to `limit` examples."""
    import tempfile

    from core.registry import load_class
    from tasks.base import Task, TaskContext

    check_names(names)
    ctx = TaskContext(device=next(model.parameters()).device, seed=0, batch_size=batch_size,
                      role="baseline", artifacts_dir=Path(tempfile.gettempdir()))
    scores = {}
    for name in names or list(TARGETS):
        target = TARGETS[name]
        task = load_class("task", target.task, Task)(data=str(data_dir / f"{target.data}.jsonl"), limit=limit,
                                                     **target.params)
        result = task.evaluate(model, tokenizer, ctx)
        scores[name] = round(result.metrics[target.metric or result.primary], 4)
    return scores


def meets(name: str, value: float) -> bool:
    op, bound = TARGETS[name].goal
    return value >= bound if op == ">=" else value <= bound


def missed_targets(checks: dict[str, float]) -> list[str]:
    """The check targets among `checks` that a build misses (a report-only goal, >= 0, is never missed)."""
    return [name for name, value in checks.items() if not meets(name, value)]
