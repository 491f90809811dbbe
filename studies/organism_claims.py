"""What the organism runs show, by the paper's findings: its qualitative claims at the organism
defaults, checked (claims), the organism's open questions, reported (findings), and a run's
headline numbers per task (summary). Pure functions on run files (studies/fidelity.py runs them)."""

from __future__ import annotations

import statistics
from typing import Any

from core.measures import paired_kept_interval, primary_value, task_kept

SKILLS = ("logic", "qa_open")  # task instances the fidelity claims protect
SCORED = "verbatim_test"  # the memorized passages the claims score (the organism's test split: no method sees it)


def claims(runs: dict[str, dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    """The paper's qualitative findings at the organism defaults: claim -> (holds, numbers)."""
    out: dict[str, tuple[bool, str]] = {}
    k = {t: task_kept(runs["kfac"], t) for t in (SCORED, *SKILLS)}
    out["kfac removes memorized test passages (<= 10% kept)"] = (
        k[SCORED] is not None and k[SCORED] <= 0.10, f"test recall kept {k[SCORED]}")
    for skill in SKILLS:
        out[f"kfac keeps {skill} (>= 90% kept)"] = (k[skill] is not None and k[skill] >= 0.90, f"{skill} kept {k[skill]}")
    # Coherence, the paper's perplexity column: booleans and open-book reading barely use the MLPs
    # on the organism (a K-FAC keeping the LOWEST-curvature components still keeps them, and
    # wrecks perplexity, quotes and arithmetic), so they alone cannot tell a working edit.
    ppl = task_kept(runs["kfac"], "perplexity")
    out["kfac keeps perplexity (>= 90% kept: mean NLL rises <= 11%)"] = (ppl is not None and ppl >= 0.90, f"perplexity kept {ppl}")
    if "random_ablation" in runs:
        mean = lambda run: statistics.fmean(task_kept(run, t) or 0.0 for t in SKILLS)  # noqa: E731
        kf, ra = mean(runs["kfac"]), mean(runs["random_ablation"])
        out["kfac keeps more skills than random_ablation at the same count"] = (kf > ra, f"kfac {kf:.3f} vs random {ra:.3f}")
    return out


# The organism's open questions (issue 19), reported, not asserted: does an edit treat arithmetic
# the model computes (held-out operand pairs) as it treats a stored table, and rare facts as
# common ones? (run, task, metric) per line; the paper: arithmetic falls, rare facts fall most.
FINDINGS: tuple[tuple[str, str, str], ...] = (
    ("computed arithmetic (held-out pairs)", "arithmetic", "exact_match_heldout"),
    ("stored table (math_facts, trained pairs)", "math_facts", "exact_match_trained"),
    ("rare facts", "facts_rare", "exact_match"),
    ("common facts", "facts_common", "exact_match"),
)


def findings(run: dict[str, Any]) -> list[str]:
    """One line per FINDINGS entry the run has: % of the baseline kept with its 95 % interval."""
    lines = []
    for label, task, metric in FINDINGS:
        base, edited = run["baseline"]["tasks"].get(task), run["edited"]["tasks"].get(task)
        if base is None or edited is None or metric not in base.get("samples", {}):
            continue
        b, e = base["samples"][metric], edited["samples"][metric]
        k = paired_kept_interval(b, e)
        rate = f"{sum(b) / len(b):.2f} -> {sum(e) / len(e):.2f} (n={len(b)})"
        lines.append(f"{label}: {rate}, kept " + ("n/a" if k is None else f"{100 * k[0]:.0f} % [{100 * k[1]:.0f}, {100 * k[2]:.0f}]"))
    return lines


def summary(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task -> {"baseline", "edited": primary metric, "kind": its kind, "n": examples}."""
    out = {}
    for task, base in sorted(run["baseline"]["tasks"].items()):
        edited = run["edited"]["tasks"][task]
        out[task] = {"baseline": round(primary_value(base), 4), "edited": round(primary_value(edited), 4),
                     "kind": base["kinds"][base["primary"]], "n": int(base["n"])}
    return out
