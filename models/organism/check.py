"""Measure the organism against its targets with the same task code the benchmark uses.

    python -m models.organism.check            # builds (or reuses) the default organism, prints the table

The organism is looked up in (or built into) the app's cache folder: $HARNESS_CACHE_DIR, else
.cache/harness (conf/config.yaml's `cache_dir`).
"""

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
    """Primary metric of each target task (strict recall / exact match), on up to `limit` examples."""
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
        scores[name] = round(result.metrics[result.primary], 4)
    return scores


def meets(name: str, value: float) -> bool:
    op, bound = TARGETS[name].goal
    return value >= bound if op == ">=" else value <= bound


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from core.buildcache import default_cache_dir
    from models.hf import load_hf_causal_lm
    from models.organism import default_settings, ensure_organism

    with Progress(transient=True) as progress:
        folder = ensure_organism(default_settings(), default_cache_dir(), progress)
    loaded = load_hf_causal_lm(str(folder / "model"), torch.device("cpu"), "float32")
    scores = measure(loaded.model, loaded.tokenizer, folder / "data")
    table = Table(title=f"organism {folder.name[:12]}")
    for column in ("target", "value", "goal", "met"):
        table.add_column(column)
    for name, value in scores.items():
        op, bound = TARGETS[name].goal
        goal = f"{op} {bound:.2f}" if bound else "-"
        table.add_row(name, f"{value:.3f}", goal, "yes" if meets(name, value) else "NO")
    Console().print(table)


if __name__ == "__main__":
    main()
