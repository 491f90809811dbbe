"""Measure the organism against its targets with the same task code the benchmark uses.

    python -m models.organism.check            # builds (or reuses) the default organism, prints the table
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# Name -> (task class path, data file, task settings, target as (">=" | "<=", value)).
TARGETS: dict[str, tuple[str, str, dict[str, Any], tuple[str, float]]] = {
    "planted_forget": ("tasks.verbatim:VerbatimRecall", "verbatim_forget", {}, (">=", 0.90)),
    "planted_validation": ("tasks.verbatim:VerbatimRecall", "verbatim_validation", {}, (">=", 0.90)),
    "control": ("tasks.verbatim:VerbatimRecall", "verbatim_control", {}, ("<=", 0.01)),
    "quotes": ("tasks.quotes:QuoteRecall", "quotes", {}, (">=", 0.80)),
    "open_book": ("tasks.qa:QuestionAnswering", "facts", {"mode": "open"}, (">=", 0.80)),
    "booleans": ("tasks.logic:Logic", "logic", {}, (">=", 0.85)),
    "closed_common": ("tasks.qa:QuestionAnswering", "facts", {"mode": "closed", "frequency": "common"}, (">=", 0.0)),
    "closed_rare": ("tasks.qa:QuestionAnswering", "facts", {"mode": "closed", "frequency": "rare"}, (">=", 0.0)),
    "copy": ("tasks.logic:Logic", "copy", {}, (">=", 0.0)),
    "arithmetic": ("tasks.arithmetic:Arithmetic", "arithmetic", {}, (">=", 0.0)),
}


def measure(model: torch.nn.Module, tokenizer: Any, data_dir: Path, limit: int | None = None,
            names: list[str] | None = None, batch_size: int = 64) -> dict[str, float]:
    """Primary metric of each target task (strict recall / exact match), on up to `limit` examples."""
    import importlib
    import tempfile

    from tasks.base import TaskContext

    ctx = TaskContext(device=next(model.parameters()).device, seed=0, batch_size=batch_size,
                      role="baseline", artifacts_dir=Path(tempfile.gettempdir()))
    scores = {}
    for name in names or list(TARGETS):
        target, data, params, _ = TARGETS[name]
        module, cls = target.split(":")
        task = getattr(importlib.import_module(module), cls)(data=str(data_dir / f"{data}.jsonl"), limit=limit, **params)
        result = task.evaluate(model, tokenizer, ctx)
        scores[name] = round(result.metrics[result.primary], 4)
    return scores


def meets(name: str, value: float) -> bool:
    op, bound = TARGETS[name][3]
    return value >= bound if op == ">=" else value <= bound


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from core.progress import make_progress

    from models.hf import load_hf_causal_lm
    from models.organism import default_settings, ensure_organism

    with make_progress() as progress:
        folder = ensure_organism(default_settings(), Path(".cache/harness"), progress)
    loaded = load_hf_causal_lm(str(folder / "model"), torch.device("cpu"), "float32")
    scores = measure(loaded.model, loaded.tokenizer, folder / "data")
    table = Table(title=f"organism {folder.name[:12]}")
    for column in ("target", "value", "goal", "met"):
        table.add_column(column)
    for name, value in scores.items():
        op, bound = TARGETS[name][3]
        goal = f"{op} {bound:.2f}" if bound else "-"
        table.add_row(name, f"{value:.3f}", goal, "yes" if meets(name, value) else "NO")
    Console().print(table)


if __name__ == "__main__":
    main()
