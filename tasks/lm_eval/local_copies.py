"""Run lm-eval registry tasks (boolq, gsm8k, the paper's tasks) from local copies of their datasets.

Layout of a local-copies folder (`local_datasets:` of an lm_eval suite entry), one folder per
lm-eval task name, one entry per split the task uses (its own split names: boolq reads
`validation`, and `train` for few-shot examples):

    DIR/boolq/validation.jsonl           JSON lines, the dataset's own fields
    DIR/boolq/train.jsonl
    DIR/gsm8k/test/                      or a `Dataset.save_to_disk` folder (data-*.arrow files)
    DIR/gsm8k/train/

For each task with a folder, a task YAML is generated that `include:`s the registered task's own
YAML (prompts, metrics, filters, process_docs unchanged) and replaces only where the data comes
from (`dataset_path: json` or `arrow`, absolute `data_files`). Tasks without a folder load from
the hub as usual.

Making the copies, on a machine with the hub (each task's splits as lm-eval loads them):

    python -m tasks.lm_eval.local_copies --out DIR boolq winogrande gsm8k ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.errors import DataError


def split_files(task_dir: Path) -> tuple[str, dict[str, str]]:
    """(datasets builder, {split: absolute data_files pattern}) of one task's local copy."""
    jsonl = {p.stem: str(p.resolve()) for p in sorted(task_dir.glob("*.jsonl"))}
    arrow = {p.name: str(p.resolve() / "*.arrow") for p in sorted(task_dir.iterdir())
             if p.is_dir() and any(p.glob("*.arrow"))}
    if jsonl and arrow:
        raise DataError(f"{task_dir}: mixes <split>.jsonl files and save_to_disk folders; use one kind")
    if not jsonl and not arrow:
        raise DataError(f"{task_dir}: no <split>.jsonl file and no save_to_disk folder (<split>/*.arrow)")
    return ("json", jsonl) if jsonl else ("arrow", arrow)


def registered_yaml(manager: Any, name: str) -> Path | None:
    """The YAML file lm-eval registered task `name` from (None for groups and Python tasks)."""
    entry = manager.task_index.get(name)
    if entry is None:
        return None
    path = getattr(entry, "yaml_path", None) if not isinstance(entry, dict) else entry.get("yaml_path")
    return Path(path) if path and str(path).endswith((".yaml", ".yml")) else None


def write_local_tasks(local_dir: Path, names: list[str], manager: Any, out: Path) -> list[str]:
    """Write a task YAML into `out` for each of `names` with a folder in `local_dir`; return those
    names. `manager` is a TaskManager that knows the registered tasks."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        task_dir = Path(local_dir) / name
        if not task_dir.is_dir():
            continue
        source = registered_yaml(manager, name)
        if source is None:
            raise DataError(f"lm_eval: '{name}' has a local copy in {task_dir} but is not a task defined by a "
                            "YAML file (a group or a Python task); list its subtasks instead")
        builder, files = split_files(task_dir)
        config = {"include": str(source.resolve()), "task": name, "dataset_path": builder,
                  "dataset_name": None, "dataset_kwargs": {"data_files": files}}
        (out / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        written.append(name)
    return written


def save_local_copies(names: list[str], out: Path, include_path: str | None = None,
                      include_defaults: bool = True) -> dict[str, list[str]]:
    """Load each lm-eval task as lm-eval does (needs its dataset: the hub, or a cache) and write
    every split to OUT/<task>/<split>.jsonl. Returns task -> splits written."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=include_defaults)
    saved: dict[str, list[str]] = {}
    for name in names:
        loaded = manager.load([name])
        for task_name, task in loaded["tasks"].items():
            folder = Path(out) / task_name
            folder.mkdir(parents=True, exist_ok=True)
            saved[task_name] = []
            for split, dataset in task.dataset.items():
                with (folder / f"{split}.jsonl").open("w") as f:
                    for row in dataset:
                        f.write(json.dumps(row, default=str) + "\n")
                saved[task_name].append(split)
    return saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Save lm-eval tasks' datasets as local copies (JSONL per split).")
    parser.add_argument("tasks", nargs="+", help="lm-eval task names (groups expand to their tasks)")
    parser.add_argument("--out", required=True, type=Path, help="the local-copies folder")
    parser.add_argument("--include-path", default=None, help="extra lm-eval task YAML folder")
    args = parser.parse_args(argv)
    for task, splits in save_local_copies(args.tasks, args.out, args.include_path).items():
        print(f"{task}: {', '.join(splits)} -> {args.out / task}")


if __name__ == "__main__":
    main()
