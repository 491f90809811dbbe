"""The trade-off sweep of the fidelity study (`python -m studies.fidelity sweep`): every method
at every strength setting over organism seeds, and its Markdown table (docs/fidelity_sweep.md)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from core.measures import components_kept, task_kept
from core.runrecord import REPLICATE_KEYS as SEED_KEYS  # each seed trains its own organism and seeds its runs
from studies.organism_claims import findings

RunConfig = Callable[..., "dict[str, Any] | None"]  # (overrides, finished_only=...) -> run file or None


def sweep(run_config: RunConfig, seeds: list[int], rhos: list[float], svd_fractions: list[float],
          finished_only: bool = False, overrides: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The trade-off study: kfac and random_ablation at every rho, svd at every fraction, for
    every organism seed (each seed trains its own organism), each run with `overrides` after its
    own, made (or with `finished_only` only read back) by `run_config` (studies.fidelity's)."""
    records = []
    for seed in seeds:
        base = [f"{key}={seed}" for key in SEED_KEYS]
        for method, own, setting, _ in sweep_plans(rhos, svd_fractions):
            run = run_config([*base, *own, *overrides], finished_only=finished_only)
            if run is None:
                continue
            records.append({"seed": seed, "method": method, "setting": setting,
                            "components_kept": components_kept(run["method"]["report"].get("changed") or {}),
                            "kept": {t: task_kept(run, t) for t in sorted(run["baseline"]["tasks"])},
                            "findings": findings(run) if method == "kfac" else []})
    return records


def sweep_plans(rhos: list[float], svd_fractions: list[float]) -> list[tuple[str, list[str], float | None, str]]:
    """(method, its overrides, its setting, the option that asked for it) of every run of one seed."""
    plans: list[tuple[str, list[str], float | None, str]] = [("none", ["method=none"], None, "")]
    plans += [(m, [f"method={m}", f"method.rho={r}"], r, f"--rhos {r}")
              for m in ("kfac", "random_ablation") for r in rhos]
    plans += [("svd", ["method=svd", f"method.fractions={{gate:{f},up:{f},down:{f}}}"], f, f"--svd-fractions {f}")
              for f in svd_fractions]
    return plans


def sweep_table(records: list[dict[str, Any]], changed: Sequence[str] = ()) -> str:
    """Markdown: one row per (method, setting), % of baseline kept per task, mean ± std over seeds;
    made with overrides that change the numbers (`changed`), a heading says which."""
    heading = ("" if not changed else
               f"Organism and runs: conf/model/organism.yaml and conf/config.yaml with {' '.join(changed)} "
               f"(and each row's seeds as {' and '.join(SEED_KEYS)}).\n\n")
    tasks = sorted({t for r in records for t in r["kept"]})
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["setting"]), []).append(r)
    fmt = lambda xs: "n/a" if not xs else (f"{100 * statistics.fmean(xs):.0f}" + (f" ± {100 * statistics.stdev(xs):.0f}" if len(xs) > 1 else ""))  # noqa: E731
    lines = [heading + "| method | setting | seeds | components kept | " + " | ".join(tasks) + " |",
             "|---|---|---|---|" + "---|" * len(tasks)]
    for (method, setting), rs in groups.items():
        comp = [r["components_kept"] for r in rs if r["components_kept"] is not None]
        cells = [fmt([r["kept"][t] for r in rs if r["kept"].get(t) is not None]) for t in tasks]
        share = "-" if not comp else f"{100 * statistics.fmean(comp):.2f} %"
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"| {method} | {setting if setting is not None else '-'} | {seeds} | {share} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\n% of baseline kept (mean ± std over the seeds listed in each row).\n"
    found = [(r, line) for r in records for line in r.get("findings", [])]
    if found:
        text += ("\nK-FAC, per seed and rho: unedited -> edited score, % kept with its paired-bootstrap 95 % "
                 "interval (core.measures.paired_kept_interval).\n\n")
        text += "".join(f"- seed {r['seed']}, rho {r['setting']}: {line}\n" for r, line in found)
    return text
