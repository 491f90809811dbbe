"""One run, top to bottom: load the model, evaluate the baseline (cached), apply the method,
evaluate the edited model, write the run file, print the table.

Every finished piece is written to disk as soon as it exists (baseline results per task, edited
results per task), so a run that is interrupted resumes where it stopped when the same config is
run again, and a finished run is reused instead of recomputed.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from attacks.report import attack_table
from core import registry
from core.errors import ConfigError, warn
from core.io import atomic_write_json, check_writable_dir, file_lock, read_json
from core.measures import collapse_warnings, edit_warnings, removal_warning
from core.registry import instantiate
from core.runrecord import (baseline_key, baseline_path, config_hash, new_run_record, now, run_path, run_problem,
                            task_entry_problem)
from harness.attack_runner import build_attacks, run_attacks
from harness.config import named_config
from harness.distributed import init_from_env, rank_device
from harness.export import RunExport
from methods.base import Method, MethodContext, build_method
from models import LoadedModel, load_model
from tasks.base import Task, TaskContext, TaskSkipped


def run_experiment(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume, or reuse) the experiment `cfg` describes; return the run record."""
    from rich.console import Console

    console = Console()
    config = named_config(cfg)
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    check_eval_settings(config.get("eval") or {})
    method = build_method(config["method"])  # validate settings before any slow step
    attacks = build_attacks(config)  # attack settings too (issue 16; harness/attack_runner.py)
    suite = parse_suite(config["suite"])
    runnable = config["model"].get("suites")  # a model without a tokenizer or data names what it can run
    if runnable and config["suite"]["name"] not in runnable:
        raise ConfigError(f"model {config['model']['name']} runs only suite {' or '.join(runnable)} "
                          f"(no tokenizer or memorized data); add suite={runnable[0]}")
    for key in ("runs_dir", "cache_dir"):  # a bad output place fails now, not after the work
        check_writable_dir(Path(config[key]), key)
    identity = run_identity(config)
    path = run_path(Path(config["runs_dir"]), identity)
    rank, world = init_from_env()  # torchrun: harness/distributed.py; (0, 1) in a plain run
    # The same run started twice: the second waits, then reuses the first's. Under torchrun only
    # rank 0 writes the run file; the other ranks must not wait on it (rank 0 waits on them).
    with file_lock(path, prune_to=Path(config["runs_dir"])) if rank == 0 else contextlib.nullcontext():
        return _run_or_resume(config, console, method, attacks, suite, identity, path, rank, world)


def _run_or_resume(config: dict[str, Any], console: Any, method: Method, attacks: Any,
                   suite: dict[str, dict[str, Any]], identity: dict[str, Any], path: Path,
                   rank: int = 0, world: int = 1) -> dict[str, Any]:
    seed = config["seed"]
    run = read_json(path)
    why = None if run is None else run_problem(run, finished=run.get("status") == "complete")
    if why:  # a poisoned or hand-edited run file (a NaN metric, another schema): never reused
        warn(f"run file {path}: {why}; recomputing the run")
        run = None
    if run is not None and run.get("status") == "complete" and not config.get("save_edited"):
        console.print(f"[green]reusing finished run[/] {path}")
        print_run(console, run)
        return run

    from core.progress import make_progress

    timings: dict[str, float] = {}
    with make_progress(console) as progress:  # live on a terminal, plain lines in a log file
        start = time.perf_counter()
        loaded = load_model(config["model"], rank_device(config["device"]), Path(config["cache_dir"]), progress)
        timings["load_model"] = time.perf_counter() - start
        try:  # e.g. layers the model does not have: before the baseline, not after it
            method.check(loaded.model)
        except ConfigError as e:
            raise ConfigError(f"method {config['method']['name']}: {e}") from None
        check_method_data(method, loaded, config["method"]["name"])
        if rank != 0:  # the other ranks read their share of the statistics; rank 0 does the rest
            if method.shards_statistics:
                torch.manual_seed(seed)
                method.apply(loaded.model, build_method_context(method, loaded, config, None))
            return {"rank": rank, "world_size": world}
        tasks = build_tasks(suite, loaded)
        for task, _family in tasks.values():  # data files against the model, before any evaluation
            task.check(loaded.model, loaded.tokenizer)
        artifacts = Path(config["cache_dir"]) / "artifacts" / baseline_key(config)[:16]

        start = time.perf_counter()
        baseline_file = baseline_path(Path(config["runs_dir"]), config)
        with file_lock(baseline_file, prune_to=Path(config["runs_dir"])):  # methods sharing this baseline: computed and written once
            baseline = {"key": baseline_key(config), "tasks": valid_cached_tasks(baseline_file, suite)}
            evaluate_suite(tasks, loaded, config, "baseline", artifacts, baseline["tasks"], progress,
                           save=lambda: atomic_write_json(baseline_file, baseline))
        timings["baseline"] = time.perf_counter() - start

        if run is None:
            run = new_run_record(config, identity, list(method.needs), str(loaded.device))
        run["baseline"] = baseline

        export = RunExport.begin(config, loaded.model)  # save_edited=<dir>: base weights digested before the edit
        report = apply_method(method, loaded, config, progress)
        run["method"]["report"] = report
        run["method"]["columns"] = [c.record() for c in method.columns]  # what the leaderboard shows of it
        timings["method"] = report["seconds"]

        start = time.perf_counter()

        def save() -> None:
            run["updated"], run["timings"] = now(), timings
            atomic_write_json(path, run)

        if not report.get("changed"):
            # Nothing was edited: the edited model is the baseline model, so are its numbers.
            run["edited"]["tasks"] = {k: dict(v) for k, v in baseline["tasks"].items()}
        evaluate_suite(tasks, loaded, config, "edited", artifacts, run["edited"]["tasks"], progress, save)
        timings["evaluate"] = time.perf_counter() - start
        for line in collapse_warnings(baseline["tasks"], run["edited"]["tasks"]):
            warn(line)  # the guard's line on removed components was said right after the edit
        run["warnings"] = edit_warnings(run)  # the run table shows them (harness/report.py)
        run_attacks(attacks, config, loaded, tasks, run, baseline_file, bool(report.get("changed")), progress, save)
        run["status"] = "complete"
        if export is not None:  # a finished run with save_edited re-applies the method (above) to export it
            run["export"] = export.finish(loaded, run)
        save()
    console.print(f"run file: {path}")
    print_run(console, run)
    return run


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What the run of resolved `config` (its model name set) is filed under (core.runrecord.run_path)."""
    return {"model": config["model"]["name"], "method": method_label(config), "suite": config["suite"]["name"],
            "seed": config["seed"], "config_hash": config_hash(config)}


def method_label(config: dict[str, Any]) -> str:
    """The name a run is filed and reported under: the method config chosen on the command line
    (`method=kfac_vit` files as kfac_vit), else the registered method name (config.method.name)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("method")
        if choice:
            return str(choice)
    return config["method"]["name"]


def check_eval_settings(eval_cfg: dict[str, Any]) -> None:
    batch_size = eval_cfg.get("batch_size")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"eval.batch_size must be a positive integer, got {batch_size!r}")


def valid_cached_tasks(baseline_file: Path, suite: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The cached baseline's task results that are valid for this suite; a bad entry (valid JSON
    whose content is not a result, or a NaN metric) is dropped with a warning and recomputed."""
    if not baseline_file.exists():
        return {}
    cached = read_json(baseline_file)
    tasks = cached.get("tasks") if cached is not None else None
    if not isinstance(tasks, dict):
        warn(f"cached baseline {baseline_file} is unreadable or has no 'tasks'; recomputing it")
        return {}
    valid = {}
    for name, entry in tasks.items():
        problem = task_entry_problem(f"tasks.{name}", entry)
        if problem is None and name in suite and entry.get("task") != suite[name]["task"]:
            problem = f"tasks.{name} is a '{entry.get('task')}' result, the suite runs '{suite[name]['task']}'"
        if problem:
            warn(f"cached baseline {baseline_file}: {problem}; recomputing that task")
        else:
            valid[name] = entry
    return valid


def check_method_data(method: Method, loaded: LoadedModel, name: str) -> None:
    """The data the method reads (statistics text, forget / retain sets) and its settings against
    that data (e.g. prefix_len against the forget examples): a missing, empty or unreadable file or
    a setting the data cannot meet fails here, before the baseline, in one line."""
    loaded.sources.check(method.data_used())
    try:
        method.check_data(loaded.sources)
    except ConfigError as e:
        raise ConfigError(f"method {name}: {e}") from None


def parse_suite(suite_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task instance name -> its entry; checks every task name before the model loads."""
    entries = suite_cfg.get("tasks") or {}
    if not entries:
        raise ConfigError(f"suite '{suite_cfg.get('name')}' lists no tasks")
    for name, entry in entries.items():
        if "task" not in entry:
            raise ConfigError(f"suite entry '{name}' needs a 'task:' key naming a registered task")
        registry.load_class("task", entry["task"], Task).check_settings(entry, f"suite.tasks.{name}")
    return entries


def build_tasks(suite: dict[str, dict[str, Any]], loaded: LoadedModel) -> dict[str, tuple[Task, str]]:
    """Instantiate each task with its data reference resolved to a path; returns name -> (task, family)."""
    from core.data import resolve_data_ref

    tasks = {}
    for name, entry in suite.items():
        cls = registry.load_class("task", entry["task"], Task)
        params = {k: v for k, v in entry.items() if k != "task"}
        for key in cls.data_keys:  # a data ref, or a list of them
            value = params.get(key)
            if isinstance(value, (list, tuple)):
                params[key] = [str(resolve_data_ref(v, loaded.data)) for v in value]
            elif value is not None:
                params[key] = str(resolve_data_ref(value, loaded.data))
        family = params.get("family") or cls.family
        tasks[name] = (instantiate(cls, params, f"task {name}"), family)
    return tasks


def evaluate_suite(tasks: dict[str, tuple[Task, str]], loaded: LoadedModel, config: dict[str, Any],
                   role: str, artifacts: Path, results: dict[str, Any], progress: Any, save: Any) -> None:
    """Evaluate the tasks missing from `results`, saving after each one."""
    ctx = TaskContext(device=loaded.device, seed=config["seed"], batch_size=config["eval"]["batch_size"],
                      role=role, artifacts_dir=artifacts, progress=progress)  # type: ignore[arg-type]
    artifacts.mkdir(parents=True, exist_ok=True)
    for name, (task, family) in tasks.items():
        if name in results:
            continue
        torch.manual_seed(config["seed"])
        start = time.perf_counter()
        try:
            result = task.evaluate(loaded.model, loaded.tokenizer, ctx)
        except TaskSkipped as skip:  # e.g. an lm-eval dataset not reachable here: one line, go on
            print(f"skipped {name} ({role}): {skip}", flush=True)
            continue
        results[name] = {"task": config["suite"]["tasks"][name]["task"], "family": family,
                         **result.to_json(), "seconds": round(time.perf_counter() - start, 3)}
        save()


def apply_method(method: Method, loaded: LoadedModel, config: dict[str, Any], progress: Any) -> dict[str, Any]:
    """The edit as a run makes it (and harness.edit): seeded, in place, timed; returns the report."""
    start = time.perf_counter()
    torch.manual_seed(config["seed"])
    report = method.apply(loaded.model, build_method_context(method, loaded, config, progress))
    report["seconds"] = round(time.perf_counter() - start, 3)
    removed = removal_warning(report.get("changed") or {})  # the guard on destructive edits (core/measures.py)
    if removed:
        warn(removed)
    return report


def build_method_context(method: Method, loaded: LoadedModel, config: dict[str, Any], progress: Any) -> MethodContext:
    """The context holds only the data the method declares in `needs`, read from what the model
    brings; the validation split is never among it."""
    sources = loaded.sources
    return MethodContext(
        tokenizer=loaded.tokenizer, device=loaded.device, seed=config["seed"],
        cache_dir=Path(config["cache_dir"]) / "methods", model_key=loaded.key, stats=sources.statistics(),
        forget_set=sources.forget() if "forget" in method.needs else None,
        retain_set=sources.retain() if "retain" in method.needs else None, progress=progress,
    )


def print_run(console: Any, run: dict[str, Any]) -> None:
    from harness.report import print_table, run_table, run_warnings

    print_table(console, run_table(run))
    for line in run_warnings(run):
        console.print(line, style="bold red", soft_wrap=True, markup=False, highlight=False)
    if attack_table(run) is not None:
        print_table(console, attack_table(run))
