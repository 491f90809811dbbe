"""Perturbed recall: the perturbations and the longest-exact-prefix score on a stub model."""

import json
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError
from tasks.base import TaskContext
from tasks.perturbed import PerturbedRecall, common_prefix_length, perturbations
from tests.tasks.stub_models import NextIdModel


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 3]) == 3
    assert common_prefix_length([1, 9, 3], [1, 2, 3]) == 1
    assert common_prefix_length([9, 2, 3], [1, 2, 3]) == 0


def test_perturbations() -> None:
    assert perturbations([1, 2, 3], [1, 2, 5], [0, 2], 0) == [[2, 3], [3], [0, 1, 2, 3], [1, 2, 0, 3]]


class LastTwoModel(torch.nn.Module):
    """Continues a memorized sequence only when the last two tokens are consecutive ids (a+1 after
    a); after anything else it emits id 0. A filler token at the end of the prompt breaks recall,
    dropping tokens from the front does not."""

    vocab = 64

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        # Stateless per call: with a KV cache only the new token arrives, so keep the history here.
        if past_key_values is None:
            self.history = input_ids
        else:
            self.history = torch.cat([self.history, input_ids], dim=1)
        prev = torch.nn.functional.pad(self.history[:, :-1], (1, 0), value=-5)
        consecutive = self.history == prev + 1
        nxt = torch.where(consecutive, (self.history + 1) % self.vocab, torch.zeros_like(self.history))
        logits = torch.nn.functional.one_hot(nxt, self.vocab).float()[:, -input_ids.shape[1]:]
        return type("Out", (), {"logits": logits, "past_key_values": True})()


def test_score_is_max_over_perturbations(tmp_path: Path, tiny_tokenizer) -> None:
    rows = [{"prefix_ids": [10, 11, 12, 13], "suffix_ids": [14, 15, 16, 17]},
            {"prefix_ids": [20, 21, 22, 23], "suffix_ids": [24, 25, 99, 27]}]
    data = tmp_path / "v.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    ctx = TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path)
    r = PerturbedRecall(str(data), drop=[1], insert_at=[4], filler_token_id=50).evaluate(
        NextIdModel(), tiny_tokenizer, ctx)
    # drop 1 keeps the continuation; the filler at the end sends the model to 51, 52: prefix 0.
    assert r.samples["perturbed_recall"] == [1.0, 0.5] and r.samples["unperturbed"] == [1.0, 0.5]
    only_insert = PerturbedRecall(str(data), drop=[], insert_at=[4], filler_token_id=50).evaluate(
        NextIdModel(), tiny_tokenizer, ctx)
    assert only_insert.metrics["perturbed_recall"] == 0.0
    # A model with a KV cache path: insert in the middle keeps the last two tokens consecutive.
    mid = PerturbedRecall(str(data), drop=[], insert_at=[1], filler_token_id=50).evaluate(
        LastTwoModel(), tiny_tokenizer, ctx)
    assert mid.samples["perturbed_recall"] == [1.0, 0.5]


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="at least one perturbation"):
        PerturbedRecall("x", drop=[], insert_at=[])
    with pytest.raises(ConfigError, match="drop must be >= 1"):
        PerturbedRecall("x", drop=[0])
