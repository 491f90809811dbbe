"""Verbatim and quote metrics against hand-computed cases."""

import json
from pathlib import Path

import pytest
import torch

from tasks.base import TaskContext
from tasks.verbatim import VerbatimRecall, score_continuations


def test_scores_match_hand_computed_levenshtein() -> None:
    target = [1, 2, 3, 4]
    generated = [
        [1, 2, 3, 4],  # exact: d = 0
        [1, 2, 3, 9],  # one substitution: d = 1, 1 - d/L = 0.75 -> loose
        [9, 9, 3, 4],  # two substitutions: d = 2 -> 0.5, not loose
        [2, 3, 4, 5],  # shifted: delete 1, insert 5 -> d = 2
    ]
    r = score_continuations(generated, [target] * 4)
    assert r.samples["strict"] == [1.0, 0.0, 0.0, 0.0]
    assert r.samples["loose"] == [1.0, 1.0, 0.0, 0.0]
    assert r.samples["lev_norm"] == [0.0, 0.25, 0.5, 0.5]
    assert r.metrics == {"strict": 0.25, "loose": 0.5, "lev_norm": pytest.approx(1.25 / 4)}
    assert r.n == 4 and r.primary == "strict" and r.higher_is_better["lev_norm"] is False


def test_generation_longer_than_target_is_cut() -> None:
    r = score_continuations([[1, 2, 3, 7, 7]], [[1, 2, 3]])
    assert r.metrics["strict"] == 1.0


class EchoModel(torch.nn.Module):
    """Predicts token (previous + 1) mod V: a model whose greedy continuation we know exactly."""

    vocab = 50

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        logits = torch.nn.functional.one_hot((input_ids + 1) % self.vocab, self.vocab).float()
        return type("Out", (), {"logits": logits, "past_key_values": None})()


def test_verbatim_task_on_a_known_model(tmp_path: Path, tiny_tokenizer) -> None:
    rows = [{"prefix_ids": [5, 6, 7], "suffix_ids": [8, 9, 10]},   # the model continues 8, 9, 10: recalled
            {"prefix_ids": [20, 21], "suffix_ids": [22, 23, 30]}]  # third token differs: loose (2/3 < .75? no)
    data = tmp_path / "v.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    ctx = TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path)
    result = VerbatimRecall(str(data)).evaluate(EchoModel(), tiny_tokenizer, ctx)
    assert result.samples["strict"] == [1.0, 0.0]
    assert result.samples["lev_norm"] == [0.0, pytest.approx(1 / 3)]
    assert result.samples["loose"] == [1.0, 0.0]  # 1 - 1/3 = 0.667 < 0.75
