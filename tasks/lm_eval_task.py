"""Any lm-eval task, scored on the in-memory (possibly edited) model.

Wraps `lm_eval.simple_evaluate` with `HFLM(pretrained=model, tokenizer=tokenizer)`, so registry
tasks (boolq, bbh_fewshot_web_of_lies, gsm8k, ...) and the organism's QA families written as lm-eval
tasks (`data: model:facts` → tasks/lm_eval/organism.py) run exactly as lm-eval users know them.

Result: one metric per lm-eval task (`<task>/<metric>`), and the headline `metric` pooled over every
document of every task (per-document values are the samples, for confidence intervals).
Registry tasks need their datasets from the Hugging Face hub; offline, the task fails with one line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError, did_you_mean
from tasks.base import Task, TaskContext, TaskResult


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

    def __init__(self, task_names: list[str] | None = None, data: str | None = None,
                 include_path: str | None = None, num_fewshot: int | None = 0, limit: int | float | None = None,
                 metric: str = "exact_match", family: str | None = None, max_gen_toks: int = 16,
                 fewshot_seed: int = 1234):
        task_names = [task_names] if isinstance(task_names, str) else list(task_names or [])
        if not task_names:
            raise ConfigError("lm_eval: task_names must list at least one lm-eval task (e.g. [boolq])")
        self.task_names, self.data, self.include_path = task_names, data, include_path
        self.num_fewshot, self.limit, self.metric = num_fewshot, limit, metric
        self.max_gen_toks, self.fewshot_seed = max_gen_toks, fewshot_seed

    def task_manager(self, ctx: TaskContext):
        from lm_eval.tasks import TaskManager

        include = self.include_path
        if self.data is not None:  # the organism's facts as lm-eval tasks, written next to the run
            from tasks.lm_eval.organism import write_organism_tasks

            folder = Path(ctx.artifacts_dir) / "lm_eval_tasks" / Path(self.data).stem
            write_organism_tasks(Path(self.data), folder, self.max_gen_toks)
            include = str(folder)
        # Indexing lm-eval's ~15k built-in tasks takes ~13 s: only when a task is not found locally.
        manager = TaskManager(include_path=include, include_defaults=False) if include else None
        if manager is None or not set(self.task_names) <= set(manager.all_tasks):
            manager = TaskManager(include_path=include, include_defaults=True)
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
        lm = HFLM(pretrained=model, tokenizer=tokenizer, device=str(ctx.device), batch_size=ctx.batch_size,
                  max_length=getattr(getattr(model, "config", None), "max_position_embeddings", None))
        logging.getLogger("lm_eval").setLevel(logging.WARNING)
        try:
            output = lm_eval.simple_evaluate(
                model=lm, tasks=self.task_names, num_fewshot=self.num_fewshot, limit=self.limit,
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
