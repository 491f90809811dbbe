"""Build the organisms from their settings.

    python -m models.build organism --seed 1         # rebuild seed 1 here; compare with the shipped manifest
    python -m models.build vit_organism --seed 0
    python -m models.build smollm2_planted --seed 0  # SmolLM2 with planted passages (a LoRA adapter)
    python -m models.build organism --seed 0 1 2 --ship   # (maintainers) build or reuse, then ship

A shipped organism (models/organism/shipped/, models/vit/shipped/) is what every run of the
default settings loads. A rebuild goes to `<cache_dir>/rebuild/<kind>/<hash>/`, never over the
shipped one: training differs by CPU, so it is another organism; the table says how its checks
compare with the shipped manifest's (`stored_checks`, measured on the stored weights).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.errors import OneLineParser

# Each kind of shipped build: the module whose `shippable()` describes it.
SHIPPABLE_MODULES = {"organism": "models.organism", "vit_organism": "models.vit.organism",
                     "smollm2_planted": "models.smollm2.planted"}
KINDS = tuple(SHIPPABLE_MODULES)


def shippable(kind: str) -> Any:
    import importlib

    return importlib.import_module(SHIPPABLE_MODULES[kind]).shippable()


def comparison_rows(shipped: dict[str, Any] | None, rebuilt: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(check, shipped, rebuilt, rebuilt - shipped) for every check either build measured."""
    shipped = shipped or {}
    rows = []
    for name in dict.fromkeys([*shipped, *rebuilt]):
        a, b = shipped.get(name), rebuilt.get(name)
        diff = f"{b - a:+.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else "-"
        rows.append((name, "-" if a is None else f"{a:.3f}", "-" if b is None else f"{b:.3f}", diff))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m models.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--ship", action="store_true",
                        help="build (or reuse the cached build) and write it to the shipped folder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if any(seed < 0 for seed in args.seed):  # before the (slow) build
        parser.error(f"argument --seed: seeds are integers >= 0, got {' '.join(map(str, args.seed))}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"argument --threads: a positive integer, got {args.threads}")

    import torch
    from rich.console import Console
    from rich.table import Table

    from core.buildcache import default_cache_dir, ensure_built
    from core.progress import make_progress
    from models.shipping import ship

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = shippable(args.kind)
    console = Console()
    for seed in args.seed:
        settings = spec.settings(seed)
        root = default_cache_dir() / (args.kind if args.ship else f"rebuild/{args.kind}")
        with make_progress() as progress:
            folder = ensure_built(settings, root, spec.format_version, spec.build, progress)
        rebuilt = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        shipped_manifest = spec.shipped_folder(seed) / "manifest.json"
        if args.ship:
            manifest = ship(folder, spec.shipped_folder(seed), spec.stored_checks, spec.bfloat16)
            console.print(f"shipped {args.kind} seed {seed} to {spec.shipped_folder(seed)} "
                          f"({manifest['storage']} weights)")
            continue
        shipped = (json.loads(shipped_manifest.read_text(encoding="utf-8")).get("stored_checks")
                   if shipped_manifest.is_file() else None)
        table = Table(title=f"{args.kind} seed {seed}: rebuilt here ({folder}) against the shipped build")
        for column in ("check", "shipped (stored weights)", "rebuilt", "difference"):
            table.add_column(column)
        for row in comparison_rows(shipped, rebuilt[spec.checks_key]):
            table.add_row(*row)
        console.print(table)
        if shipped is None:
            console.print(f"no shipped build of these settings at {spec.shipped_folder(seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
