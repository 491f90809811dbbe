"""The headline table: each method's best setting at matched utility (issue 18).

Pure functions over the long table (aggregate.long_table: one row per run × task × metric) and
the run table (aggregate.run_table: one row per run). The Markdown legend (render.py) and
docs/leaderboard.md state the same definitions:

- Utility of a run: the mean over the suite's skill families (goal 'keep' in core/families.py;
  'remove' and 'reference' families are not skills) of the family's % kept, which is the mean over
  the family's tasks of the primary metric's % kept, each task's value capped at 100. The cap: an
  edit cannot keep more than all of a skill, and without it a method that improves one skill (say
  perplexity) could hide damage to another. A task whose % kept is not finite (its unedited value
  is 0, e.g. an unlearned task) is left out; so is a family with no task left.
- Memorization of a run: the % kept of the primary metric of family `memorized_val` (verbatim
  recall of memorized passages no method is shown; the mean over its tasks if it has several), or
  of `memorized` when the suite has no `memorized_val` (the ViT suite `mislabeled`: the share of
  noised training images still predicted as their noise label).
- Selection of a run: the % kept of family `memorized_tune` (the organism's tune split, read only
  to choose a setting) when the suite has it, else its memorization (then the choice is in-sample).
- A configuration's utility, memorization and selection: the mean, and the sample std, over its
  seeds (replicates: core.runrecord.REPLICATE_KEYS).
- A method's best setting at threshold T (95, 90): of its configurations whose mean utility is
  >= T, the one with the lowest mean selection (ties: the higher mean utility, then the label); its
  memorization (scored on passages the choice never saw, where the suite has a tune split) is what
  the table reports.
  Its 95 % interval: the Wilson interval of the edited rate pooled over the configuration's seeds
  (Σ rate·n / Σ n, the share of hits among all their per-example 0/1 samples) as % of the unedited
  rate pooled the same way. It covers the edited model's sampling noise, not the unedited's; a
  memorization metric that is not a proportion gets none.
- Front and area: R(t) = the most memorization removed (100 − mean % kept) by a configuration of
  the method whose mean utility is >= t, and never below 0, the unedited model's (it removes
  nothing at utility 100). Area = the mean of R(t) over t in [50, 100]: 100 = removes all of it
  while keeping every skill; 0 = never removes anything without losing more than half the skills.
  R is a step function of t, integrated exactly. Per seed: the same from that seed's runs alone.
- Rank: by memorization kept at >= 95 % (lower first; methods with no setting there after those
  with one), then the same at >= 90 %, then area (higher first), then the method's name.

The unedited reference (method `none`) is the no-edit point, not a contestant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from core.families import HEADLINE_FAMILIES, MEMBERSHIP_FAMILY, SELECTION_FAMILY, family_goal
from core.measures import mean_std, wilson_interval
from core.runcolumns import MethodColumn, from_record
from leaderboard.aggregate import REFERENCE_METHODS

THRESHOLDS = (95.0, 90.0)  # utility a method must keep (% of the unedited model's skills)
AREA_RANGE = (50.0, 100.0)  # utilities the area averages the front over
UTILITY_CAP = 100.0  # a task cannot keep more than all of a skill
NAN = float("nan")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if _finite(v)]
    return sum(vals) / len(vals) if vals else NAN


def memorization_family(families: Iterable[str]) -> str | None:
    """The family the headline measures memorization by: `memorized_val`, else `memorized`."""
    present = set(families)
    return next((f for f in HEADLINE_FAMILIES if f in present), None)


def no_headline_reason(families: Iterable[str], methods: Iterable[str]) -> str | None:
    """Why a model × suite gets no headline table (None if it gets one)."""
    families, methods = set(families), set(methods)
    if memorization_family(families) is None:
        return f"the suite has no {' or '.join(f'`{f}`' for f in HEADLINE_FAMILIES)} family to measure memorization by"
    if not any(family_goal(f) == "keep" for f in families):
        return "the suite has no skill family, so there is no utility to match"
    if not methods - set(REFERENCE_METHODS):
        return "no method was run besides the unedited reference"
    return None


def run_utility(tasks: Iterable[tuple[str, float]]) -> float:
    """Utility of one run from (family, % kept) of each task's primary metric (module docstring);
    nan when no skill family has a finite value."""
    by_family: dict[str, list[float]] = {}
    for family, pct in tasks:
        if family_goal(family) == "keep" and _finite(pct):
            by_family.setdefault(family, []).append(min(float(pct), UTILITY_CAP))
    return _mean(_mean(v) for v in by_family.values())


def pooled_interval(edited_hits: float, baseline_hits: float, n: int) -> tuple[float, float]:
    """95 % Wilson interval of the pooled edited rate edited_hits / n, as % of the pooled unedited
    rate baseline_hits / n (both over the same examples); (nan, nan) when undefined."""
    if not (n > 0 and _finite(edited_hits) and _finite(baseline_hits) and baseline_hits > 0):
        return NAN, NAN
    low, high = wilson_interval(edited_hits / n, n)
    base = baseline_hits / n
    return 100.0 * low / base, 100.0 * high / base


class Step(NamedTuple):
    start: float  # utility threshold t from ...
    end: float  # ... to (R is constant on start < t < end)
    removed: float  # R(t): the most memorization removed (100 − % kept) at utility >= t


def front_steps(points: Iterable[tuple[float, float]], low: float = AREA_RANGE[0],
                high: float = AREA_RANGE[1]) -> list[Step]:
    """The front of (utility, memorization % kept) points as steps over [low, high]: R(t) =
    max(0, max of 100 − memorization over the points with utility >= t). Points with a non-finite
    coordinate are left out. R changes only at the points' utilities, so between two neighbouring
    utilities it is the max over the points at or above the upper one."""
    pts = [(float(u), float(m)) for u, m in points if _finite(u) and _finite(m)]
    cuts = sorted({low, high} | {u for u, _ in pts if low < u < high})
    return [Step(a, b, max([0.0] + [100.0 - m for u, m in pts if u >= b])) for a, b in zip(cuts, cuts[1:])]


def front_area(points: Iterable[tuple[float, float]], low: float = AREA_RANGE[0],
               high: float = AREA_RANGE[1]) -> float:
    """Mean of R(t) over t in [low, high] (front_steps), integrated exactly."""
    return sum((s.end - s.start) * s.removed for s in front_steps(points, low, high)) / (high - low)


def best_setting(configs: Sequence[Any], threshold: float) -> Any | None:
    """Of configurations (objects with variant, utility_mean, selection_mean), the one with the
    lowest mean selection (tune-split memorization) among those whose mean utility is >= threshold
    (ties: the higher utility, then the label); None when none reaches it."""
    eligible = [c for c in configs if _finite(c.utility_mean) and c.utility_mean >= threshold
                and _finite(c.selection_mean)]
    return min(eligible, key=lambda c: (c.selection_mean, -c.utility_mean, c.variant), default=None)


# --- DataFrames -----------------------------------------------------------------------------------

RUN_IDS = ["model", "suite", "method", "variant", "config_key", "replicate", "config_hash", "data_needed"]


def run_scores(long: "pandas.DataFrame") -> "pandas.DataFrame":
    """One row per run: utility, memorization (% kept) and its family, and that family's counts
    pooled over its tasks for the interval (mem_n examples, mem_edited_hits and mem_baseline_hits =
    Σ rate·n, nan when its metric is not a proportion)."""
    import pandas as pd

    rows = []
    prim = long[long.primary]
    for (model, suite), ms in prim.groupby(["model", "suite"], sort=False):
        family = memorization_family(ms.family)
        for key, run in ms.groupby(RUN_IDS[2:], sort=False, dropna=False):
            row = dict(zip(RUN_IDS, (model, suite) + key))
            row["utility"] = run_utility(zip(run.family, run.pct_kept))
            mem = run[run.family == family]
            proportion = not mem.empty and bool((mem.kind == "proportion").all())
            mia = run[run.family == MEMBERSHIP_FAMILY]
            row["membership"] = _mean(mia.edited)
            row["membership_low"] = float(mia.edited_ci_low.min()) if not mia.empty else NAN
            row["membership_high"] = float(mia.edited_ci_high.max()) if not mia.empty else NAN
            tune = run[run.family == SELECTION_FAMILY]
            row["selection_family"] = SELECTION_FAMILY if not tune.empty else family or ""
            row["selection"] = _mean(tune.pct_kept) if not tune.empty else _mean(mem.pct_kept)
            row.update(memorization_family=family or "", memorization=_mean(mem.pct_kept),
                       mem_n=int(mem.n.sum()) if proportion else 0,
                       mem_edited_hits=float((mem.edited * mem.n).sum()) if proportion else NAN,
                       mem_baseline_hits=float((mem.baseline * mem.n).sum()) if proportion else NAN)
            rows.append(row)
    return pd.DataFrame(rows, columns=RUN_IDS + ["utility", "membership", "membership_low", "membership_high",
                                                 "selection_family", "selection", "memorization_family",
                                                 "memorization", "mem_n", "mem_edited_hits", "mem_baseline_hits"])


CONFIG_IDS = ["model", "suite", "method", "variant", "config_key", "data_needed", "selection_family",
              "memorization_family"]


def config_points(scores: "pandas.DataFrame") -> "pandas.DataFrame":
    """One row per configuration: seeds, utility and memorization mean/std over seeds, and the
    memorization's pooled 95 % interval (pooled_interval), in the runs' order."""
    import pandas as pd

    rows = []
    for key, g in scores.groupby(CONFIG_IDS, sort=False):
        row = dict(zip(CONFIG_IDS, key))
        row["seeds"] = g.replicate.nunique()  # distinct seeds, not runs
        row["utility_mean"], row["utility_std"] = mean_std(g.utility.tolist())
        row["selection_mean"], _ = mean_std(g.selection.tolist())
        # membership: the mean AUC over seeds, and the union of the seeds' own 95 % intervals
        row["membership_mean"], _ = mean_std(g.membership.tolist())
        row["membership_ci_low"], row["membership_ci_high"] = g.membership_low.min(), g.membership_high.max()
        row["memorization_mean"], row["memorization_std"] = mean_std(g.memorization.tolist())
        row["memorization_ci_low"], row["memorization_ci_high"] = pooled_interval(
            g.mem_edited_hits.sum(skipna=False), g.mem_baseline_hits.sum(skipna=False), int(g.mem_n.sum()))
        rows.append(row)
    return pd.DataFrame(rows, columns=CONFIG_IDS + ["seeds", "utility_mean", "utility_std", "membership_mean",
                                                    "membership_ci_low", "membership_ci_high", "selection_mean", "memorization_mean",
                                                    "memorization_std", "memorization_ci_low", "memorization_ci_high"])


def _tag(threshold: float) -> str:
    return f"{threshold:g}"


HEADLINE_COLUMNS = (["model", "suite", "selection_family", "memorization_family", "rank", "method", "data_needed"]
                    + [f"{c}_{_tag(t)}" for t in THRESHOLDS
                       for c in ("variant", "selection", "memorization", "memorization_std", "memorization_ci_low",
                                 "memorization_ci_high", "utility", "utility_std", "seeds", "membership",
                                 "membership_ci_low", "membership_ci_high")]
                    + ["area", "area_seed_mean", "area_seed_std", "configs", "seeds", "runs",
                       "method_seconds_median", "device"])


def method_headline_columns(column: MethodColumn) -> list[str]:
    """The headline columns of a column a method declared (core.runcolumns)."""
    if column.role == "count":
        return [f"{column.name}_hits"]
    if column.role == "amount":
        return [f"{column.name}_unit", f"{column.name}_min", f"{column.name}_max"]
    return []


def rank_key(row: dict[str, Any]) -> tuple:
    """Sort key of a headline row (module docstring): memorization kept at each threshold (a method
    with no setting there after those with one), then area (higher first), then the name."""
    key: list[Any] = []
    for t in THRESHOLDS:
        mem = row[f"memorization_{_tag(t)}"]
        key += [0, mem] if _finite(mem) else [1, 0.0]
    return (*key, -row["area"], row["method"])


def _device(names: Iterable[str]) -> str:
    distinct = set(names)
    if len(distinct) > 1:
        return "mixed"
    return next(iter(distinct), "") or "unknown"


def headline_table(long: "pandas.DataFrame", runs: "pandas.DataFrame") -> "pandas.DataFrame":
    """One row per model × suite × method (not the unedited reference): its best setting at each
    threshold, the area of its front, and what it cost (`runs`: aggregate.run_table). Rows: model
    × suite in the long table's order, then by rank."""
    import pandas as pd

    extra = [from_record(e) for e in runs.attrs.get("method_columns", [])]
    columns = HEADLINE_COLUMNS + [n for c in extra for n in method_headline_columns(c)]
    if long.empty:
        return pd.DataFrame(columns=columns)
    scores = run_scores(long)
    points = config_points(scores)
    out = []
    for (model, suite), ms in points.groupby(["model", "suite"], sort=False):
        here = long[(long.model == model) & (long.suite == suite)]
        if no_headline_reason(here.family, here.method) is not None:
            continue  # render says why
        rows = []
        for method, mp in ms[~ms.method.isin(REFERENCE_METHODS)].groupby("method", sort=True):
            sc = scores[(scores.model == model) & (scores.suite == suite) & (scores.method == method)]
            info = runs[(runs.model == model) & (runs.suite == suite) & (runs.method == method)
                        & runs.config_hash.isin(sc.config_hash)]
            row: dict[str, Any] = {"model": model, "suite": suite, "method": method,
                                   "selection_family": mp.selection_family.iloc[0],
                                   "memorization_family": mp.memorization_family.iloc[0],
                                   "data_needed": "/".join(sorted(set(mp.data_needed)))}
            configs = list(mp.itertuples())
            for t in THRESHOLDS:
                best = best_setting(configs, t)
                tag = _tag(t)
                row[f"variant_{tag}"] = best.variant if best else ""
                for col, attr in (("selection", "selection_mean"), ("memorization", "memorization_mean"),
                                  ("memorization_std", "memorization_std"),
                                  ("memorization_ci_low", "memorization_ci_low"),
                                  ("memorization_ci_high", "memorization_ci_high"),
                                  ("utility", "utility_mean"), ("utility_std", "utility_std"), ("seeds", "seeds"),
                                  ("membership", "membership_mean"), ("membership_ci_low", "membership_ci_low"),
                                  ("membership_ci_high", "membership_ci_high")):
                    row[f"{col}_{tag}"] = getattr(best, attr) if best else NAN
            row["area"] = front_area(zip(mp.utility_mean, mp.memorization_mean))
            per_seed = [front_area(zip(g.utility, g.memorization)) for _, g in sc.groupby("replicate", sort=True)]
            row["area_seed_mean"], row["area_seed_std"] = mean_std(per_seed)
            row["configs"], row["seeds"], row["runs"] = len(mp), sc.replicate.nunique(), len(sc)
            row["method_seconds_median"] = float(info.seconds.median()) if info.seconds.notna().any() else NAN
            row["device"] = _device(info.device_name)
            for c in extra:
                if c.role == "count":
                    row[f"{c.name}_hits"] = int((info[c.name] == c.counts).sum())
                elif c.role == "amount":
                    has = info[info[f"{c.name}_unit"] != ""]
                    row[f"{c.name}_unit"] = "/".join(sorted(set(has[f"{c.name}_unit"])))
                    row[f"{c.name}_min"] = float(has[f"{c.name}_inputs"].min()) if not has.empty else NAN
                    row[f"{c.name}_max"] = float(has[f"{c.name}_inputs"].max()) if not has.empty else NAN
            rows.append(row)
        for rank, row in enumerate(sorted(rows, key=rank_key), start=1):
            row["rank"] = rank
            out.append(row)
    table = pd.DataFrame(out, columns=columns)
    table.attrs["method_columns"] = [c.record() for c in extra]
    return table
