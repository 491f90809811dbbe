"""The regression reference CI compares with: one entry per shipped organism (models/shipping.py),
so every machine compares every number, edited ones included, with the same file.

    tests/regression/reference.json   {"organisms": [{"organism": identity, "runs": {run: {task: numbers}}}]}
    tests/regression/tolerance.json   what `python -m studies.fidelity measure-tolerance` measured

Why this works now: training differs by CPU, evaluating the same weights barely does (issue 26
measured identical accuracy metrics at 1 and 2 threads). The organisms are shipped, so the only
variation left is evaluation's, and the tolerance of each task is the largest difference measured
between evaluation settings (threads, CPU instruction sets), never below the resolution of the
number (`tolerance_bound`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.buildcache import CONF_DIR
from core.io import atomic_write_json

REFERENCE_FILE = CONF_DIR.parent / "tests" / "regression" / "reference.json"
TOLERANCE_FILE = CONF_DIR.parent / "tests" / "regression" / "tolerance.json"
# The smallest difference a number can show: one example of a proportion (1/n), and the 4 decimals
# a summary keeps of any other metric (perplexity, nDCG@10, perturbed recall).
ROUNDING = 1e-4


def organism_identity(settings: Mapping[str, Any], cache_dir: Path) -> dict[str, Any]:
    """Which organism a run used: seed, settings hash, a digest of its weights, and whether it is
    a shipped build (only those are the same on every machine)."""
    from core.buildcache import find_shipped, file_sha256
    from models.organism import SHIPPED_DIR, settings_hash

    key = settings_hash(settings)
    shipped = find_shipped(SHIPPED_DIR, key)
    folder = shipped if shipped is not None else Path(cache_dir) / "organism" / key
    return {"seed": int(settings["seed"]), "settings_hash": key[:16],
            "weights_sha256": file_sha256(folder / "model" / "model.safetensors")[:16], "shipped": shipped is not None}


def same_organism(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("settings_hash") == b.get("settings_hash") and a.get("weights_sha256") == b.get("weights_sha256")


def describe(identity: Mapping[str, Any]) -> str:
    return (f"organism seed {identity.get('seed')} (settings {identity.get('settings_hash')}, "
            f"weights {identity.get('weights_sha256')})")


def read_reference(path: Path) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("organisms"), list):
        raise ValueError('not a regression reference: expected {"organisms": [...]}')
    return list(data["organisms"])


def add_reference_entry(path: Path, record: Mapping[str, Any]) -> None:
    """Put `record` ({"organism", "runs"}) into the reference at `path`, replacing the entry of the
    same organism and keeping the others, sorted by seed."""
    entries = read_reference(path) if Path(path).exists() else []
    entries = [e for e in entries if not same_organism(e["organism"], record["organism"])] + [dict(record)]
    entries.sort(key=lambda e: (e["organism"].get("seed", 0), e["organism"].get("settings_hash", "")))
    atomic_write_json(path, {"organisms": entries}, sort_keys=True)


def tolerance_bound(kind: str, n: int, largest_difference: float) -> float:
    """A task's tolerance (absolute): the largest difference measured between evaluation
    settings, and at least the smallest difference the number can show (one example of a
    proportion, else the reference's rounding)."""
    floor = 1.0 / n if kind == "proportion" and n > 0 else ROUNDING
    return round(max(float(largest_difference), floor), 6)


def largest_differences(summaries: Sequence[Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """'run/task' -> {"kind", "n", "largest_difference"}: the largest |a - b| of that run's task
    number (either role, any seed) between any two of `summaries` (each: 'seedN/run' or 'run' ->
    task -> numbers) that have that run. A run only some summaries have (a partial reference) is
    compared among those, never dropped. Per run: an edit that wrecks the model (random ablation)
    moves far more between evaluation settings than a careful one."""
    out: dict[str, dict[str, Any]] = {}
    for run_name in sorted(set().union(*summaries)):
        having = [s[run_name] for s in summaries if run_name in s]
        if len(having) < 2:
            continue
        run = run_name.split("/", 1)[-1]
        for task, ref in having[0].items():
            pairs = [[s[task][role] for s in having if task in s] for role in ("baseline", "edited")]
            spread = max(max(p) - min(p) for p in pairs)
            entry = out.setdefault(f"{run}/{task}", {"kind": ref["kind"], "n": ref["n"], "largest_difference": 0.0})
            entry["largest_difference"] = round(max(entry["largest_difference"], spread), 6)
    return out


def read_tolerances(path: Path = TOLERANCE_FILE) -> dict[str, float]:
    """'run/task' -> absolute tolerance, from the measurement file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {task: float(t["tolerance"]) for task, t in data["tasks"].items()}


def reference_differences(current: Mapping[str, Mapping[str, Mapping[str, Any]]],
                          reference: Mapping[str, Mapping[str, Mapping[str, Any]]],
                          tolerances: Mapping[str, float]) -> list[str]:
    """One line for every (run, task, role) number further from the reference than that run's task
    tolerance ('run/task'), or missing from the current results; a number with no measured
    tolerance is compared exactly."""
    problems = []
    for run_name, tasks in sorted(reference.items()):
        for task, ref in sorted(tasks.items()):
            got = current.get(run_name, {}).get(task)
            if got is None:
                problems.append(f"{run_name}/{task}: missing from the current results")
                continue
            bound = tolerances.get(f"{run_name}/{task}", 0.0)
            for role in ("baseline", "edited"):
                if abs(got[role] - ref[role]) > bound + 1e-9:
                    problems.append(f"{run_name}/{task} {role}: {got[role]} vs reference {ref[role]} (±{bound:g})")
    return problems


def compare_with_reference(current: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                           tolerances: Mapping[str, float], reference_file: Path | str) -> list[str]:
    """Problems of `current` ({"organism", "runs"}) against the entry of the same organism; no such
    entry is one problem saying which organism was looked for and what the file holds."""
    own = next((e for e in entries if same_organism(e["organism"], current["organism"])), None)
    if own is None:
        held = ", ".join(describe(e["organism"]) for e in entries) or "nothing"
        return [f"{reference_file} has no entry for {describe(current['organism'])}; it holds {held}. Only the "
                "shipped organisms have entries (their numbers are the same on every machine)"]
    return reference_differences(current["runs"], own["runs"], tolerances)
