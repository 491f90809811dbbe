"""Synthetic run files for the headline and replicate tests: schema-1 runs (docs/DESIGN.md) whose
rates the test chooses. Every task is a proportion over N examples (0/1 samples, rate = hits / N),
so a % kept is exact when the rates are multiples of 1/N. Not pipeline output; see make_fixtures.py
for the fixture folder the end-to-end tests read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.runrecord import baseline_key, config_hash, run_path

N = 200
# A suite: task name -> family (`verbatim_validation`: the split no method is shown).
SUITE = {"verbatim_validation": "memorized_val", "verbatim_forget": "memorized", "control": "control",
         "logic": "logic", "copy": "logic", "qa_open": "qa_open"}
T = "2026-11-23T04:00:00+00:00"


def entry(task: str, family: str, rate: float, n: int = N) -> dict[str, Any]:
    hits = round(rate * n)
    samples = [1.0] * hits + [0.0] * (n - hits)
    return {"task": task, "family": family, "metrics": {"score": hits / n}, "n": n, "primary": "score",
            "kinds": {"score": "proportion"}, "higher_is_better": {"score": True}, "samples": {"score": samples}}


def point(utility: float, memorization: float, base: float = 1.0) -> dict[str, float]:
    """Edited rates that give this utility and memorization % kept against unedited rates `base`
    (every skill task keeps `utility` %, the control and the forget split keep what they had)."""
    rates = {t: base * utility / 100 for t, f in SUITE.items() if f in ("logic", "qa_open")}
    rates["verbatim_validation"] = base * memorization / 100
    return rates


def make_run(method: str, edited: dict[str, float], *, params: dict[str, Any] | None = None, seed: int = 0,
             organism_seed: int | None = None, baseline: dict[str, float] | None = None, model: str = "org",
             suite: str = "full", tasks: dict[str, str] | None = None, report: dict[str, Any] | None = None,
             device_name: str = "dev", attacks: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """A complete run. `edited` / `baseline`: task -> rate (tasks missing from `edited` keep the
    baseline rate; the baseline defaults to 1.0 everywhere). `attacks`: unit -> (edited rate,
    unedited rate) of verbatim_validation after a quantization attack."""
    tasks = dict(SUITE if tasks is None else tasks)
    base_rates = {t: 1.0 for t in tasks} | (baseline or {})
    model_cfg: dict[str, Any] = {"name": model}
    if organism_seed is not None:
        model_cfg["organism"] = {"seed": organism_seed, "layers": 2}
    config = {"model": model_cfg, "method": {"name": method, **(params or {})},
              "suite": {"name": suite, "tasks": {t: {"family": f} for t, f in tasks.items()}},
              "seed": seed, "device": "cpu", "eval": {"batch_size": 8}, "runs_dir": "runs"}
    identity = {"model": model, "method": method, "suite": suite, "seed": seed, "config_hash": config_hash(config)}
    run = {"schema_version": 1, "status": "complete", "identity": identity, "created": T, "updated": T,
           "config": config, "environment": {"device": "cpu", "device_name": device_name},
           "method": {"name": method, "data_needed": [], "report": {"changed": {}, **(report or {})}},
           "baseline": {"key": baseline_key(config), "tasks": {t: entry(t, f, base_rates[t]) for t, f in tasks.items()}},
           "edited": {"tasks": {t: entry(t, f, edited.get(t, base_rates[t])) for t, f in tasks.items()}},
           "timings": {}}
    if attacks:
        def unit(key: str, rate: float) -> dict[str, Any]:
            return {"attack": "quantize", "setting": key, "steps": None, "info": {},
                    "tasks": {"verbatim_validation": entry("verbatim_validation", "memorized_val", rate)}}
        run["edited"]["attacks"] = {f"quantize.{k}": unit(k, e) for k, (e, _) in attacks.items()}
        run["baseline"]["attacks"] = {f"quantize.{k}": unit(k, b) for k, (_, b) in attacks.items()}
    return run


def as_runs(runs: list[dict[str, Any]]) -> list[tuple[Path, dict[str, Any]]]:
    """(path, run) pairs as leaderboard.collect returns them, without writing files."""
    return [(run_path(Path("runs"), r["identity"]), r) for r in runs]


def write_runs(folder: Path, runs: list[dict[str, Any]]) -> None:
    for path, run in as_runs(runs):
        target = folder / path.relative_to("runs")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
