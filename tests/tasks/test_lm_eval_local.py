"""lm-eval tasks from local copies of their datasets, and tasks whose dataset is missing skipped
with one line while the others run."""

import json
import logging
from pathlib import Path

import pytest
import torch

from tasks.base import TaskContext, TaskSkipped
from tasks.lm_eval.local_copies import save_local_copies, split_files
from tasks.lm_eval_task import LMEvalTask
from tests.conftest import make_tiny_olmo2

TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
validation_split: validation
output_type: loglikelihood
doc_to_text: "{{{{context}}}} "  # lm-eval moves the space to the continuation
doc_to_target: "{{{{completion}}}}"
metric_list:
  - metric: acc
"""


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def registry(tmp_path: Path) -> tuple[Path, Path]:
    """A task folder standing in for lm-eval's registry: `toy` (its data present until removed)
    and `toy_missing` (its data never there, as a hub dataset offline)."""
    folder, data = tmp_path / "registry", tmp_path / "toy.jsonl"
    folder.mkdir()
    rows = [{"context": f"w{i} w{i + 1}", "completion": f"w{i + 2}"} for i in range(10, 15)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "toy.yaml").write_text(TASK_YAML.format(name="toy", data=data))
    (folder / "toy_missing.yaml").write_text(TASK_YAML.format(name="toy_missing", data=tmp_path / "absent.jsonl"))
    return folder, data


def test_local_copy_is_used_and_a_missing_dataset_is_skipped_with_one_line(
        tmp_path: Path, tiny_tokenizer, caplog) -> None:
    folder, data = registry(tmp_path)
    copies = tmp_path / "copies"
    assert save_local_copies(["toy"], copies, str(folder), include_defaults=False) == {"toy": ["validation"]}
    expected = LMEvalTask(task_names=["toy"], include_path=str(folder), metric="acc").evaluate(
        make_tiny_olmo2(), tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path / "a"))
    data.unlink()  # from now on only the copy has the data

    ctx = TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path / "b")
    task = LMEvalTask(task_names=["toy", "toy_missing"], include_path=str(folder), metric="acc",
                      local_datasets=str(copies))
    with caplog.at_level(logging.WARNING, logger="harness"):
        result = task.evaluate(make_tiny_olmo2(), tiny_tokenizer, ctx)
    assert result.n == 5 and list(result.metrics) == ["toy/acc", "acc"]
    assert result.samples["acc"] == expected.samples["acc"]  # the copy scores as the original
    skips = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skips) == 1 and "skipped lm-eval task 'toy_missing': cannot load its dataset" in skips[0]
    assert "\n" not in skips[0]
    generated = next((tmp_path / "b" / "lm_eval_local").glob("*/toy.yaml")).read_text()
    assert f"include: {(folder / 'toy.yaml').resolve()}" in generated and "dataset_path: json" in generated

    with pytest.raises(TaskSkipped, match=r"cannot load the dataset of any of its tasks \(toy_missing\)"):
        LMEvalTask(task_names=["toy_missing"], include_path=str(folder)).evaluate(
            make_tiny_olmo2(), tiny_tokenizer, ctx)


def test_save_to_disk_folders_are_read_as_arrow(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"context": "w1", "completion": "w2"}]).save_to_disk(str(tmp_path / "t" / "validation"))
    builder, files = split_files(tmp_path / "t")
    assert builder == "arrow" and files == {"validation": str((tmp_path / "t" / "validation").resolve() / "*.arrow")}
    loaded = datasets.load_dataset(builder, data_files=files)
    assert loaded["validation"][0] == {"context": "w1", "completion": "w2"}
