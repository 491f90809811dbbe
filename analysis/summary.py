"""`python -m analysis.summary RUNS_DIR [...]`: one Markdown table over every spectrum and predict
result under <RUNS_DIR>/analysis/, one row per result (model, organism seed when there is one), for
the findings in docs/analysis.md: the paper's two numbers (bottom half more active on memorized
inputs, top 10 % more active on the others) and the rank correlation of predict."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from analysis.bands import BOTTOM_HALF, TOP_10


def results(run_dirs: list[Path], command: str) -> list[dict[str, Any]]:
    found = []
    for run_dir in run_dirs:
        for path in sorted(Path(run_dir).glob(f"analysis/*/*/{command}-*.json")):
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def label(result: dict[str, Any]) -> str:
    model = result["config"]["model"]
    organism_seed = (model.get("organism") or {}).get("seed")
    return model["name"] + (f" seed {organism_seed}" if organism_seed is not None else "") + f" (run seed {result['config']['seed']})"


def more_on(entry: dict[str, float], invert: bool = False) -> str:
    """'+23.0 % [lo, hi]': how much more active the numerator set is (or, inverted, the denominator set)."""
    r, lo, hi = entry["ratio"], entry["lo"], entry["hi"]
    if invert:
        r, lo, hi = 1 / r, 1 / hi, 1 / lo
    return f"{100 * (r - 1):+.1f} % [{100 * (lo - 1):+.1f}, {100 * (hi - 1):+.1f}]"


def spectrum_table(found: list[dict[str, Any]]) -> str:
    lines = ["| model | comparison | bottom half: more on memorized | top 10 %: more on the other set | whole matrix: more on memorized | matrices with bottom-half interval above 1 | matrices with top-10 % interval below 1 |",
             "|---|---|---|---|---|---|---|"]
    pooled: dict[str, dict[str, list[float]]] = {}
    for result in found:
        for comparison, summary in result["summary"].items():
            per_matrix = [m["ratios"][comparison] for m in result["matrices"].values()]
            above = sum(r[BOTTOM_HALF[0]]["lo"] > 1 for r in per_matrix)
            below = sum(r[TOP_10[0]]["hi"] < 1 for r in per_matrix)
            lines.append(f"| {label(result)} | {comparison} | {more_on(summary[BOTTOM_HALF[0]])} | "
                         f"{more_on(summary[TOP_10[0]], invert=True)} | {more_on(summary['all'])} | {above}/{len(per_matrix)} | {below}/{len(per_matrix)} |")
            p = pooled.setdefault(comparison, {"bottom": [], "top": []})
            p["bottom"].append(100 * (summary[BOTTOM_HALF[0]]["ratio"] - 1))
            p["top"].append(100 * (1 / summary[TOP_10[0]]["ratio"] - 1))
    for comparison, p in pooled.items():
        if len(p["bottom"]) > 1:
            lines.append(f"| mean ± std over {len(p['bottom'])} results | {comparison} | "
                         f"{statistics.fmean(p['bottom']):+.1f} ± {statistics.stdev(p['bottom']):.1f} % | "
                         f"{statistics.fmean(p['top']):+.1f} ± {statistics.stdev(p['top']):.1f} % | | | |")
    return "\n".join(lines)


def predict_table(found: list[dict[str, Any]]) -> str:
    lines = ["| model | rho | components removed % | Spearman, all families (p, n) | Spearman, skill families (p, n) | order by removed share (high to low) |",
             "|---|---|---|---|---|---|"]
    for result in found:
        for run in sorted(result["runs"], key=lambda r: r["rho"]):
            s = run["spearman"]
            order = ", ".join(f"{f} {100 * v['removed_share']:.1f}/{100 * v['drop']:.0f}" for f, v in
                              sorted(run["families"].items(), key=lambda kv: -kv[1]["removed_share"]))
            k = run["spearman_skills"]
            lines.append(f"| {label(result)} | {run['rho']} | {100 * run['components_removed_share']:.2f} | "
                         f"{s['rho']:.3f} ({s['p']:.2g}, {s['n']}) | {k['rho']:.3f} ({k['p']:.2g}, {k['n']}) | {order} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m analysis.summary RUNS_DIR [...]", file=sys.stderr)
        return 2
    run_dirs = [Path(a) for a in argv]
    missing = [str(d) for d in run_dirs if not (d / "analysis").is_dir()]
    if missing:
        print(f"error: no analysis/ folder under {', '.join(missing)} (run python -m studies.analyze first)", file=sys.stderr)
        return 2
    print("## Activation by curvature band\n")
    print(spectrum_table(results(run_dirs, "spectrum")))
    print("\n## Activation on removed components vs drop\n")
    print(predict_table(results(run_dirs, "predict")))
    print("\n(order column: family removed share % / drop %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
