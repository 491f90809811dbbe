"""The membership task: wiring (members first, the unedited model as reference, a retrained
reference cached), the result's fields, skipping without nonmembers, and the pipeline resolving its
data references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, DataError
from tasks import mia
from tasks.base import TaskContext, TaskSkipped
from tasks.membership import MembershipInference, passage_stats
from tests.tasks.test_mia import TableModel, planted_passages


def write_rows(path: Path, passages: list[list[int]], prefix: int = 6) -> Path:
    path.write_text("\n".join(json.dumps({"prefix_ids": p[:prefix], "suffix_ids": p[prefix:]}) for p in passages))
    return path


class Shifted(TableModel):
    """The table model with the members' greedy choices made less likely: an 'edit'."""

    def forward(self, input_ids, attention_mask=None, **_):
        out = super().forward(input_ids)
        out.logits = out.logits - 4 * torch.nn.functional.one_hot(out.logits.argmax(-1), out.logits.shape[-1])
        return out


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, list[list[int]], list[list[int]]]:
    members, nonmembers = planted_passages(TableModel(0))
    return (write_rows(tmp_path / "m.jsonl", members), write_rows(tmp_path / "n.jsonl", nonmembers),
            members, nonmembers)


def test_result_matches_the_pure_functions(tmp_path: Path, files, tiny_tokenizer) -> None:
    m_file, n_file, members, nonmembers = files
    model = TableModel(0)
    task = MembershipInference(members=str(m_file), nonmembers=str(n_file), resamples=200)
    result = task.evaluate(model, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path))
    stats = passage_stats(model, members + nonmembers, 8, "cpu")
    loss = [mia.loss_score(s["logprob"]) for s in stats]
    assert result.metrics["auc_loss"] == pytest.approx(mia.auc(loss[:30], loss[30:]))
    assert result.metrics["auc_loss"] == pytest.approx(0.7422222222222222)  # open-unlearning's, test_mia
    min_k = [mia.min_k_score(s["logprob"], 0.4) for s in stats]
    assert result.metrics["auc_min_k"] == pytest.approx(mia.auc(min_k[:30], min_k[30:]))
    assert result.metrics["auc_reference"] == 0.5  # the baseline is its own reference: every score 0
    assert result.metrics["retrain_auc"] == 0.5 and "0.5" in result.info["privleak_reference"]
    assert result.metrics["privleak"] == pytest.approx(mia.privleak(result.metrics["auc_min_k"], 0.5))
    es = [mia.extraction_strength(s["correct"][5:]) for s in stats[:30]]
    assert result.samples["extraction_strength"] == pytest.approx(es)
    assert result.n == 30 and result.info["nonmembers"] == 30 and result.primary == "auc_min_k"
    for name in ("auc_loss", "auc_zlib", "auc_min_k", "auc_min_k_pp", "auc_reference", "privleak"):
        lo, hi = result.intervals[name]
        assert lo <= result.metrics[name] <= hi, name
    assert result.kinds["extraction_strength"] == "mean" and result.kinds["auc_loss"] == "value"
    json.dumps(result.to_json())  # the run file takes it as it is


def test_edited_model_uses_the_baseline_losses(tmp_path: Path, files, tiny_tokenizer) -> None:
    m_file, n_file, members, nonmembers = files
    task = MembershipInference(members=str(m_file), nonmembers=str(n_file), resamples=50)
    task.evaluate(TableModel(0), tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path))
    edited = Shifted(0)
    result = task.evaluate(edited, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "edited", tmp_path))
    base = [mia.loss_score(s["logprob"]) for s in passage_stats(TableModel(0), members + nonmembers, 8, "cpu")]
    now = [mia.loss_score(s["logprob"]) for s in passage_stats(edited, members + nonmembers, 8, "cpu")]
    diff = [a - b for a, b in zip(now, base)]
    assert result.metrics["auc_reference"] == pytest.approx(mia.auc(diff[:30], diff[30:]))
    assert result.metrics["auc_reference"] != 0.5
    # Inside an attack there is no baseline file in the artifacts folder: no reference attack.
    other = task.evaluate(edited, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "edited", tmp_path / "a"))
    assert "auc_reference" not in other.metrics and "not computed" in other.info["reference_attack"]


def test_retrained_reference_gives_privleak_and_is_cached(tmp_path: Path, tiny_tokenizer) -> None:
    from tests.conftest import make_tiny_olmo2

    rng = torch.Generator().manual_seed(0)
    rows = [torch.randint(4, 124, (12,), generator=rng).tolist() for _ in range(16)]
    m_file, n_file = write_rows(tmp_path / "m.jsonl", rows[:8]), write_rows(tmp_path / "n.jsonl", rows[8:])
    reference = tmp_path / "reference"
    make_tiny_olmo2(seed=1).save_pretrained(reference)
    task = MembershipInference(members=str(m_file), nonmembers=str(n_file), reference=str(reference), resamples=50)
    model = make_tiny_olmo2(seed=0)
    task.check(model, tiny_tokenizer)
    ctx = TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path / "artifacts")
    result = task.evaluate(model, tiny_tokenizer, ctx)
    ref_scores = [mia.min_k_score(s["logprob"], 0.4)
                  for s in passage_stats(make_tiny_olmo2(seed=1), rows, 4, "cpu")]
    retrain_auc = mia.auc(ref_scores[:8], ref_scores[8:])
    assert result.metrics["retrain_auc"] == pytest.approx(retrain_auc)
    assert result.metrics["privleak"] == pytest.approx(mia.privleak(result.metrics["auc_min_k"], retrain_auc))
    assert str(reference) in result.info["privleak_reference"]
    cached = list((tmp_path / "artifacts").glob("membership_reference_*.json"))
    assert len(cached) == 1
    cached[0].write_text(json.dumps({"min_k": [0.0] * 8 + [1.0] * 8}))  # a second run reads the cache
    again = task.evaluate(model, tiny_tokenizer, ctx)
    assert again.metrics["retrain_auc"] == 1.0 and "privleak" not in again.metrics  # no relative scale
    (reference / "model.safetensors").write_bytes(b"not weights")  # a broken reference: one line
    broken = MembershipInference(members=str(m_file), nonmembers=str(n_file), reference=str(reference))
    with pytest.raises(DataError, match="cannot load the reference model"):
        broken.evaluate(model, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path / "b"))
    with pytest.raises(DataError, match="not a save_pretrained folder"):
        MembershipInference(members=str(m_file), nonmembers=str(n_file), reference=str(tmp_path)).check(
            model, tiny_tokenizer)


def test_settings_and_skipping(tmp_path: Path, files, tiny_tokenizer) -> None:
    m_file, n_file, _, _ = files
    with pytest.raises(ConfigError, match="k must be"):
        MembershipInference(members=str(m_file), nonmembers=str(n_file), k=0)
    with pytest.raises(ConfigError, match="members must be"):
        MembershipInference(members=[], nonmembers=str(n_file))
    with pytest.raises(ConfigError, match="once"):
        MembershipInference(members=str(m_file), data=str(m_file), nonmembers=str(n_file))
    alias = MembershipInference(data=str(m_file), nonmembers=str(n_file))  # the organism suite's form
    assert alias.members == [m_file] and not hasattr(alias, "data")
    task = MembershipInference(members=[str(m_file), str(m_file)], nonmembers=None)
    task.check(TableModel(0), tiny_tokenizer)  # nothing to check without nonmembers
    with pytest.raises(TaskSkipped, match="nonmembers"):
        task.evaluate(TableModel(0), tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path))
    two = MembershipInference(members=[str(m_file), str(m_file)], nonmembers=str(n_file), resamples=20)
    result = two.evaluate(TableModel(0), tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path))
    assert result.n == 60  # a list of member files is read in order


def test_pipeline_resolves_every_data_key(tmp_path: Path, files, monkeypatch) -> None:
    from types import SimpleNamespace

    from core import registry
    from harness.pipeline import build_tasks

    m_file, n_file, _, _ = files
    monkeypatch.setattr(registry, "load_class", lambda kind, name, base: MembershipInference)
    loaded = SimpleNamespace(data={"forget": m_file, "control": n_file})
    tasks = build_tasks({"membership": {"task": "membership", "members": ["model:forget", str(m_file)],
                                        "nonmembers": "model:control"}}, loaded)
    task, family = tasks["membership"]
    assert task.members == [m_file.resolve(), m_file.resolve()] and task.nonmembers == [n_file.resolve()]
    assert family == "membership"
    # The entry an organism Evaluation writes: its one data file, the rest in params.
    organism = build_tasks({"membership_forget": {"task": "membership", "family": "membership",
                                                  "data": "model:forget", "nonmembers": "model:control"}}, loaded)
    assert organism["membership_forget"][0].members == [m_file.resolve()]
