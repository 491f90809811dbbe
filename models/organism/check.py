"""Measure the organism against its targets (models/organism/measure.py).

    python -m models.organism.check            # builds (or reuses) the default organism, prints the table

The organism is looked up in (or built into) the app's cache folder: $HARNESS_CACHE_DIR, else
.cache/harness (conf/config.yaml's `cache_dir`).
"""

from __future__ import annotations

import torch

from models.organism.measure import TARGETS, measure, meets


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from core.buildcache import default_cache_dir
    from core.progress import make_progress
    from models.hf import load_hf_causal_lm
    from models.organism import default_settings, ensure_organism

    with make_progress() as progress:
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
