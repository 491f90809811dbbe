"""Any lm-eval task, scored on the in-memory (possibly edited) model.

Wraps `lm_eval.simple_evaluate` with `HFLM(pretrained=model, tokenizer=tokenizer)`, so registry
tasks (boolq, bbh_fewshot_web_of_lies, gsm8k, ...) and the organism's QA families written as lm-eval
tasks (`data: model:facts` → tasks/lm_eval/organism.py) run exactly as lm-eval users know them.

Result: one metric per lm-eval task (`<task>/<metric>`), and the headline `metric` pooled over every
document of every task (per-document values are the samples, for confidence intervals).

Registry tasks need their datasets: from the Hugging Face hub, or from local copies
(`local_datasets: DIR`, one folder per task: tasks/lm_eval/local_copies.py). A task whose dataset
cannot be loaded is skipped with one line and the entry's other tasks run; when none can be
loaded the whole entry is skipped (TaskSkipped) and the suite goes on. Offline, set
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 so a missing dataset fails at once instead of retrying.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError, did_you_mean
from core.hashing import canonical_hash
from tasks.base import Task, TaskContext, TaskResult, TaskSkipped

log = logging.getLogger("harness")
_MANAGERS: dict[tuple[str | None, bool], Any] = {}  # indexing the built-in tasks takes ~13 s: once


def cached_task_manager(include_path: str | None, include_defaults: bool) -> Any:
    from lm_eval.tasks import TaskManager

    key = (include_path, include_defaults)
    if key not in _MANAGERS:
        _MANAGERS[key] = TaskManager(include_path=include_path, include_defaults=include_defaults)
    return _MANAGERS[key]


def is_data_access_error(error: BaseException) -> bool:
    """Errors that mean "the dataset could not be fetched" (no network, offline mode, no such repo)."""
    module = type(error).__module__ or ""
    return isinstance(error, (ConnectionError, OSError, TimeoutError)) or module.startswith(
        ("datasets", "huggingface_hub", "requests", "urllib3", "httpx", "fsspec"))


def metric_key(task_results: dict[str, Any], metric: str, task: str) -> str:
    """The results key for `metric` ('exact_match,strip', 'acc,none', ...): first filter wins."""
    keys = [k for k in task_results if k.split(",")[0] == metric]
    if not keys:
        found = sorted({k.split(",")[0] for k in task_results if "," in k and "stderr" not in k})
        raise ConfigError(f"lm_eval: task '{task}' has no metric '{metric}'; it reports {found}")
    return keys[0]


class LMEvalTask(Task):
    family = "downstream"

    @classmethod
    def check_settings(cls, settings: dict[str, Any], where: str) -> None:
        """lm-eval's `limit` may also be a fraction of each task's examples, in (0, 1]."""
        limit = settings.get("limit")
        if isinstance(limit, float) and 0 < limit <= 1:
            return
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 1
                                  or (isinstance(limit, float) and not limit.is_integer())):
            raise ConfigError(f"{where}.limit must be a positive integer, a fraction in (0, 1] or null (all), "
                              f"got {limit!r}")

    def __init__(self, task_names: list[str] | None = None, data: str | None = None,
                 include_path: str | None = None, num_fewshot: int | None = 0, limit: int | float | None = None,
                 metric: str = "exact_match", family: str | None = None, max_gen_toks: int = 16,
                 fewshot_seed: int = 1234, local_datasets: str | None = None):
        task_names = [task_names] if isinstance(task_names, str) else list(task_names or [])
        if not task_names:
            raise ConfigError("lm_eval: task_names must list at least one lm-eval task (e.g. [boolq])")
        self.task_names, self.data, self.include_path = task_names, data, include_path
        self.num_fewshot, self.limit, self.metric = num_fewshot, limit, metric
        self.max_gen_toks, self.fewshot_seed = max_gen_toks, fewshot_seed
        self.unavailable: dict[str, str] = {}  # task name -> why its dataset could not be loaded
        self.local_datasets = None if local_datasets is None else Path(local_datasets).expanduser()
        if self.local_datasets is not None and not self.local_datasets.is_dir():
            raise ConfigError(f"lm_eval: local_datasets {str(self.local_datasets)!r} is not a folder "
                              "(one sub-folder per lm-eval task: tasks/lm_eval/local_copies.py)")

    def task_manager(self, ctx: TaskContext):
        include = self.include_path
        if self.data is not None:  # the organism's facts as lm-eval tasks, written next to the run
            from tasks.lm_eval.organism import write_organism_tasks

            folder = Path(ctx.artifacts_dir) / "lm_eval_tasks" / Path(self.data).stem
            write_organism_tasks(Path(self.data), folder, self.max_gen_toks)
            include = str(folder)
        # Indexing lm-eval's ~15k built-in tasks takes ~13 s: only when a task is not found locally.
        manager = cached_task_manager(include, False) if include else None
        if manager is None or not set(self.task_names) <= set(manager.all_tasks):
            manager = cached_task_manager(include, True)
        known = set(manager.all_tasks)
        for name in self.task_names:
            if name not in known:
                hint = did_you_mean(name, sorted(known))
                raise ConfigError(f"lm_eval: unknown task '{name}'{hint}; see `lm_eval ls tasks`")
        return manager

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        import lm_eval
        from lm_eval.models.huggingface import HFLM

        manager = self.task_manager(ctx)
        loaded = self.load_tasks(manager, ctx)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, device=str(ctx.device), batch_size=ctx.batch_size,
                  max_length=getattr(getattr(model, "config", None), "max_position_embeddings", None))
        logging.getLogger("lm_eval").setLevel(logging.WARNING)
        try:
            output = lm_eval.simple_evaluate(
                model=lm, tasks=loaded, num_fewshot=self.num_fewshot, limit=self.limit,
                task_manager=manager, log_samples=True, bootstrap_iters=0,
                gen_kwargs={"max_gen_toks": self.max_gen_toks}, random_seed=ctx.seed,
                numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed, fewshot_random_seed=self.fewshot_seed,
            )
        except Exception as e:
            if is_data_access_error(e):
                raise DataError(f"lm_eval {self.task_names}: cannot load the dataset ({type(e).__name__}); "
                                "no network or HF_DATASETS_OFFLINE=1? run on a machine with the hub") from None
            raise
        return self.to_result(output)

    def load_tasks(self, manager: Any, ctx: TaskContext) -> list[Any]:
        """Each task (or group) built with its dataset, from its local copy when there is one; a
        task whose dataset cannot be loaded is skipped with one line."""
        local = None
        if self.local_datasets is not None:
            from tasks.lm_eval.local_copies import write_local_tasks

            folder = Path(ctx.artifacts_dir) / "lm_eval_local" / canonical_hash(str(self.local_datasets.resolve()), 12)
            if write_local_tasks(self.local_datasets, self.task_names, manager, folder):
                local = cached_task_manager(str(folder), False)
        loaded = []
        for name in self.task_names:
            if name in self.unavailable:  # said once; the edited model's pass skips it quietly
                continue
            source = local if local is not None and name in local.all_tasks else manager
            try:
                built = source.load([name])
            except Exception as e:
                if not is_data_access_error(e):
                    raise
                reason = f"{type(e).__name__}: {_first_line(e)}"
                where = f"; no copy in {self.local_datasets}/{name}" if self.local_datasets else ""
                log.warning("skipped lm-eval task '%s': cannot load its dataset (%s%s)", name, reason, where)
                self.unavailable[name] = reason
                continue
            if name in built["groups"]:
                loaded.append(built["groups"][name])
            elif name in built["tasks"]:
                loaded.append(built["tasks"][name])
            else:  # a tag: its tasks
                loaded.extend(built["tasks"].values())
        if not loaded:
            raise TaskSkipped(f"lm_eval: cannot load the dataset of any of its tasks ({', '.join(self.unavailable)}); "
                              "put local copies under local_datasets (tasks/lm_eval/local_copies.py) or run where "
                              "the hub is reachable")
        return loaded

    def to_result(self, output: dict[str, Any]) -> TaskResult:
        metrics: dict[str, float] = {}
        pooled: list[float] = []
        for task, task_results in output["results"].items():
            if task not in output["samples"]:  # a group: its subtasks are listed on their own
                continue
            if not any(task == name or task.startswith(name) for name in self.task_names):
                continue
            key = metric_key(task_results, self.metric, task)
            metrics[f"{task}/{self.metric}"] = float(task_results[key])
            filter_name = key.split(",", 1)[1] if "," in key else "none"
            pooled += [float(s[self.metric]) for s in output["samples"][task]
                       if s.get("filter", filter_name) == filter_name]
        if not pooled:
            raise DataError(f"lm_eval {self.task_names}: no documents were scored")
        binary = all(v in (0.0, 1.0) for v in pooled)
        metrics[self.metric] = sum(pooled) / len(pooled)
        return TaskResult(
            metrics=metrics, n=len(pooled), primary=self.metric,
            kinds={k: "proportion" if binary else "mean" for k in metrics},
            higher_is_better={k: True for k in metrics}, samples={self.metric: pooled},
        )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else ""
