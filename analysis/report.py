"""Markdown tables and PNG plots (matplotlib, Agg) of spectrum and predict results."""

from __future__ import annotations

import io
import math
from typing import Any

from analysis.bands import BOTTOM_HALF, DECILES, TOP_10


def _ci(entry: dict[str, float]) -> str:
    return f"{entry['ratio']:.3f} [{entry['lo']:.3f}, {entry['hi']:.3f}]"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}" if math.isfinite(x) else "n/a"


def _setting(result: dict[str, Any]) -> str:
    c = result["config"]
    m = c["method"]
    return (f"model {c['model']['name']}, suite {c['suite']['name']}, seed {c['seed']}, method {m['name']} "
            f"(rho {m.get('rho')}, layers {m.get('layers')}, matrices {m.get('matrices')})")


def spectrum_markdown(result: dict[str, Any]) -> str:
    ref = result["reference"]
    lines = [f"# Activation by curvature band: {_setting(result)}", "",
             f"Ratio of the mean norm per position of a band's output, {ref} / other group, with a "
             f"{result['config']['analyze']['level']:.0%} bootstrap interval over examples. Above 1: the "
             f"{ref} inputs drive the band harder. Bands by curvature-mass rank, 0 % = largest mass.", "",
             "Groups: " + "; ".join(f"{g} = {', '.join(n)} ({sum(result['examples'][i] for i in n)} examples)"
                                   for g, n in result["groups"].items()), ""]
    if result.get("skipped_tasks"):
        lines += [f"Tasks with no inputs for this analysis: {', '.join(result['skipped_tasks'])}.", ""]
    deciles = [d[0] for d in DECILES]
    for comparison, summary in result["summary"].items():
        lines += [f"## {comparison}", "",
                  f"| matrix | {BOTTOM_HALF[0]} | {TOP_10[0]} | " + " | ".join(deciles) + " |",
                  "|---|---|---|" + "---|" * len(deciles)]
        for name, m in result["matrices"].items():
            r = m["ratios"][comparison]
            lines.append(f"| {name} | {_ci(r[BOTTOM_HALF[0]])} | {_ci(r[TOP_10[0]])} | "
                         + " | ".join(f"{r[d]['ratio']:.3f}" for d in deciles) + " |")
        lines.append(f"| **mean over matrices** | {_ci(summary[BOTTOM_HALF[0]])} | {_ci(summary[TOP_10[0]])} | "
                     + " | ".join(f"{summary[d]['ratio']:.3f}" for d in deciles) + " |")
        lines.append("")
    lines += ["## Curvature mass and removal", "",
              f"| matrix | rho | components removed % | mass in {TOP_10[0]} % | mass in {BOTTOM_HALF[0]} % |",
              "|---|---|---|---|---|"]
    for name, m in result["matrices"].items():
        lines.append(f"| {name} | {m['rho']} | {_pct(m['removed_components'] / m['components'])} | "
                     f"{_pct(m['band_mass'][TOP_10[0]])} | {100 * m['band_mass'][BOTTOM_HALF[0]]:.2e} |")
    lines += ["", "Share of the output norm carried by the removed components (mean over matrices), per input set:", "",
              "| input set | removed share % |", "|---|---|"]
    for inst in result["examples"]:
        shares = [m["removed_share"][inst] for m in result["matrices"].values()]
        lines.append(f"| {inst} | {_pct(sum(shares) / len(shares))} |")
    return "\n".join(lines) + "\n"


def predict_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Activation on removed components vs measured drop: {_setting(result)}", "",
             "Removed share: the share of the layer output norm carried by the components the run's setting "
             "removes (mean over edited matrices). Drop: 1 - share of the baseline kept (mean over the family's tasks).", ""]
    for run in result["runs"]:
        s = run["spearman"]
        lines += [f"## rho {run['rho']} ({_pct(run['components_removed_share'])} % of components removed)", "",
                  f"Run file: `{run['run_file']}`. Spearman across families: {s['rho']:.3f} (p = {s['p']:.3g}, n = {s['n']}); "
                  f"across skill families only (goal 'keep'): {run['spearman_skills']['rho']:.3f} "
                  f"(p = {run['spearman_skills']['p']:.3g}, n = {run['spearman_skills']['n']}).", "",
                  "| family | removed share % | drop % |", "|---|---|---|"]
        for family, v in sorted(run["families"].items(), key=lambda kv: -kv[1]["removed_share"]):
            lines.append(f"| {family} | {_pct(v['removed_share'])} | {_pct(v['drop'])} |")
        lines.append("")
    s = result["spearman_all_runs"]
    lines.append(f"All runs together: Spearman {s['rho']:.3f} (p = {s['p']:.3g}, n = {s['n']}).")
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def spectrum_pngs(result: dict[str, Any]) -> dict[str, bytes]:
    """One plot per comparison: the ratio by decile, a line per matrix, the mean with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deciles = [d[0] for d in DECILES]
    x = list(range(len(deciles)))
    out = {}
    for comparison, summary in result["summary"].items():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        cmap = matplotlib.colormaps["tab20"]
        for i, (name, m) in enumerate(result["matrices"].items()):
            r = m["ratios"][comparison]
            label = f"L{m['layer']} {m['role']}" if m["layer"] is not None else name
            ax.plot(x, [r[d]["ratio"] for d in deciles], color=cmap(i % 20), alpha=0.7, lw=1, label=label)
        ax.plot(x, [summary[d]["ratio"] for d in deciles], color="black", lw=2.5, label="mean")
        ax.fill_between(x, [summary[d]["lo"] for d in deciles], [summary[d]["hi"] for d in deciles],
                        color="black", alpha=0.15, lw=0)
        ax.axhline(1.0, color="grey", ls="--", lw=1)
        ax.set_xticks(x, deciles, rotation=30)
        ax.set_xlabel("curvature-mass rank band (0 % = largest mass)")
        ax.set_ylabel(f"mean output norm ratio, {comparison}")
        ax.set_title(f"{result['config']['model']['name']} seed {result['config']['seed']}: {comparison}")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        out["ratio-" + comparison.replace("/", "-vs-")] = _png(fig)
    return out


def predict_pngs(result: dict[str, Any]) -> dict[str, bytes]:
    """Scatter of removed share vs drop, one colour per run (rho), families labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    cmap = matplotlib.colormaps["tab10"]
    for i, run in enumerate(result["runs"]):
        fams = run["families"]
        xs = [100 * v["removed_share"] for v in fams.values()]
        ys = [100 * v["drop"] for v in fams.values()]
        ax.scatter(xs, ys, color=cmap(i % 10), label=f"rho {run['rho']} (Spearman {run['spearman']['rho']:.2f})")
        for family, xv, yv in zip(fams, xs, ys):
            ax.annotate(family, (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("activation share on removed components (%)")
    ax.set_ylabel("measured drop (% of baseline lost)")
    ax.set_title(f"{result['config']['model']['name']} seed {result['config']['seed']}: activation vs drop")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return {"scatter": _png(fig)}
