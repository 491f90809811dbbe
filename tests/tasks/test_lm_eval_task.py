"""The organism's QA as lm-eval tasks, end to end through lm_eval.simple_evaluate on a tiny model."""

import json
import os
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, DataError
from tasks.base import TaskContext
from tasks.generation import greedy_generate
from tasks.lm_eval_task import LMEvalTask
from tests.conftest import make_tiny_olmo2


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))  # keep ~/.cache clean
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_organism_qa_through_lm_eval_matches_known_answers(tmp_path: Path, tiny_tokenizer) -> None:
    model = make_tiny_olmo2()
    questions = [f"w{i} w{i + 3}" for i in range(10, 16)]
    # The tiny random model's own greedy next word answers questions 0, 2, 4; the others get a
    # word it does not say. lm-eval must score exactly those three as correct.
    said = greedy_generate(model, [tiny_tokenizer(q)["input_ids"] for q in questions], 1, 8, 0, "cpu")
    words = [tiny_tokenizer.decode(ids) for ids in said]
    rows = [{"id": f"q{i}", "question": q, "context": "w1 w2", "frequency": "common",
             "answer": words[i] if i % 2 == 0 else ("w0" if words[i] != "w0" else "w1")}
            for i, q in enumerate(questions)]
    facts = tmp_path / "facts.jsonl"
    facts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ctx = TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path / "artifacts")
    task = LMEvalTask(task_names=["organism_qa_closed"], data=str(facts), max_gen_toks=1)
    result = task.evaluate(model, tiny_tokenizer, ctx)
    assert result.samples["exact_match"] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert result.metrics["organism_qa_closed/exact_match"] == 0.5 and result.n == 6
    assert (tmp_path / "artifacts/lm_eval_tasks/facts/organism_qa_open.yaml").exists()


@pytest.mark.slow  # the misspelt name makes lm-eval index its built-in tasks (~6 s)
def test_unknown_task_and_offline_dataset_are_one_line_errors(tmp_path: Path, tiny_tokenizer,
                                                              hub_retries_without_waits) -> None:
    facts = tmp_path / "facts.jsonl"
    facts.write_text(json.dumps({"id": "a", "question": "w1", "answer": "w2", "context": "w3"}) + "\n")
    ctx = TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path)
    with pytest.raises(ConfigError, match="unknown task 'organism_qa_clsed'.*did you mean 'organism_qa_closed'"):
        LMEvalTask(task_names=["organism_qa_clsed"], data=str(facts)).task_manager(ctx)
    with pytest.raises(ConfigError, match="task_names must list"):
        LMEvalTask(task_names=[])
    # A task whose dataset lives on the hub, offline: DataError, not a traceback.
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub/hub_task.yaml").write_text(
        "task: hub_task\ndataset_path: no-such-org/no-such-dataset\ntest_split: test\n"
        "output_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n"
        "metric_list:\n  - metric: exact_match\n")
    task = LMEvalTask(task_names=["hub_task"], include_path=str(tmp_path / "hub"))
    with pytest.raises(DataError, match="cannot load the dataset"):
        task.evaluate(make_tiny_olmo2(), tiny_tokenizer, ctx)
