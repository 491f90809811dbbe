"""Relearning: fine-tuning a copy lowers the NLL of what it trains on, never touches the model it
is given, scores each checkpoint of one trajectory, and splits the forget task in halves."""

import types

import pytest
import torch

from attacks.base import AttackContext, subset_entry
from attacks.relearn import Relearn, split_trained
from core.errors import ConfigError
from methods._finetune import dataset_nll
from tests.conftest import make_tiny_olmo2


def context(forget, retain, score):
    sources = types.SimpleNamespace(forget=lambda: forget, retain=lambda: retain)
    return AttackContext(tokenizer=None, device=torch.device("cpu"), seed=0, batch_size=4, tasks={},
                         score=score, sources=sources, forget_task="verbatim", data={})


def test_relearning_on_forget_half_lowers_its_nll_on_a_copy() -> None:
    g = torch.Generator().manual_seed(0)
    forget = [torch.randint(4, 120, (24,), generator=g).tolist() for _ in range(8)]
    model = make_tiny_olmo2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained_half = [forget[i] for i in Relearn().training_set("forget_half", context(forget, [], None))[2]]
    start = dataset_nll(model, trained_half, 0, torch.device("cpu"))
    nll_at = {}

    def score(clone, names=None):
        nll_at[len(nll_at)] = dataset_nll(clone, trained_half, 0, torch.device("cpu"))
        return {"verbatim": {"family": "memorized", "n": 8, "primary": "strict", "metrics": {"strict": 0.5},
                             "kinds": {"strict": "proportion"}, "higher_is_better": {"strict": True},
                             "samples": {"strict": [1, 0, 1, 0, 1, 0, 1, 0]}}}

    units = []
    Relearn(steps=[3, 10], data=["forget_half"], lr=3e-3).run(model, context(forget, [], score), "relearn", set(), units.append)
    assert [u.key for u in units] == ["relearn.forget_half.k3", "relearn.forget_half.k10"]
    assert [u.steps for u in units] == [3, 10]
    assert start > nll_at[0] > nll_at[1]  # relearning lowers the forget NLL, more with more steps
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # model untouched
    assert set(units[0].tasks) == {"verbatim[trained]", "verbatim[heldout]"}
    assert units[0].tasks["verbatim[trained]"]["n"] + units[0].tasks["verbatim[heldout]"]["n"] == 8


def test_done_trajectories_are_skipped_and_missing_data_is_recorded_as_skipped() -> None:
    model = make_tiny_olmo2()
    units = []
    attack = Relearn(steps=[1], data=["forget_half", "related"])
    attack.run(model, context([[5] * 10] * 4, [], lambda m, n=None: {}), "r", {"r.forget_half.k1"}, units.append)
    assert [u.key for u in units] == ["r.related.k1"] and "related_data" in units[0].info["skipped"]


def test_subset_entry_recomputes_metrics_from_samples() -> None:
    entry = {"family": "memorized", "n": 4, "primary": "strict", "metrics": {"strict": 0.5, "lev_norm": 0.3},
             "kinds": {"strict": "proportion", "lev_norm": "mean"}, "higher_is_better": {"strict": True, "lev_norm": False},
             "samples": {"strict": [1.0, 1.0, 0.0, 0.0], "lev_norm": [0.0, 0.2, 0.4, 0.6]}}
    part = subset_entry(entry, [0, 2])
    assert part["n"] == 2 and part["metrics"] == {"strict": 0.5, "lev_norm": 0.2}
    halves = split_trained({"v": entry, "q": entry}, "v", [0, 1])
    assert set(halves) == {"q", "v[trained]", "v[heldout]"}
    assert halves["v[trained]"]["metrics"]["strict"] == 1.0 and halves["v[heldout]"]["metrics"]["strict"] == 0.0


@pytest.mark.parametrize("kwargs", [{"steps": []}, {"steps": [0]}, {"data": ["nope"]}, {"lr": 0}, {"params": "x"}])
def test_bad_settings_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError, match="relearn"):
        Relearn(**kwargs)
