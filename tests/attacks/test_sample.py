"""Sampling extraction: temperature -> 0 reproduces greedy decoding (with left padding), the
scores count exact samples per prompt, and bad settings are one-line errors."""

import pytest
import torch

from attacks.sample import Sample, extraction_scores, sample_continuations
from core.errors import ConfigError
from tasks.generation import greedy_generate
from tests.conftest import make_tiny_olmo2


def test_temperature_near_zero_reproduces_greedy_decoding() -> None:
    model = make_tiny_olmo2()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [20, 3, 21, 22]]  # 3 = <eos>: no early stop
    greedy = greedy_generate(model, prompts, 10, 8, 0, "cpu")
    torch.manual_seed(0)
    cold = sample_continuations(model, prompts, 10, 4, 1e-6, 40, 0.9, 0, "cpu", prompts_per_batch=2)
    assert all(len(draws) == 4 for draws in cold)
    assert [draws for draws in cold] == [[g] * 4 for g in greedy]
    exact_greedy = sample_continuations(model, prompts, 10, 4, 0, 40, 0.9, 0, "cpu")
    assert exact_greedy == [[g] for g in greedy]


def test_temperature_one_draws_differ_and_are_seeded() -> None:
    model = make_tiny_olmo2()
    prompts = [[5, 6, 7, 8]]
    torch.manual_seed(0)
    a = sample_continuations(model, prompts, 12, 8, 1.0, None, None, 0, "cpu")
    torch.manual_seed(0)
    b = sample_continuations(model, prompts, 12, 8, 1.0, None, None, 0, "cpu")
    assert a == b and len({tuple(d) for d in a[0]}) > 1  # a random model's samples vary


def test_extraction_scores_count_exact_samples_per_prompt() -> None:
    target = [1, 2, 3, 4]
    samples = [[[1, 2, 3, 4], [1, 2, 3, 5], [9, 9, 9, 9], [1, 2, 3, 4]],  # 2 of 4 exact
               [[0, 2, 3, 4], [9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9]]]  # none exact, one loose
    r = extraction_scores(samples, [target, target])
    assert r.metrics == {"any_exact": 0.5, "p_extract": 0.25, "any_loose": 1.0}
    assert r.samples["p_extract"] == [0.5, 0.0] and r.primary == "any_exact" and r.n == 2


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"temperature": -1}, {"top_k": 0}, {"top_p": 1.5}])
def test_bad_settings_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError, match="sample:"):
        Sample(**kwargs)
