"""The run record: its schema version, identity, file locations and baseline cache key. One place
for each; the pipeline writes run files with these and the leaderboard reads them with these.

A run's identity is (model, method, suite, seed, hash of the resolved config). Keys that only say
where files go or how much is printed are left out of the hash, so moving the cache does not
invalidate finished work.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

from core.hashing import canonical_hash

SCHEMA_VERSION = 1
IDENTITY_KEYS = ("model", "method", "suite", "seed", "config_hash")
RUNTIME_ONLY_KEYS = ("runs_dir", "cache_dir", "debug", "hub", "hydra", "save_edited", "tracker")
# Dotted config paths that only pick a replicate of an experiment: the run seed, and the seed the
# model organism (LM or ViT, both at model.organism.seed) was trained with. A study repeats each
# configuration once per seed, training a fresh organism each time; runs that differ only here are
# repeats of one configuration, which the leaderboard aggregates to mean ± std over seeds.
REPLICATE_KEYS = ("seed", "model.organism.seed")


def config_hash(config: dict[str, Any]) -> str:
    """A config without attacks (`attack=none`) hashes as it did before the `attack` group
    existed, so finished runs keep their identity."""
    return canonical_hash({k: v for k, v in config.items() if k not in RUNTIME_ONLY_KEYS
                           and not (k == "attack" and not (v or {}).get("attacks"))})


def without_paths(config: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `config` less the dotted `paths` ("model.organism.seed" drops the `seed` key of
    config["model"]["organism"]). A path the config lacks changes nothing; parent dicts stay even
    when emptied; the input is not modified (the dicts along a path are copied)."""
    out = dict(config)
    for path in paths:
        head, _, rest = path.partition(".")
        if not rest:
            out.pop(head, None)
        elif isinstance(out.get(head), dict):
            out[head] = without_paths(out[head], (rest,))
    return out


def replicate_of(config: dict[str, Any]) -> str:
    """Which replicate a run is, e.g. "seed=0,model.organism.seed=2": the values at the
    REPLICATE_KEYS paths the config has (a path it lacks is left out)."""
    parts = []
    for path in REPLICATE_KEYS:
        node: Any = config
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            parts.append(f"{path}={node}")
    return ",".join(parts)


def baseline_key(config: dict[str, Any]) -> str:
    """The unedited model's results depend on the model, suite, seed and evaluation settings only,
    so every method run on the same model + suite shares one baseline."""
    return canonical_hash({k: config.get(k) for k in ("model", "suite", "seed", "eval", "device")})


def run_path(runs_dir: Path, identity: dict[str, Any]) -> Path:
    return (Path(runs_dir) / identity["model"] / identity["suite"] / identity["method"]
            / f"seed{identity['seed']}-{identity['config_hash'][:12]}.json")


def baseline_path(runs_dir: Path, config: dict[str, Any]) -> Path:
    model, suite = config["model"].get("name", "model"), config["suite"].get("name", "suite")
    return Path(runs_dir) / "baselines" / f"{model}-{suite}-seed{config.get('seed')}-{baseline_key(config)[:12]}.json"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def task_entry_problem(where: str, entry: Any) -> str | None:
    """Why `entry` is not a valid task result of a run or baseline file (None if it is). A NaN or
    infinite metric is a problem: it means the evaluation failed, and it would poison every mean
    (and every interval) over it."""
    if not isinstance(entry, dict):
        return f"{where} is not an object"
    for key, typ in (("family", str), ("metrics", dict), ("n", int), ("primary", str),
                     ("kinds", dict), ("higher_is_better", dict)):
        if not isinstance(entry.get(key), typ) or isinstance(entry.get(key), bool):
            return f"{where}.{key} missing or not {typ.__name__}"
    for name, value in entry["metrics"].items():
        if not _is_number(value):
            return f"{where}.metrics.{name} is non-numeric"
        if math.isnan(value):
            return f"{where}.metrics.{name} is NaN"
        if math.isinf(value):
            return f"{where}.metrics.{name} is {value} (not finite)"
    if entry["primary"] not in entry["metrics"]:
        return f"{where}.primary '{entry['primary']}' is not one of its metrics"
    samples = entry.get("samples", {})
    if not isinstance(samples, dict) or not all(isinstance(v, list) and all(map(_is_number, v))
                                                 for v in samples.values()):
        return f"{where}.samples must map metric names to lists of numbers"
    return None


def attacks_problem(where: str, attacks: Any) -> str | None:
    """Optional attack results (attack=standard; docs/DESIGN.md): unit key -> {attack, setting,
    steps, info, tasks}, the tasks shaped like the run's own task entries."""
    if not isinstance(attacks, dict):
        return f"{where} is not an object"
    for key, unit in attacks.items():
        if not isinstance(unit, dict) or not isinstance(unit.get("attack"), str) or not isinstance(unit.get("setting"), str):
            return f"{where}.{key} needs 'attack' and 'setting' strings"
        if not isinstance(unit.get("tasks"), dict):
            return f"{where}.{key}.tasks missing or not an object"
        for name, entry in unit["tasks"].items():
            bad = task_entry_problem(f"{where}.{key}.tasks.{name}", entry)
            if bad:
                return bad
    return None


def run_problem(run: Any, finished: bool = True) -> str | None:
    """Why `run` is not a valid run file of this schema, or None if it is. `finished`: it must be a
    complete run (what the leaderboard reads and a rerun reuses); else a partial run a rerun may
    resume (its baseline is re-read from the cache, its task results so far must be valid)."""
    if not isinstance(run, dict) or "schema_version" not in run:
        return "not a run file (no schema_version)"
    if run["schema_version"] != SCHEMA_VERSION:
        return f"schema_version {run['schema_version']!r}, this version reads {SCHEMA_VERSION}"
    if finished and run.get("status") != "complete":
        return f"status {run.get('status')!r}, not 'complete' (a run still going or stopped)"
    ident = run.get("identity")
    if not isinstance(ident, dict):
        return "identity missing"
    for key in IDENTITY_KEYS:
        want = int if key == "seed" else str
        if not isinstance(ident.get(key), want) or isinstance(ident.get(key), bool):
            return f"identity.{key} missing or not {want.__name__}"
    try:
        dt.datetime.fromisoformat(run["updated"])
    except (KeyError, TypeError, ValueError):
        return "updated missing or not an ISO time"
    if not isinstance(run.get("config"), dict) or not isinstance(run["config"].get("method"), dict):
        return "config or config.method missing"
    method = run.get("method")
    if not isinstance(method, dict) or not isinstance(method.get("name"), str):
        return "method.name missing"
    needed = method.get("data_needed")
    if not isinstance(needed, list) or not all(isinstance(x, str) for x in needed):
        return "method.data_needed missing or not a list of names"
    for part in ("baseline", "edited") if finished else ("edited",):
        tasks = run[part].get("tasks") if isinstance(run.get(part), dict) else None
        if not isinstance(tasks, dict) or (finished and not tasks):
            return f"{part}.tasks missing or {'empty' if finished else 'not an object'}"
        for name, entry in tasks.items():
            bad = task_entry_problem(f"{part}.tasks.{name}", entry)
            if bad:
                return bad
        bad = attacks_problem(f"{part}.attacks", run[part].get("attacks", {}))
        if bad:
            return bad
    warnings = run.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        return "warnings is not a list of lines"
    if finished:
        missing = set(run["edited"]["tasks"]) - set(run["baseline"]["tasks"])
        if missing:
            return f"edited tasks without a baseline: {', '.join(sorted(missing))}"
    return None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_record(config: dict[str, Any], identity: dict[str, Any], data_needed: list[str],
                   device: str) -> dict[str, Any]:
    """A run file before any result is in it (status 'running')."""
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "identity": identity,
        "created": now(),
        "updated": now(),
        "config": config,
        "environment": environment_info(device),
        "method": {"name": identity["method"], "data_needed": list(data_needed), "report": {}},
        "baseline": {},
        "edited": {"tasks": {}},
        "timings": {},
    }


def environment_info(device: str) -> dict[str, Any]:
    import importlib.metadata

    import torch
    import transformers

    try:
        version = importlib.metadata.version("memorization-harness")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "harness": version,
        "git_commit": _git_commit(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_name(),
        "hostname": platform.node(),
    }


def cpu_name() -> str:
    """The CPU model and its widest vector extension (what changes an organism's floats)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return f"{model or platform.machine()}, {vector}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
