"""The measures every report shares, defined once: how much of the unedited model's score an edit
keeps, the Wilson interval of a proportion, and the bootstrap intervals. Pure functions on
numbers (numpy and scipy are imported when used; no torch).

% kept, one orientation, used by every table (the run table, the leaderboard, the studies):
- a family whose content a method should remove (goal 'remove', core/families.py): edited /
  baseline, the share of the measured quantity left, whatever its metric's direction (a
  membership AUC or a mislabeled image's noise label is marked lower-is-better for the goal);
- every other family (a skill to keep, or a reference): edited / baseline for a higher-is-better
  metric, baseline / edited for a lower-is-better one (perplexity's mean NLL), so that below
  1.0 (100 %) always means worse than the unedited model.
1.0 is unchanged. Undefined (None) when the denominator is 0 or either value is not finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.families import family_goal

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same run files always give the same intervals
NAN = float("nan")


def _oriented(edited: float, baseline: float, higher_is_better: bool, goal: str) -> tuple[float, float] | None:
    """(numerator, denominator) of the share kept (module docstring), or None where it is undefined."""
    if not higher_is_better and goal != "remove":
        edited, baseline = baseline, edited
    if baseline == 0 or not math.isfinite(baseline) or not math.isfinite(edited):
        return None
    return edited, baseline


def share_kept(edited: float, baseline: float, higher_is_better: bool = True, goal: str = "keep") -> float | None:
    """Share of the baseline kept (module docstring) by a metric of a family with `goal`
    (core.families.family_goal): 1.0 = unchanged; None if undefined."""
    pair = _oriented(edited, baseline, higher_is_better, goal)
    return None if pair is None else pair[0] / pair[1]


def percent_kept(edited: float, baseline: float, higher_is_better: bool = True, goal: str = "keep") -> float | None:
    """share_kept × 100 (computed as 100 · e / b, the order the published tables were made with)."""
    pair = _oriented(edited, baseline, higher_is_better, goal)
    return None if pair is None else 100.0 * pair[0] / pair[1]


def entry_percent_kept(baseline: Mapping[str, Any], edited: Mapping[str, Any], metric: str) -> float | None:
    """percent_kept of `metric` between a run file's baseline and edited task entries, oriented by
    the metric's direction and the task family's goal; None if undefined or not measured."""
    b, e = baseline["metrics"].get(metric), edited["metrics"].get(metric)
    if b is None or e is None:
        return None
    return percent_kept(e, b, baseline["higher_is_better"].get(metric, True), family_goal(baseline.get("family", "")))


def metric_n(entry: Mapping[str, Any], metric: str) -> int:
    """The number of examples behind one metric of a task entry: its per-example samples where it
    has them (a sub-metric such as arithmetic's trained / held-out split scores a part of the
    task's examples), the task's n otherwise."""
    samples = (entry.get("samples") or {}).get(metric)
    return len(samples) if isinstance(samples, list) and samples else int(entry["n"])


def primary_value(entry: Mapping[str, Any]) -> float:
    """A run file's task entry's headline (primary) metric."""
    return float(entry["metrics"][entry["primary"]])


def task_kept(run: Mapping[str, Any], task: str) -> float | None:
    """share_kept of `task`'s primary metric in a run file (baseline vs edited)."""
    base, edited = run["baseline"]["tasks"][task], run["edited"]["tasks"][task]
    return share_kept(primary_value(edited), primary_value(base), base["higher_is_better"][base["primary"]],
                      family_goal(base.get("family", "")))


def components_kept(changed: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Share of components (eigenbasis components or singular values) kept over all matrices a
    method's report lists as changed ({matrix: {components_total, components_removed}}); None if
    it lists none."""
    total = sum(c.get("components_total", 0) for c in changed.values())
    removed = sum(c.get("components_removed", 0) for c in changed.values())
    return None if not total else 1 - removed / total


# The guard on destructive edits (harness/pipeline.py runs it after every edit; the run file keeps
# its lines under "warnings" and the run table prints them). A coherence task's mean NLL up by more
# than ln 10 is perplexity more than 10x the baseline's: the model no longer writes its language.
COLLAPSE_RATIO = 10.0
REMOVED_LIMIT = 0.9  # share of the components of the changed matrices a method reports removed


def removal_warning(changed: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The guard's line when a method's report ({matrix: {components_total, components_removed}},
    methods/base.py) says more than REMOVED_LIMIT of the components were removed, else None."""
    kept = components_kept(changed)
    if kept is None or 1 - kept <= REMOVED_LIMIT:
        return None
    return (f"the edit removed {100 * (1 - kept):.1f} % of the components of the {len(changed)} matrices it "
            f"changed (more than {100 * REMOVED_LIMIT:.0f} %): a destructive setting; check the method's settings")


def collapse_warnings(baseline: Mapping[str, Any], edited: Mapping[str, Any]) -> list[str]:
    """The guard's lines for the coherence tasks (family 'coherence', metric mean_nll in nats) of
    a run's baseline and edited task results whose perplexity rose more than COLLAPSE_RATIO-fold."""
    lines = []
    for name, base in baseline.items():
        edit = edited.get(name)
        if base.get("family") != "coherence" or not edit:
            continue
        before, after = base["metrics"].get("mean_nll"), edit["metrics"].get("mean_nll")
        if before is None or after is None or not math.isfinite(before):
            continue
        if not math.isfinite(after) or after - before > math.log(COLLAPSE_RATIO):
            ratio, ppl = (math.exp(x) if x < 700 else x if math.isnan(x) else math.inf for x in (after - before, after))
            lines.append(f"{name}: perplexity {_plain(math.exp(before))} -> {_plain(ppl)}, "
                         f"{_plain(ratio)}x the baseline's "
                         f"(more than {COLLAPSE_RATIO:g}x): the edit collapsed the model's coherence; "
                         "check the method's settings")
    return lines


def _plain(x: float) -> str:
    """7.389, 58,790, 1.234e+12, inf: 4 significant digits, whole numbers from 1,000 to 10^9."""
    return f"{x:,.0f}" if 1000 <= x < 1e9 else f"{x:.4g}"


def edit_warnings(run: Mapping[str, Any]) -> list[str]:
    """Every line of the guard for a run record: components removed, then coherence collapsed."""
    removed = removal_warning(((run.get("method") or {}).get("report") or {}).get("changed") or {})
    return ([removed] if removed else []) + collapse_warnings(run["baseline"]["tasks"], run["edited"]["tasks"])


def wilson_interval(rate: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion `rate` observed on `n` examples; (nan, nan) if n < 1.

    centre = (p + z²/2n) / (1 + z²/n),  half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and is not zero-width at p = 0 or 1.
    """
    from scipy.stats import norm

    if n < 1:
        return NAN, NAN
    z = float(norm.ppf(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denom
    # At p = 0 (or 1) the bound is exactly 0 (or 1); the formula leaves rounding dust like 3e-17.
    low = 0.0 if rate <= 0 else max(0.0, centre - half)
    high = 1.0 if rate >= 1 else min(1.0, centre + half)
    return low, high


# ---------------------------------------------------------------------------------------------
# The bootstrap: examples resampled with replacement, a percentile interval over the replicates.
# ---------------------------------------------------------------------------------------------

def bootstrap_mean_interval(samples: Sequence[float], confidence: float = CONFIDENCE,
                            n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `samples` (scipy.stats.bootstrap, fixed seed).

    Fewer than 2 samples: (nan, nan). All samples equal: a zero-width interval at that value (the
    bootstrap distribution is a point; scipy would warn and return nan).
    """
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(samples, dtype=float)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return NAN, NAN
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def percentile_interval(replicates: Any, confidence: float = CONFIDENCE) -> tuple[Any, Any]:
    """(low, high) percentile interval over the first axis of the replicates (numpy arrays)."""
    import numpy as np

    tail = (1 - confidence) / 2
    return np.quantile(replicates, tail, axis=0), np.quantile(replicates, 1 - tail, axis=0)


def _pooled(sums: Any, counts: Any | None, picks: Any) -> Any:
    """Per replicate: the resampled rows' sum, over their summed counts when there are counts."""
    total = sums[picks].sum(1)
    if counts is None:
        return total
    n = counts[picks].sum(1)
    return total / (n[:, None] if total.ndim > 1 else n)


Draw = Callable[[int], Any]  # n -> (resamples, n) row indices drawn with replacement


def ratio_replicates(sums_a: Any, sums_b: Any, draw: Draw, counts_a: Any | None = None,
                     counts_b: Any | None = None, paired: bool = False) -> Any:
    """Bootstrap replicates of the ratio of set a's total (or mean per count) to set b's: rows
    (examples) are resampled with replacement, both sets with the same draw when `paired` (the
    same items scored twice), each on its own otherwise (a first, then b). Rows may hold several
    columns, all resampled together. Works on numpy arrays and torch tensors alike, so the caller's
    generator (`draw`) decides the stream of indices."""
    picks_a = draw(len(sums_a))
    picks_b = picks_a if paired else draw(len(sums_b))
    return _pooled(sums_a, counts_a, picks_a) / _pooled(sums_b, counts_b, picks_b)


def numpy_draw(resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Draw:
    """Index draws from numpy's default generator, seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return lambda n: rng.integers(0, n, size=(resamples, n))


def paired_kept_interval(baseline: Sequence[float], edited: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                         confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED
                         ) -> tuple[float, float, float] | None:
    """Share kept, sum(edited) / sum(baseline) over the same items, with a paired bootstrap
    percentile interval (items resampled together; replicates whose baseline sums to 0 are
    dropped); None when the lengths differ or the baseline scores nothing."""
    import numpy as np

    b, e = np.asarray(baseline, dtype=float), np.asarray(edited, dtype=float)
    if len(b) != len(e) or not b.sum():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = ratio_replicates(e, b, numpy_draw(resamples, seed), paired=True)
    low, high = percentile_interval(ratios[np.isfinite(ratios)], confidence)
    return float(e.sum() / b.sum()), float(low), float(high)


def interval(kind: str, value: float, n: int, samples: Sequence[float] | None) -> tuple[float, float]:
    """The 95 % interval a task entry's metric carries, by its kind: a proportion (a mean of 0/1 per
    example) gets the Wilson interval from the rate and n; a mean of real values the percentile
    bootstrap over its per-example `samples`; a single value (e.g. perplexity = exp(mean NLL)) none."""
    if kind == "proportion":
        return wilson_interval(value, n)
    if kind == "mean" and samples:
        return bootstrap_mean_interval(samples)
    return NAN, NAN


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) over seeds; std is nan for a single seed."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return NAN, NAN
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, NAN
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
