"""Plots as PNG bytes (matplotlib, Agg backend) for the HTML page.

- trade-off: x = memorized recall kept (family `memorized_val`, else `memorized`), y = a skill
  kept (`logic`, `qa_open`: one panel each; a suite with neither, e.g. own_model without lm-eval
  datasets, gets `coherence`: perplexity / nDCG@10); one point per run, and for a method swept
  over a setting it declares (core.runcolumns, role "setting", e.g. K-FAC's rho) a line through
  its per-config means sorted by that setting.
- family bars: mean % kept per family and method variant, error bars = std over seeds.
- headline: memorization kept vs utility per configuration, each method's front as a step line
  (leaderboard/headline.py).
"""

from __future__ import annotations

import io
import math

from core.families import HEADLINE_FAMILIES, family_rank

Y_FAMILIES = ("logic", "qa_open")
Y_FALLBACK = ("coherence",)  # when no Y_FAMILIES family was measured


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _colours(methods: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(methods))}


def tradeoff_y_families(present: set[str]) -> list[str]:
    """The skill families the trade-off plot shows, one panel each."""
    return [f for f in Y_FAMILIES if f in present] or [f for f in Y_FALLBACK if f in present]


def tradeoff_png(families: "pandas.DataFrame") -> bytes | None:
    """Families of one model × suite (aggregate.family_table rows); None if the x family or
    every y family is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = set(families.family)
    x_family = next((f for f in HEADLINE_FAMILIES if f in present), None)
    y_families = tradeoff_y_families(present)
    if x_family is None or not y_families:
        return None
    from leaderboard.aggregate import setting_names

    settings = setting_names(families)
    labels = families.attrs.get("setting_labels", {})
    # One row per run, one column per family (set_index keeps runs whose setting is nan; pivot_table
    # would drop them, or with dropna=False invent every combination of the index levels).
    wide = (families.set_index(["method", "variant", *settings, "config_key", "seed", "family"]).pct_kept
            .unstack("family").reset_index())
    colours = _colours(list(wide.method.unique()))
    fig, axes = plt.subplots(1, len(y_families), figsize=(5.5 * len(y_families), 4.5), squeeze=False)
    for ax, y_family in zip(axes[0], y_families):
        for method, g in wide.groupby("method", sort=True):
            ax.scatter(g[x_family], g[y_family], color=colours[method], label=method, s=30, alpha=0.8)
            for setting in settings:
                sweep = g.dropna(subset=[setting]).groupby(setting, sort=True)[[x_family, y_family]].mean()
                if len(sweep) > 1:
                    ax.plot(sweep[x_family], sweep[y_family], color=colours[method], lw=1.2)
                    for value, p in sweep.iterrows():
                        ax.annotate(f"{labels.get(setting, setting)}={value:g}", (p[x_family], p[y_family]),
                                    fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(100, color="#999", lw=0.6, ls="--")
        ax.axvline(100, color="#999", lw=0.6, ls="--")
        ax.set_xlabel(f"{x_family}: recall kept (% of unedited, lower = removed)")
        ax.set_ylabel(f"{y_family}: kept (% of unedited)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def family_bars_png(families: "pandas.DataFrame") -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if families.empty:
        return None
    fams = sorted(families.family.unique(), key=family_rank)
    variants = list(dict.fromkeys(families.variant))
    stats = families.groupby(["variant", "family"]).pct_kept.agg(["mean", "std"])
    width = 0.8 / max(1, len(variants))
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(min(12.0, 2.0 + 0.25 * len(fams) * len(variants)), 4.5))
    x = np.arange(len(fams))
    for i, v in enumerate(variants):
        means = [stats["mean"].get((v, f), math.nan) for f in fams]
        stds = [stats["std"].get((v, f), math.nan) for f in fams]
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, means, width, yerr=np.nan_to_num(stds),
               label=v, color=cmap(i % 20), capsize=2, error_kw={"lw": 0.8})
    ax.axhline(100, color="#555", lw=0.8, ls="--")
    ax.set_xticks(x, fams, rotation=30, ha="right")
    ax.set_ylabel("kept (% of unedited)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never hides a bar
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def relearn_png(attack_summary: "pandas.DataFrame") -> bytes | None:
    """Recovered recall vs relearning steps (issue 16): one panel per relearning data source, one
    line per method variant (mean over seeds, error bars = std), step 0 = the edited model without
    the attack; the unedited model relearned the same way as a dashed black line. The recall is
    the headline family's (memorized_val, else memorized). None without relearning results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np


    rel = attack_summary[attack_summary.attack == "relearn"] if not attack_summary.empty else attack_summary
    family = next((f for f in HEADLINE_FAMILIES if not rel.empty and f in set(rel.family)), None)
    if family is None:
        return None
    rel = rel[(rel.family == family) & (~rel.task.str.contains("[", regex=False) | rel.task.str.endswith("[heldout]"))]
    settings = sorted(rel.setting.unique(), key=lambda s: {"forget_half": 0, "retain": 1, "related": 2}.get(s, 3))
    variants = list(dict.fromkeys(rel.variant))
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(settings), figsize=(4.8 * len(settings), 4.2), squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings):
        g = rel[rel.setting == setting].sort_values("steps")
        for i, v in enumerate(variants):
            gv = g[g.variant == v]
            if gv.empty:
                continue
            x = [0] + gv.steps.astype(int).tolist()
            y = [gv.edited_no_attack_mean.iloc[0]] + gv.edited_mean.tolist()
            err = [gv.edited_no_attack_std.iloc[0]] + gv.edited_std.tolist()
            ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", ms=4, lw=1.2, capsize=2, color=cmap(i % 10), label=v)
        base = g.drop_duplicates("steps")
        if not base.empty:
            ax.plot([0] + base.steps.astype(int).tolist(), [base.baseline_no_attack_mean.iloc[0]] + base.baseline_mean.tolist(),
                    "k--", lw=1, label="unedited")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("relearning steps")
        ax.set_title(f"relearn on {setting}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{family} recall (strict)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _png(fig)


def headline_png(points: "pandas.DataFrame", title: str = "") -> bytes | None:
    """Memorization kept vs utility for one model × suite (headline.config_points rows): per
    method its configurations' mean points joined in order of utility, and its front (the least
    memorization kept at each utility threshold, headline.front_steps) as a wide step line; the
    unedited model at (100, 100); dashed lines at the utility thresholds. None without a method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from leaderboard.aggregate import REFERENCE_METHODS
    from leaderboard.headline import AREA_RANGE, THRESHOLDS, front_steps

    pts = points[~points.method.isin(REFERENCE_METHODS)].dropna(subset=["utility_mean", "memorization_mean"])
    if pts.empty:
        return None
    colours = _colours(list(pts.method.unique()))
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    for method, g in pts.groupby("method", sort=True):
        g = g.sort_values(["utility_mean", "memorization_mean"])
        ax.plot(g.utility_mean, g.memorization_mean, marker="o", ms=4, lw=0.8, color=colours[method], label=method)
        xs, ys = [], []
        for step in front_steps(zip(g.utility_mean, g.memorization_mean)):
            xs += [step.start, step.end]
            ys += [100.0 - step.removed] * 2
        ax.plot(xs, ys, color=colours[method], lw=4, alpha=0.3, solid_capstyle="butt")
    ax.plot([100], [100], marker="*", ms=12, color="black", ls="none", label="unedited")
    for t in THRESHOLDS:
        ax.axvline(t, color="#777", lw=0.8, ls="--")
    ax.set_xlim(min(AREA_RANGE[0], float(pts.utility_mean.min())) - 2, AREA_RANGE[1] + 2)
    ax.set_ylim(-3, max(105.0, float(pts.memorization_mean.max()) + 5))
    family = pts.memorization_family.iloc[0]
    ax.set_xlabel("utility: skills kept (% of unedited, mean over skill families, capped at 100)")
    ax.set_ylabel(f"{family} kept (% of unedited; lower = removed)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never hides a point
    fig.tight_layout()
    return _png(fig)
