"""Writes the fixture run files in tests/leaderboard/fixtures/ (schema_version 1, docs/DESIGN.md).

Hand-made numbers, not pipeline output: every metric is the mean of its per-example samples, and
each method scales memorization and skills by its own factors so the tables have a clear shape.
Regenerate (then the expected outputs, see docs/leaderboard.md):
    .venv/bin/python tests/leaderboard/make_fixtures.py
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from core.runrecord import baseline_key, config_hash, run_path

HERE = Path(__file__).resolve().parent / "fixtures"

# (instance, registered task, family, baseline rate, kind of task)
FULL_SUITE = [
    ("verbatim_forget", "verbatim", "memorized", 0.90, "verbatim"),
    ("verbatim_validation", "verbatim", "memorized_val", 0.85, "verbatim"),
    ("verbatim_control", "verbatim", "control", 0.05, "verbatim"),
    ("quotes", "quotes", "quotes", 0.70, "verbatim"),
    ("qa_closed", "qa", "qa_closed", 0.60, "exact"),
    ("qa_open", "qa", "qa_open", 0.80, "exact"),
    ("arithmetic", "arithmetic", "math", 0.50, "exact"),
    ("logic", "logic", "logic", 0.75, "exact"),
    ("copy", "logic", "logic", 0.65, "exact"),
    ("perplexity", "perplexity", "coherence", 3.0, "nll"),
]
SMALL_SUITE = FULL_SUITE[:4]
REMOVE = {"memorized", "memorized_val", "quotes"}

# method settings → (share of memorization left, share of skills left, data_needed)
def effect(method: str, params: dict) -> tuple[float, float, list[str]]:
    if method == "none":
        return 1.0, 1.0, []
    if method == "kfac":
        rho = params["rho"]
        return {0.6: (0.10, 0.85), 0.8: (0.30, 0.92), 0.9: (0.50, 0.97)}[rho] + ([],)
    if method == "random_ablation":
        return 0.95, 0.90, []
    if method == "svd":
        return 0.80, 0.95, []
    if method == "balanced_subnet":
        return 0.20, 0.80, ["forget", "retain"]
    raise ValueError(method)


def method_report(method: str, params: dict, seed: int) -> dict:
    """What the pipeline records about the method: its seconds and, for K-FAC and random ablation,
    the statistics tokens and whether the factors came from the cache (seed 0's first K-FAC rho
    collects them, its other rhos reuse them: fast)."""
    report = {"changed": {} if method == "none" else {"x": {}}}
    seconds = {"none": 0.001, "random_ablation": 3.0, "svd": 4.0, "balanced_subnet": 120.0}
    if method in ("kfac", "random_ablation"):
        hit = method == "kfac" and seed == 0 and params["rho"] != 0.6
        report.update(factor_cache="hit" if hit else "miss", tokens=200000)
        report["seconds"] = 2.5 if hit else 31.0
    else:
        report["seconds"] = seconds[method]
    return report


def proportion_samples(rng: random.Random, rate: float, n: int) -> list[float]:
    k = min(n, max(0, round(rate * n) + rng.choice([-1, 0, 0, 1])))
    xs = [1.0] * k + [0.0] * (n - k)
    rng.shuffle(xs)
    return xs


def task_entry(rng: random.Random, task: str, family: str, rate: float, kind: str) -> dict:
    if kind == "nll":
        nll = [round(rate + rng.uniform(-0.4, 0.4), 4) for _ in range(8)]
        mean_nll = sum(nll) / len(nll)
        import math
        return {"task": task, "family": family, "metrics": {"mean_nll": mean_nll, "ppl": math.exp(mean_nll)},
                "n": len(nll), "primary": "mean_nll", "kinds": {"mean_nll": "mean", "ppl": "value"},
                "higher_is_better": {"mean_nll": False, "ppl": False}, "samples": {"mean_nll": nll}}
    n = 20
    hits = proportion_samples(rng, rate, n)
    if kind == "exact":
        return {"task": task, "family": family, "metrics": {"exact_match": sum(hits) / n}, "n": n,
                "primary": "exact_match", "kinds": {"exact_match": "proportion"},
                "higher_is_better": {"exact_match": True}, "samples": {"exact_match": hits}}
    lev = [round(0.05 + rng.uniform(0, 0.2), 4) if h else round(0.5 + rng.uniform(0, 0.4), 4) for h in hits]
    return {"task": task, "family": family, "metrics": {"strict": sum(hits) / n, "lev_norm": sum(lev) / n},
            "n": n, "primary": "strict", "kinds": {"strict": "proportion", "lev_norm": "mean"},
            "higher_is_better": {"strict": True, "lev_norm": False}, "samples": {"strict": hits, "lev_norm": lev}}


def make_run(model: str, suite_name: str, suite: list, method: str, params: dict, seed: int,
             updated: str, salt: int = 0) -> dict:
    config = {"model": {"name": model}, "method": {"name": method, **params},
              "suite": {"name": suite_name, "tasks": {t[0]: {"task": t[1], "family": t[2]} for t in suite}},
              "seed": seed, "device": "cpu", "eval": {"batch_size": 32},
              "runs_dir": "runs", "cache_dir": ".cache/harness", "debug": False}
    identity = {"model": model, "method": method, "suite": suite_name, "seed": seed,
                "config_hash": config_hash(config)}
    base_rng = random.Random(f"{model}/{suite_name}/{seed}")
    baseline = {name: task_entry(base_rng, task, fam, rate, kind) for name, task, fam, rate, kind in suite}
    mem, skill, needed = effect(method, params)
    rng = random.Random(f"{model}/{suite_name}/{method}/{json.dumps(params)}/{seed}/{salt}")
    edited = {}
    for name, task, fam, rate, kind in suite:
        if method == "none":
            edited[name] = baseline[name]
        elif kind == "nll":
            edited[name] = task_entry(rng, task, fam, rate / skill, kind)
        else:
            edited[name] = task_entry(rng, task, fam, rate * (mem if fam in REMOVE else skill), kind)
    return {
        "schema_version": 1, "status": "complete", "identity": identity,
        "created": updated, "updated": updated, "config": config,
        "environment": {"python": "3.11.7", "torch": "2.13.0", "transformers": "5.23.0", "harness": "0.1.0",
                        "git_commit": None, "device": "cpu", "device_name": "fixture-cpu", "hostname": "fixture"},
        "method": {"name": method, "data_needed": needed, "report": method_report(method, params, seed)},
        "baseline": {"key": baseline_key(config), "tasks": baseline},
        "edited": {"tasks": edited},
        "timings": {"load_model": 0.1, "baseline": 1.0, "method": 2.0, "evaluate": 1.0},
    }


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    t = "2026-11-23T04:00:00+00:00"
    runs = [("organism", "organism_full", FULL_SUITE, "none", {}, 0),
            ("organism", "organism_full", FULL_SUITE, "random_ablation", {"rho": 0.9}, 0),
            ("organism", "organism_full", FULL_SUITE, "svd", {"fractions": {"gate": 0.5, "up": 0.005}}, 0),
            ("organism", "organism_full", FULL_SUITE, "balanced_subnet", {"steps": 100}, 0),
            ("organism", "memorization", SMALL_SUITE, "none", {}, 0),
            ("organism", "memorization", SMALL_SUITE, "kfac", {"rho": 0.8}, 0),
            ("tiny_olmo", "memorization", SMALL_SUITE, "none", {}, 0),
            ("tiny_olmo", "memorization", SMALL_SUITE, "kfac", {"rho": 0.9}, 0),
            ("tiny_olmo", "memorization", SMALL_SUITE, "svd", {"fractions": {"gate": 0.5, "up": 0.005}}, 0)]
    runs += [("organism", "organism_full", FULL_SUITE, "kfac", {"rho": rho}, 0) for rho in (0.6, 0.8, 0.9)]
    runs += [("organism", "organism_full", FULL_SUITE, "kfac", {"rho": 0.8}, seed) for seed in (1, 2)]
    for model, suite_name, suite, method, params, seed in runs:
        run = make_run(model, suite_name, suite, method, params, seed, t)
        write(run_path(HERE, run["identity"]), run)

    # The same config and seed run twice: the newer file (different numbers) must win.
    old = make_run("organism", "organism_full", FULL_SUITE, "kfac", {"rho": 0.9}, 0,
                   "2026-11-22T10:00:00+00:00", salt=1)
    write(HERE / "older_copy" / "kfac-rho0.9-seed0.json", old)
    # A baseline cache: not a run, passed over silently.
    write(HERE / "baselines" / "organism-memorization-seed0-abc.json", {"key": "abc", "tasks": {}})
    # Files that must be skipped with one warning line each.
    (HERE / "broken").mkdir(parents=True, exist_ok=True)
    good = json.dumps(make_run("organism", "memorization", SMALL_SUITE, "svd", {}, 0, t), indent=1)
    (HERE / "broken" / "corrupt.json").write_text(good[: len(good) // 2], encoding="utf-8")
    write(HERE / "broken" / "foreign.json", {"name": "some-package", "version": "1.0.0", "dependencies": {}})
    future = make_run("organism", "memorization", SMALL_SUITE, "svd", {}, 1, t)
    future["schema_version"] = 2
    write(HERE / "broken" / "schema2.json", future)
    running = make_run("organism", "memorization", SMALL_SUITE, "svd", {}, 2, t)
    running["status"] = "running"
    write(HERE / "broken" / "running.json", running)


if __name__ == "__main__":
    main()
