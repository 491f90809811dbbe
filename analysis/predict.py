"""Prediction of damage: per task family, its activation share on the components a K-FAC setting
removes, against the family's measured drop in that setting's run file. Pure functions on numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from core.measures import task_kept


def family_drops(run: Mapping[str, Any], families: Mapping[str, str]) -> dict[str, float]:
    """Family -> drop (1 - mean share kept over its tasks), for tasks -> family in `families` that
    the run measured with a non-zero baseline."""
    kept: dict[str, list[float]] = {}
    for task, family in families.items():
        if task in run.get("baseline", {}).get("tasks", {}) and task in run.get("edited", {}).get("tasks", {}):
            k = task_kept(run, task)
            if k is not None:
                kept.setdefault(family, []).append(k)
    return {f: 1.0 - sum(v) / len(v) for f, v in kept.items()}


def removed_share(removed_sum: float, total_sum: float) -> float:
    """Share of the layer's output norm that the removed components carry: sum over positions of
    ||W_removed x|| over the sum of ||W x|| (norms of parts need not add up to the whole: this is
    a share of the whole's size, not a partition)."""
    return removed_sum / total_sum if total_sum > 0 else float("nan")


def spearman(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, int]:
    """(Spearman rank correlation, two-sided p-value, n) over the finite pairs; nan below 3 pairs."""
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return float("nan"), float("nan"), len(pairs)
    result = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return float(result.statistic), float(result.pvalue), len(pairs)
