"""Fidelity checks: on the organism, where the truth is known, does the harness show what the
paper reports? Used by the CI regression tests and by the fidelity study (docs/fidelity.md).

    python -m harness.fidelity check [--reference tests/regression/reference.json]   # runs, claims, diff
    python -m harness.fidelity write-reference --out tests/regression/reference.json # regenerate it
    python -m harness.fidelity sweep --seeds 0 1 2    # the rho sweep study (slow), then a table

Runs go through the normal pipeline (`run_experiment`), so they land in `runs/` as run files,
reuse the cached baseline and K-FAC factors, and resume when interrupted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from core.io import atomic_write_json, atomic_write_text

SUITE = "organism_full"
# The runs CI makes: name -> Hydra overrides (the organism default model and seed).
REGRESSION_RUNS: dict[str, list[str]] = {
    "none": ["method=none"],
    "kfac": ["method=kfac"],
    "random_ablation": ["method=random_ablation"],
    "balanced_subnet": ["method=balanced_subnet"],
}
SKILLS = ("logic", "qa_open")  # task instances the fidelity claims protect
# Absolute tolerance for proportions and relative tolerance for other metrics (perplexity), when
# comparing against the committed reference. Training the organism on another machine (another
# BLAS, another thread count) changes its weights slightly; these bounds absorb that, not a bug.
TOLERANCE = {"proportion": 0.10, "relative": 0.10}


def run_config(overrides: list[str], runs_dir: Path | None = None, finished_only: bool = False) -> dict[str, Any] | None:
    """Compose the config with `overrides` (as on the command line) and run it; with
    `finished_only`, return its finished run file if there is one (else None) and run nothing."""
    from hydra import compose, initialize_config_dir

    from harness.app import CONF_DIR
    from harness.pipeline import resolve_config, run_experiment

    extra = [f"runs_dir={runs_dir}"] if runs_dir is not None else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[f"suite={SUITE}", *overrides, *extra])
    if not finished_only:
        return run_experiment(cfg)
    from models import model_name
    from core.runrecord import config_hash, read_json, run_path

    config = resolve_config(cfg)
    config["model"]["name"] = model_name(config["model"])
    identity = {"model": config["model"]["name"], "method": config["method"]["name"],
                "suite": config["suite"]["name"], "seed": config["seed"], "config_hash": config_hash(config)}
    run = read_json(run_path(Path(config["runs_dir"]), identity))
    return run if run is not None and run.get("status") == "complete" else None


def primary(entry: dict[str, Any]) -> float:
    return float(entry["metrics"][entry["primary"]])


def kept(run: dict[str, Any], task: str) -> float | None:
    """Share of the baseline kept on `task`'s primary metric: edited / baseline, or baseline /
    edited for a lower-is-better metric (perplexity), so 1.0 = unchanged and < 1 = worse or less.
    None when the baseline is 0."""
    base, edited = run["baseline"]["tasks"][task], run["edited"]["tasks"][task]
    b, e = primary(base), primary(edited)
    if not base["higher_is_better"][base["primary"]]:
        b, e = e, b
    return None if b == 0 else e / b


def claims(runs: dict[str, dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    """The paper's qualitative findings at the organism defaults: claim -> (holds, numbers)."""
    out: dict[str, tuple[bool, str]] = {}
    k = {t: kept(runs["kfac"], t) for t in ("verbatim_validation", *SKILLS)}
    out["kfac removes memorized validation passages (<= 10% kept)"] = (
        k["verbatim_validation"] is not None and k["verbatim_validation"] <= 0.10,
        f"validation recall kept {k['verbatim_validation']}")
    for skill in SKILLS:
        out[f"kfac keeps {skill} (>= 90% kept)"] = (k[skill] is not None and k[skill] >= 0.90, f"{skill} kept {k[skill]}")
    # Coherence, the paper's perplexity column: booleans and open-book reading barely use the MLPs
    # on the organism (a K-FAC keeping the LOWEST-curvature components still keeps them, and
    # wrecks perplexity, quotes and arithmetic), so they alone cannot tell a working edit.
    ppl = kept(runs["kfac"], "perplexity")
    out["kfac keeps perplexity (>= 90% kept: mean NLL rises <= 11%)"] = (ppl is not None and ppl >= 0.90, f"perplexity kept {ppl}")
    if "random_ablation" in runs:
        mean = lambda run: statistics.fmean(kept(run, t) or 0.0 for t in SKILLS)  # noqa: E731
        kf, ra = mean(runs["kfac"]), mean(runs["random_ablation"])
        out["kfac keeps more skills than random_ablation at the same count"] = (kf > ra, f"kfac {kf:.3f} vs random {ra:.3f}")
    return out


def summary(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Task -> {"baseline": primary, "edited": primary, "kind": kind of the primary metric}."""
    out = {}
    for task, base in sorted(run["baseline"]["tasks"].items()):
        edited = run["edited"]["tasks"][task]
        out[task] = {"baseline": round(primary(base), 4), "edited": round(primary(edited), 4),
                     "kind": base["kinds"][base["primary"]]}
    return out


def reference_differences(current: dict[str, dict[str, dict[str, float]]],
                          reference: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """One line for every (run, task, baseline|edited) number outside the tolerance of the
    reference, or missing on either side."""
    problems = []
    for run_name, tasks in sorted(reference.items()):
        for task, ref in sorted(tasks.items()):
            got = current.get(run_name, {}).get(task)
            if got is None:
                problems.append(f"{run_name}/{task}: missing from the current results")
                continue
            for role in ("baseline", "edited"):
                r, g = ref[role], got[role]
                if ref["kind"] == "proportion":
                    ok, bound = abs(g - r) <= TOLERANCE["proportion"], f"±{TOLERANCE['proportion']}"
                else:
                    ok, bound = abs(g - r) <= TOLERANCE["relative"] * abs(r), f"±{TOLERANCE['relative']:.0%}"
                if not ok:
                    problems.append(f"{run_name}/{task} {role}: {g} vs reference {r} ({bound})")
    return problems


def organism_build(run: dict[str, Any]) -> dict[str, Any]:
    """Which organism build a run used: its settings hash, a digest of its weights, and where it
    was trained. Organisms trained on different CPUs (another SIMD width, another thread count)
    differ in their weights, and near the edit's transition their numbers differ by more than
    the tolerance: a reference is only comparable with the build it was made on."""
    from core.hashing import bytes_hash

    from models.organism import settings_hash

    key = settings_hash(run["config"]["model"]["organism"])
    folder = Path(run["config"]["cache_dir"]) / "organism" / key
    weights = bytes_hash((folder / "model" / "model.safetensors").read_bytes(), 16)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {"settings_hash": key[:16], "weights_sha256": weights, "threads": manifest.get("threads"),
            "versions": manifest.get("versions"), "cpu": cpu_name()}


def cpu_name() -> str:
    """The CPU model and its widest vector extension (what changes an organism's floats)."""
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return f"{model or platform.machine()}, {vector}"


def reference_record(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What `write-reference` writes: the organism build and each regression run's numbers."""
    return {"build": organism_build(runs["none"]), "runs": {name: summary(run) for name, run in runs.items()}}


def regression_runs(runs_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    return {name: run_config(overrides, runs_dir) for name, overrides in REGRESSION_RUNS.items()}


def sweep(seeds: list[int], rhos: list[float], svd_fractions: list[float],
          finished_only: bool = False) -> list[dict[str, Any]]:
    """The trade-off study: kfac and random_ablation at every rho, svd at every fraction, for
    every organism seed (each seed trains its own organism). `finished_only` tabulates the runs
    already finished and runs nothing."""
    records = []
    for seed in seeds:
        base = [f"model.organism.seed={seed}", f"seed={seed}"]
        plans = [("none", ["method=none"], None)]
        plans += [(m, [f"method={m}", f"method.rho={r}"], r) for m in ("kfac", "random_ablation") for r in rhos]
        plans += [("svd", ["method=svd", f"method.fractions={{gate:{f},up:{f},down:{f}}}"], f) for f in svd_fractions]
        for method, overrides, setting in plans:
            run = run_config(base + overrides, finished_only=finished_only)
            if run is None:
                continue
            records.append({"seed": seed, "method": method, "setting": setting,
                            "components_kept": components_kept(run),
                            "kept": {t: kept(run, t) for t in sorted(run["baseline"]["tasks"])}})
    return records


def components_kept(run: dict[str, Any]) -> float | None:
    """Share of eigenbasis components (or singular values) kept over all edited matrices."""
    changed = run["method"]["report"].get("changed") or {}
    total = sum(c.get("components_total", 0) for c in changed.values())
    removed = sum(c.get("components_removed", 0) for c in changed.values())
    return None if not total else 1 - removed / total


def sweep_table(records: list[dict[str, Any]]) -> str:
    """Markdown: one row per (method, setting), % of baseline kept per task, mean ± std over seeds."""
    tasks = sorted({t for r in records for t in r["kept"]})
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["setting"]), []).append(r)
    fmt = lambda xs: "n/a" if not xs else (f"{100 * statistics.fmean(xs):.0f}" + (f" ± {100 * statistics.stdev(xs):.0f}" if len(xs) > 1 else ""))  # noqa: E731
    lines = ["| method | setting | seeds | components kept | " + " | ".join(tasks) + " |",
             "|---|---|---|---|" + "---|" * len(tasks)]
    for (method, setting), rs in groups.items():
        comp = [r["components_kept"] for r in rs if r["components_kept"] is not None]
        cells = [fmt([r["kept"][t] for r in rs if r["kept"].get(t) is not None]) for t in tasks]
        share = "-" if not comp else f"{100 * statistics.fmean(comp):.2f} %"
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(f"| {method} | {setting if setting is not None else '-'} | {seeds} | {share} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n% of baseline kept (mean ± std over the seeds listed in each row).\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fidelity", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="regression runs, fidelity claims, reference comparison")
    check.add_argument("--reference", type=Path, help="reference JSON to compare with (CI: tests/regression/reference.json)")
    write = sub.add_parser("write-reference", help="write the regression runs' numbers as a reference JSON")
    write.add_argument("--out", type=Path, required=True, help="where to write it (CI reads tests/regression/reference.json)")
    sw = sub.add_parser("sweep", help="rho sweep over organism seeds (slow)")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sw.add_argument("--rhos", type=float, nargs="+", default=[0.8, 0.9, 0.95, 0.98, 0.99, 0.999])
    sw.add_argument("--svd-fractions", type=float, nargs="+", default=[0.05, 0.2, 0.5])
    sw.add_argument("--out", type=Path, default=Path("docs/fidelity_sweep.md"))
    sw.add_argument("--finished-only", action="store_true", help="tabulate finished runs, run nothing")
    args = parser.parse_args(argv)

    if args.command == "sweep":
        records = sweep(args.seeds, args.rhos, args.svd_fractions, args.finished_only)
        table = sweep_table(records)
        atomic_write_text(args.out, table)
        print(table)
        return 0
    runs = regression_runs()
    current = reference_record(runs)
    if args.command == "write-reference":
        atomic_write_json(args.out, current, sort_keys=True)
        print(f"wrote {args.out}; review the diff before committing")
        return 0
    failed = False
    for claim, (holds, numbers) in claims(runs).items():
        print(f"{'PASS' if holds else 'FAIL'}  {claim}: {numbers}")
        failed |= not holds
    reference = json.loads(args.reference.read_text()) if args.reference else {"runs": {}}
    for line in reference_differences(current["runs"], reference["runs"]):
        print(f"DIFF  {line}")
        failed = True
    if reference.get("build") not in (None, current["build"]):
        print(f"NOTE  the reference was made on another organism build: {reference['build']} (now {current['build']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
