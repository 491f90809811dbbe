"""From validated runs to pandas tables.

`long_table`: one row per run × task × metric, baseline and edited value with 95 % intervals and
the edited value as % of baseline ("% kept"). `summary_table`: one row per config × task
(primary metric), seeds aggregated to mean ± std. `family_table`: one row per run × family, the
mean % kept over the family's tasks (for plots).

% kept: core.measures.percent_kept, oriented by the metric's direction and the family's goal
(defined there once; the run table uses the same function). Lower is better for a family whose
content a method should remove, higher for a skill (docs/leaderboard.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.families import family_goal, family_rank
from core.hashing import canonical_hash
from core.measures import percent_kept
from core.runcolumns import MethodColumn, amount_value, count_value, declared_columns, setting_value
from core.runrecord import REPLICATE_KEYS, RUNTIME_ONLY_KEYS, replicate_of, without_paths
from core.measures import interval, mean_std, metric_n

REFERENCE_METHODS = ("none",)  # the unedited model as a "method": a reference point, never a contestant
# The long table's columns; the methods' setting columns (core.runcolumns, role "setting") go
# between `variant` and `config_key` (setting_names reads them back from a table).
LONG_COLUMNS = ["model", "suite", "method", "variant", "config_key", "seed", "replicate", "config_hash",
                "baseline_key", "data_needed",
                "family", "task", "metric", "primary", "kind", "higher_is_better", "n",
                "baseline", "baseline_ci_low", "baseline_ci_high",
                "edited", "edited_ci_low", "edited_ci_high", "pct_kept"]


def pct_kept(edited: float, baseline: float, family: str, higher_is_better: bool) -> float:
    """core.measures.percent_kept (oriented per metric direction and family goal); nan if undefined."""
    pct = percent_kept(edited, baseline, higher_is_better, family_goal(family))
    return float("nan") if pct is None else pct


def data_needed_label(needed: list[str]) -> str:
    return "+".join(n for n in ("forget", "retain") if n in needed) or "none"


def config_key(config: dict[str, Any]) -> str:
    """Hash of the resolved config less the replicate keys (the run seed and the organism's seed,
    core.runrecord.REPLICATE_KEYS) and the runtime-only keys: runs that differ only in seed share
    it and aggregate to mean ± std."""
    return canonical_hash(without_paths({k: v for k, v in config.items() if k not in RUNTIME_ONLY_KEYS},
                                        REPLICATE_KEYS))[:12]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": leaf} (empty mappings are leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v: Any) -> str:
    if isinstance(v, float):
        return format(v, "g")
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def _varying(flat: dict[str, dict[str, Any]]) -> list[str]:
    """The dotted keys whose shown value differs between the flattened configs."""
    names = sorted({n for f in flat.values() for n in f})
    return [n for n in names if len({_show(f.get(n)) for f in flat.values()}) > 1]


def _outside_method(config: dict[str, Any]) -> dict[str, Any]:
    """A config's settings outside `method`, flattened, less the replicate and runtime-only keys
    (what config_key leaves out)."""
    rest = without_paths({k: v for k, v in config.items() if k not in RUNTIME_ONLY_KEYS and k != "method"},
                         REPLICATE_KEYS)
    return flatten(rest)


def _shown(values: dict[str, Any]) -> dict[str, str]:
    """key -> shown value; a file path shows its name when the names alone tell the configs apart."""
    shown = {k: _show(v) for k, v in values.items()}
    names = {k: Path(v).name for k, v in shown.items() if isinstance(values[k], str) and "/" in v}
    if len(names) == len(shown) and len(set(names.values())) == len(names):
        return names
    return shown


def variant_labels(configs: dict[str, dict[str, Any]], methods: dict[str, str]) -> dict[str, tuple[str, int]]:
    """config_key → (label, display rank) for the configs of one model × suite (rank: by method
    name, then by the varying settings, numbers numerically).

    A label is the method name plus the method settings that differ between its configs, e.g.
    `kfac (rho=0.8)`. Configs of a method whose method settings are the same but that differ
    elsewhere (another data file, batch size, suite option) are told apart by those settings, as
    dotted keys, e.g. `kfac (model.data.stats=wiki.txt)`; only configs that no shown setting tells
    apart (none should) get a config hash suffix."""
    by_method: dict[str, list[str]] = {}
    for key, method in methods.items():
        by_method.setdefault(method, []).append(key)
    labels: dict[str, tuple[str, tuple]] = {}  # key → (label, sort key)
    for method, keys in by_method.items():
        flat = {k: flatten({kk: vv for kk, vv in configs[k].get("method", {}).items() if kk != "name"}) for k in keys}
        varying = _varying(flat)
        same: dict[tuple, list[str]] = {}  # the configs the method settings leave alike
        for k in keys:
            same.setdefault(tuple(_show(flat[k].get(n)) for n in varying), []).append(k)
        extra: dict[str, list[tuple[str, str]]] = {k: [] for k in keys}
        for group in same.values():
            if len(group) > 1:
                outside = {k: _outside_method(configs[k]) for k in group}
                for n in _varying(outside):
                    for k, v in _shown({k: outside[k].get(n) for k in group}).items():
                        extra[k].append((n, v))
        for k in keys:
            shown = [f"{n}={_show(flat[k].get(n))}" for n in varying] + [f"{n}={v}" for n, v in extra[k]]
            label = method + (f" ({', '.join(shown)})" if shown else "")
            sort = tuple((0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, _show(v))
                         for v in (flat[k].get(n) for n in varying)) + tuple((1, 0, v) for _, v in extra[k])
            labels[k] = (label, (method, sort))
    seen: dict[str, int] = {}
    for label, _ in labels.values():
        seen[label] = seen.get(label, 0) + 1
    order = sorted(labels, key=lambda k: (labels[k][1], k))
    return {k: ((labels[k][0] + f" #{k[:8]}" if seen[labels[k][0]] > 1 else labels[k][0]), order.index(k))
            for k in labels}


def _baseline_key(run: dict[str, Any]) -> str:
    """The run's baseline evaluation (core.runrecord.baseline_key, first 12 hex; "" if the file
    has none): runs sharing it were compared against the same unedited numbers."""
    return str(run["baseline"].get("key", ""))[:12]


def declared(runs: list[tuple[Path, dict[str, Any]]], role: str) -> list[MethodColumn]:
    """The columns of `role` the runs' methods declared (core.runcolumns), each name once, in
    the order first declared."""
    found: dict[str, MethodColumn] = {}
    for _, run in runs:
        for column in declared_columns(run):
            if column.role == role:
                found.setdefault(column.name, column)
    return list(found.values())


def long_columns(settings: list[str]) -> list[str]:
    at = LONG_COLUMNS.index("config_key")
    return LONG_COLUMNS[:at] + settings + LONG_COLUMNS[at:]


def setting_names(table: "pandas.DataFrame") -> list[str]:
    """The setting columns of a long (or family) table: those between `variant` and `config_key`."""
    cols = list(table.columns)
    return cols[cols.index("variant") + 1:cols.index("config_key")]


def run_variant_labels(runs: list[tuple[Path, dict[str, Any]]]) -> dict[tuple[str, str], dict[str, tuple[str, int]]]:
    """(model, suite) -> `variant_labels` of its runs' configs."""
    configs: dict[tuple[str, str], dict[str, dict]] = {}
    methods: dict[tuple[str, str], dict[str, str]] = {}
    for _, run in runs:
        ident, key = run["identity"], config_key(run["config"])
        configs.setdefault((ident["model"], ident["suite"]), {})[key] = run["config"]
        methods.setdefault((ident["model"], ident["suite"]), {})[key] = ident["method"]
    return {ms: variant_labels(configs[ms], methods[ms]) for ms in configs}


def own_interval(entry: dict[str, Any], metric: str) -> tuple[float, float] | None:
    """The interval a task recorded for `metric` itself (e.g. a membership AUC's bootstrap), if any."""
    got = (entry.get("intervals") or {}).get(metric)
    return (float(got[0]), float(got[1])) if isinstance(got, (list, tuple)) and len(got) == 2 else None


def long_table(runs: list[tuple[Path, dict[str, Any]]]) -> "pandas.DataFrame":
    import pandas as pd

    settings = declared(runs, "setting")
    rows = []
    for _, run in runs:
        ident, key = run["identity"], config_key(run["config"])
        own = {c.name for c in declared_columns(run)}
        values = {c.name: setting_value(run, c) if c.name in own else float("nan") for c in settings}
        base_tasks = run["baseline"]["tasks"]
        for task, edit in run["edited"]["tasks"].items():
            base = base_tasks[task]
            for metric in sorted(edit["metrics"]):
                hib = bool(edit["higher_is_better"].get(metric, True))
                kind = edit["kinds"].get(metric, "value")
                b, e = base["metrics"].get(metric, float("nan")), edit["metrics"][metric]
                b_lo, b_hi = own_interval(base, metric) or interval(kind, b, metric_n(base, metric), base.get("samples", {}).get(metric))
                e_lo, e_hi = own_interval(edit, metric) or interval(kind, e, metric_n(edit, metric), edit.get("samples", {}).get(metric))
                rows.append({
                    "model": ident["model"], "suite": ident["suite"], "method": ident["method"],
                    **values,
                    "config_key": key, "seed": ident["seed"], "replicate": replicate_of(run["config"]),
                    "config_hash": ident["config_hash"][:12], "baseline_key": _baseline_key(run),
                    "data_needed": data_needed_label(run["method"]["data_needed"]),
                    "family": edit["family"], "task": task, "metric": metric,
                    "primary": metric == edit["primary"], "kind": kind, "higher_is_better": hib, "n": metric_n(edit, metric),
                    "baseline": b, "baseline_ci_low": b_lo, "baseline_ci_high": b_hi,
                    "edited": e, "edited_ci_low": e_lo, "edited_ci_high": e_hi,
                    "pct_kept": pct_kept(e, b, edit["family"], hib),
                })
    labels = run_variant_labels(runs)
    for row in rows:
        row["variant"] = labels[(row["model"], row["suite"])][row["config_key"]][0]
    df = pd.DataFrame(rows, columns=long_columns([c.name for c in settings]))
    df.attrs["setting_labels"] = {c.name: c.label or c.name for c in settings}
    if df.empty:
        return df
    df["_variant_sort"] = [labels[(m, s)][k][1] for m, s, k in zip(df.model, df.suite, df.config_key)]
    df["_family_sort"] = [family_rank(f) for f in df.family]
    df = df.sort_values(["model", "suite", "_variant_sort", "seed", "_family_sort", "task", "metric"], kind="stable")
    out = df.drop(columns=["_variant_sort", "_family_sort"]).reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


RUN_COLUMNS = ["model", "suite", "method", "config_key", "replicate", "config_hash", "seconds", "device_name"]


def run_table(runs: list[tuple[Path, dict[str, Any]]]) -> "pandas.DataFrame":
    """One row per run: what the method cost. `seconds` is the method's own time (the pipeline's
    report["seconds"], device-dependent); `device_name` from the run's environment; then the
    columns the methods declared (core.runcolumns): a count column's text value, an amount
    column's `<name>_unit` and `<name>_inputs` (empty / nan in runs whose method lacks them).
    df.attrs["method_columns"] lists the count and amount columns."""
    import pandas as pd

    extra = declared(runs, "count") + declared(runs, "amount")
    columns = RUN_COLUMNS + [n for c in extra for n in ([c.name] if c.role == "count" else [f"{c.name}_unit", f"{c.name}_inputs"])]
    rows = []
    for _, run in runs:
        ident, report = run["identity"], run["method"].get("report") or {}
        row = {"model": ident["model"], "suite": ident["suite"], "method": ident["method"],
               "config_key": config_key(run["config"]), "replicate": replicate_of(run["config"]),
               "config_hash": ident["config_hash"][:12], "seconds": _number(report.get("seconds")),
               "device_name": str((run.get("environment") or {}).get("device_name") or "")}
        own = {c.name for c in declared_columns(run)}
        for c in extra:
            if c.role == "count":
                row[c.name] = count_value(run, c) if c.name in own else ""
            else:
                row[f"{c.name}_unit"], row[f"{c.name}_inputs"] = amount_value(run, c) if c.name in own else ("", float("nan"))
        rows.append(row)
    df = pd.DataFrame(rows, columns=columns)
    df.attrs["method_columns"] = [c.record() for c in extra]
    return df


def summary_table(long: "pandas.DataFrame") -> "pandas.DataFrame":
    """Primary metrics, one row per model × suite × config × task, in the long table's order:
    seeds, % kept mean/std, edited mean/std, baseline mean/std, and the 95 % interval of the
    edited value when there is a single seed (several seeds: their spread is the std)."""
    import pandas as pd

    prim = long[long.primary]
    keys = ["model", "suite", "method", "variant", "config_key", "data_needed", "family", "task", "metric"]
    rows = []
    for group, g in prim.groupby(keys, sort=False):
        row = dict(zip(keys, group))
        row["seeds"] = g.replicate.nunique()  # distinct seeds: two runs of one seed are not two seeds
        row["pct_kept_mean"], row["pct_kept_std"] = mean_std(g.pct_kept.tolist())
        row["edited_mean"], row["edited_std"] = mean_std(g.edited.tolist())
        row["baseline_mean"], row["baseline_std"] = mean_std(g.baseline.tolist())
        single = len(g) == 1
        row["edited_ci_low"] = g.edited_ci_low.iloc[0] if single else float("nan")
        row["edited_ci_high"] = g.edited_ci_high.iloc[0] if single else float("nan")
        row["baseline_ci_low"] = g.baseline_ci_low.iloc[0] if single else float("nan")
        row["baseline_ci_high"] = g.baseline_ci_high.iloc[0] if single else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def family_table(long: "pandas.DataFrame") -> "pandas.DataFrame":
    """One row per run × family: mean % kept over the family's tasks (primary metrics)."""
    prim = long[long.primary]
    keys = ["model", "suite", "method", "variant", *setting_names(long), "config_key", "seed", "family"]
    out = prim.groupby(keys, sort=False, as_index=False, dropna=False).agg(pct_kept=("pct_kept", "mean"))
    out.attrs["setting_labels"] = dict(long.attrs.get("setting_labels", {}))
    return out


# --- Attacks (issue 16, docs/attacks.md) -------------------------------------------------------

ATTACK_COLUMNS = ["model", "suite", "method", "variant", "config_key", "data_needed", "seed", "baseline_key", "unit", "attack", "setting", "steps",
                  "family", "task", "metric", "kind", "n", "edited", "edited_ci_low", "edited_ci_high",
                  "baseline", "baseline_ci_low", "baseline_ci_high", "edited_no_attack", "baseline_no_attack"]


def attack_long_table(runs: list[tuple[Path, dict[str, Any]]]) -> "pandas.DataFrame":
    """One row per run × attack unit × task (primary metric): the attacked edited model's value
    (`edited`) and the attacked unedited model's (`baseline`) with 95 % intervals, beside both
    models' values without the attack. Runs without attack results add no rows."""
    import pandas as pd

    from core.attackrecords import attack_rows

    labels = run_variant_labels(runs)
    rows, columns = [], {}
    for _, run in runs:
        ident, key = run["identity"], config_key(run["config"])
        for r in attack_rows(run):
            columns.setdefault(r["unit"], r["column"])
            e_lo, e_hi = interval(r["kind"], r["edited_attacked"], r["n"], r["edited_samples"])
            b = r["unedited_attacked"]
            b_lo, b_hi = (interval(r["kind"], b, r["n"], r["unedited_samples"]) if b is not None
                          else (float("nan"), float("nan")))
            rows.append({"model": ident["model"], "suite": ident["suite"], "method": ident["method"],
                         "variant": labels[(ident["model"], ident["suite"])][key][0], "config_key": key,
                         "data_needed": data_needed_label(run["method"]["data_needed"]),
                         "baseline_key": _baseline_key(run),
                         "seed": ident["seed"], "unit": r["unit"], "attack": r["attack"], "setting": r["setting"],
                         "steps": r["steps"], "family": r["family"], "task": r["task"], "metric": r["metric"],
                         "kind": r["kind"], "n": r["n"], "edited": r["edited_attacked"], "edited_ci_low": e_lo,
                         "edited_ci_high": e_hi, "baseline": float("nan") if b is None else b,
                         "baseline_ci_low": b_lo, "baseline_ci_high": b_hi,
                         "edited_no_attack": _number(r["edited_no_attack"]),
                         "baseline_no_attack": _number(r["unedited_no_attack"])})
    df = pd.DataFrame(rows, columns=ATTACK_COLUMNS)
    df.attrs["unit_columns"] = columns  # unit -> the column its attack declared (core.attackrecords)
    return df


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def attack_summary(attacks: "pandas.DataFrame") -> "pandas.DataFrame":
    """One row per model × suite × variant × unit × task: seeds, mean ± std of the attacked
    edited and unedited values and of the unattacked edited value; the 95 % interval when there
    is a single seed (as summary_table does)."""
    import pandas as pd

    keys = ["model", "suite", "method", "variant", "data_needed", "unit", "attack", "setting", "steps", "family", "task", "metric"]
    rows = []
    for group, g in attacks.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, group))
        row["seeds"] = len(g)
        for col in ("edited", "baseline", "edited_no_attack", "baseline_no_attack"):
            row[f"{col}_mean"], row[f"{col}_std"] = mean_std(g[col].tolist())
        single = len(g) == 1
        for col in ("edited_ci_low", "edited_ci_high", "baseline_ci_low", "baseline_ci_high"):
            row[col] = g[col].iloc[0] if single else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["unit_columns"] = dict(attacks.attrs.get("unit_columns", {}))
    return out
