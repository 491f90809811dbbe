"""One run, top to bottom: load the model, evaluate the baseline (cached), apply the method,
evaluate the edited model, write the run file, print the table.

Every finished piece is written to disk as soon as it exists (baseline results per task, edited
results per task), so a run that is interrupted resumes where it stopped when the same config is
run again, and a finished run is reused instead of recomputed.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from core import registry
from core.errors import ConfigError
from core.io import atomic_write_json, file_lock, read_json
from core.runrecord import (SCHEMA_VERSION, baseline_key, baseline_path, config_hash, new_run_record, now,
                            run_path)
from harness.distributed import init_from_env, rank_device
from methods.base import Method, MethodContext
from models import LoadedModel, load_model, model_name
from tasks.base import Task, TaskContext


def run_experiment(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume, or reuse) the experiment `cfg` describes; return the run record."""
    from rich.console import Console

    console = Console()
    config = resolve_config(cfg)
    config["model"]["name"] = model_name(config["model"])
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    method = build_method(config["method"])  # validate settings before any slow step
    suite = parse_suite(config["suite"])
    runnable = config["model"].get("suites")  # a model without a tokenizer or data names what it can run
    if runnable and config["suite"]["name"] not in runnable:
        raise ConfigError(f"model {config['model']['name']} runs only suite {' or '.join(runnable)} "
                          f"(no tokenizer or memorized data); add suite={runnable[0]}")
    identity = {"model": config["model"]["name"], "method": config["method"]["name"],
                "suite": config["suite"]["name"], "seed": seed, "config_hash": config_hash(config)}
    path = run_path(Path(config["runs_dir"]), identity)
    rank, world = init_from_env()  # torchrun: harness/distributed.py; (0, 1) in a plain run
    run = read_json(path)
    if run is not None and run.get("status") == "complete":
        console.print(f"[green]reusing finished run[/] {path}")
        print_run(console, run)
        return run

    from rich.progress import Progress

    timings: dict[str, float] = {}
    with Progress(console=console, transient=True) as progress:
        start = time.perf_counter()
        loaded = load_model(config["model"], rank_device(config["device"]), Path(config["cache_dir"]), progress)
        timings["load_model"] = time.perf_counter() - start
        if rank != 0:  # the other ranks read their share of the statistics; rank 0 does the rest
            if getattr(method, "shards_statistics", False):
                torch.manual_seed(seed)
                method.apply(loaded.model, build_method_context(method, loaded, config, None))
            return {"rank": rank, "world_size": world}
        tasks = build_tasks(suite, loaded)
        artifacts = Path(config["cache_dir"]) / "artifacts" / baseline_key(config)[:16]

        start = time.perf_counter()
        baseline_file = baseline_path(Path(config["runs_dir"]), config)
        with file_lock(baseline_file):  # sweep jobs sharing a baseline: one evaluates, the rest read it
            cached = read_json(baseline_file) or {}
            baseline = {"key": baseline_key(config), "tasks": cached.get("tasks", {})}
            evaluate_suite(tasks, loaded, config, "baseline", artifacts, baseline["tasks"], progress,
                           save=lambda: atomic_write_json(baseline_file, baseline))
        timings["baseline"] = time.perf_counter() - start

        if run is None or run.get("schema_version") != SCHEMA_VERSION:
            run = new_run_record(config, identity, list(method.needs), str(loaded.device))
        run["baseline"] = baseline

        start = time.perf_counter()
        torch.manual_seed(seed)
        report = method.apply(loaded.model, build_method_context(method, loaded, config, progress))
        report["seconds"] = round(time.perf_counter() - start, 3)
        run["method"]["report"] = report
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
        run["status"] = "complete"
        save()
    console.print(f"run file: {path}")
    print_run(console, run)
    return run


def resolve_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data; a required value left at ??? is a one-line error."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"config value '{key}' is required or invalid: {str(e).splitlines()[0]}") from None


def instantiate(cls: type, params: dict[str, Any], what: str) -> Any:
    """cls(**params), with unknown or missing settings reported as one line naming the valid ones."""
    if cls.__init__ is object.__init__:  # a class without settings
        accepted, takes_any = [], False
    else:
        signature = inspect.signature(cls.__init__)
        accepted = [p for p in signature.parameters if p != "self"]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in params if k not in accepted]
    if unknown and not takes_any:
        raise ConfigError(f"{what}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(accepted) or 'none'}")
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from None


def build_method(method_cfg: dict[str, Any]) -> Method:
    params = {k: v for k, v in method_cfg.items() if k != "name"}
    cls = registry.load_class("method", method_cfg["name"], Method)
    return instantiate(cls, params, f"method {method_cfg['name']}")


def parse_suite(suite_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task instance name -> its entry; checks every task name before the model loads."""
    entries = suite_cfg.get("tasks") or {}
    if not entries:
        raise ConfigError(f"suite '{suite_cfg.get('name')}' lists no tasks")
    for name, entry in entries.items():
        if "task" not in entry:
            raise ConfigError(f"suite entry '{name}' needs a 'task:' key naming a registered task")
        registry.load_class("task", entry["task"], Task)
    return entries


def build_tasks(suite: dict[str, dict[str, Any]], loaded: LoadedModel) -> dict[str, tuple[Task, str]]:
    """Instantiate each task with its data reference resolved to a path; returns name -> (task, family)."""
    from core.data import resolve_data_ref

    tasks = {}
    for name, entry in suite.items():
        cls = registry.load_class("task", entry["task"], Task)
        params = {k: v for k, v in entry.items() if k != "task"}
        if params.get("data") is not None:
            params["data"] = str(resolve_data_ref(params["data"], loaded.data))
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
        result = task.evaluate(loaded.model, loaded.tokenizer, ctx)
        results[name] = {"task": config["suite"]["tasks"][name]["task"], "family": family,
                         **result.to_json(), "seconds": round(time.perf_counter() - start, 3)}
        save()


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
    from harness.report import run_table

    console.print(run_table(run))
