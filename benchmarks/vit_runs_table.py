"""The K-FAC sweeps of docs/vision.md as one markdown table: every run file of the ViT organism
under a runs folder (default runs/vit_organism/mislabeled), one row each, with what the run set
away from the defaults (method and model), the share of eigenbasis components kept, and the
baseline and edited metrics.

    python benchmarks/vit_runs_table.py                       # runs/vit_organism/mislabeled
    python benchmarks/vit_runs_table.py runs/vit_organism/mislabeled --since 2026-01-01T00:00
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.measures import components_kept

DEFAULT_METHOD = {"rho": 0.99, "layers": None, "matrices": ["up", "down"], "labels": "sampled", "overrides": {}}
DEFAULT_STATS = {"tokens": "cls", "images": "all"}


def organism_defaults() -> dict[str, Any]:
    from models.vit.organism import default_settings

    return default_settings()


def setting(run: dict[str, Any], organism: dict[str, Any]) -> str:
    cfg = run["config"]
    method, parts = cfg["method"], []
    if method["name"] != "kfac":
        parts.append(method["name"])
    for key, default in DEFAULT_METHOD.items():
        if key in method and method[key] != default and method["name"] != "none":
            parts.append(f"{key}={json.dumps(method[key], separators=(',', ':'))}")
    for key, default in DEFAULT_STATS.items():
        value = (cfg["model"].get("statistics") or {}).get(key, default)
        if value != default:
            parts.append(f"stats.{key}={value}")
    from leaderboard.aggregate import flatten

    ours, base = flatten(cfg["model"]["organism"]), flatten(organism)
    parts += [f"{k}={v}" for k, v in ours.items() if k != "seed" and base.get(k) != v]
    return ", ".join(parts) or "defaults"


def kept(run: dict[str, Any]) -> str:
    share = components_kept((run["method"].get("report") or {}).get("changed") or {})
    return "" if share is None else f"{100 * share:.2f} %"


def metrics(tasks: dict[str, Any]) -> tuple[float, float, float, float]:
    return (tasks["memorized"]["metrics"]["memorized"], tasks["memorized"]["metrics"]["gt_recovery"],
            tasks["accuracy"]["metrics"]["accuracy"], tasks["clean_train"]["metrics"]["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="runs/vit_organism/mislabeled")
    parser.add_argument("--since", default="", help="only runs created at or after this ISO time")
    args = parser.parse_args()
    organism = organism_defaults()
    rows = []
    for path in sorted(Path(args.folder).glob("*/*.json")):
        run = json.loads(path.read_text())
        if run.get("status") != "complete" or run.get("created", "") < args.since:
            continue
        base, edited = metrics(run["baseline"]["tasks"]), metrics(run["edited"]["tasks"])
        rho = run["config"]["method"].get("rho", "")
        rows.append((setting(run, organism), rho, run["config"]["seed"], kept(run), base, edited, path.name))
    print("| setting | rho | seed | kept | base mem / held-out | memorized | gt_recovery | held-out | clean train | file |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rho, seed, share, base, edited, file in sorted(rows, key=lambda r: (r[0], str(r[1]), r[2])):
        print(f"| {name} | {rho} | {seed} | {share} | {base[0]:.3f} / {base[2]:.3f} | {edited[0]:.3f} | "
              f"{edited[1]:.3f} | {edited[2]:.3f} | {edited[3]:.3f} | {file} |")


if __name__ == "__main__":
    main()
