"""tasks/mia.py against slow obvious references, hand-worked published-definition cases, and numbers
from running open-unlearning's metric code on the same inputs."""

from __future__ import annotations

import itertools
import math
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tasks import mia
from tasks.membership import passage_stats


# --- slow, obvious references ------------------------------------------------------------------

def slow_auc(members: list[float], nonmembers: list[float]) -> float:
    """Every (member, nonmember) pair: 1 when the nonmember scores higher, 1/2 on a tie."""
    pairs = list(itertools.product(members, nonmembers))
    return sum(1.0 if n > m else 0.5 if n == m else 0.0 for m, n in pairs) / len(pairs)


def slow_min_k(logprobs: list[float], k: float) -> float:
    count = max(1, int(len(logprobs) * k))
    lowest = sorted(logprobs)[:count]
    return -sum(lowest) / count


def slow_extraction_strength(correct: list[bool]) -> float:
    """1 - min{k in 0..|y| : every prediction from k on is right} / |y| (empty tail: always right)."""
    n = len(correct)
    k = next(k for k in range(n + 1) if all(correct[k:]))
    return 1 - k / n


def test_auc_equals_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.integers(0, 6, rng.integers(1, 9)).astype(float).tolist()  # few values: many ties
        n = rng.integers(0, 6, rng.integers(1, 9)).astype(float).tolist()
        assert mia.auc(m, n) == pytest.approx(slow_auc(m, n))


def test_auc_hand_cases() -> None:
    assert mia.auc([1, 2], [3, 4]) == 1.0  # members all lower: told apart perfectly
    assert mia.auc([3, 4], [1, 2]) == 0.0
    assert mia.auc([1], [1]) == 0.5
    assert mia.auc([1, 3], [2, 4]) == 0.75  # pairs (1,2) (1,4) (3,4) right, (3,2) wrong
    with pytest.raises(ValueError):
        mia.auc([], [1.0])


def test_min_k_against_reference_and_by_hand() -> None:
    assert mia.min_k_score([-1, -2, -3, -4, -5], 0.4) == 4.5  # int(5 * .4) = 2 lowest: -5, -4
    assert mia.min_k_score([-1, -2, -3], 0.2) == 3.0  # int(0.6) = 0 -> at least one token
    rng = np.random.default_rng(1)
    for k in (0.05, 0.2, 0.4, 1.0):
        lp = (-rng.exponential(2, 37)).tolist()
        assert mia.min_k_score(lp, k) == pytest.approx(slow_min_k(lp, k))


def test_min_k_plus_plus_by_hand() -> None:
    # Two positions over a 2-token vocabulary. Position 1: p = (0.8, 0.2), true token the second.
    lp = [math.log(0.8), math.log(0.2)]
    mu = 0.8 * lp[0] + 0.2 * lp[1]
    var = 0.8 * lp[0] ** 2 + 0.2 * lp[1] ** 2 - mu ** 2
    z1 = (lp[1] - mu) / math.sqrt(var)
    # Position 2: uniform (variance 0, floored at 1e-6 as open-unlearning does): z = 0.
    z2 = 0.0
    score = mia.min_k_plus_plus_score([lp[1], math.log(0.5)], [mu, math.log(0.5)], [var, 0.0], k=0.5)
    assert score == pytest.approx(-min(z1, z2))  # int(2 * .5) = 1: the lowest z
    assert mia.min_k_plus_plus_score([lp[1], math.log(0.5)], [mu, math.log(0.5)], [var, 0.0], 1.0) == \
        pytest.approx(-(z1 + z2) / 2)


def test_loss_zlib_reference_by_hand() -> None:
    assert mia.loss_score([-1.0, -3.0]) == 2.0
    assert mia.zlib_bytes("") == 8  # zlib's 2-byte header, empty final block, 4-byte Adler-32
    assert mia.zlib_score(4.0, "") == 0.5
    text = "the cat sat on the mat " * 4
    assert mia.zlib_score(2.0, text) == 2.0 / len(zlib.compress(text.encode("utf-8")))
    assert mia.reference_score(3.0, 2.5) == 0.5


def test_privleak_muse_convention() -> None:
    # MUSE's AUC is 1 - ours. MUSE NEWS retrain AUC (forget_holdout_Min-40%, constants.py) is 0.4772:
    # a model whose members are found perfectly (MUSE AUC 0) has PrivLeak -100 %.
    assert mia.privleak(1.0, 1 - 0.4772) == pytest.approx(-100.0)
    assert mia.privleak(0.5, 0.5) == 0.0
    assert mia.privleak(0.9, 0.5) == pytest.approx((0.1 - 0.5) / 0.5 * 100)  # leaks: negative
    assert mia.privleak(0.3, 0.5) == pytest.approx(40.0)  # over-unlearned: positive
    assert math.isnan(mia.privleak(0.7, 1.0))


def test_extraction_strength_and_exact_memorization() -> None:
    cases = {(True, True, True): 1.0, (False, True, True): 2 / 3, (True, False, True): 1 / 3,
             (True, True, False): 0.0, (False, False, False): 0.0}
    for correct, expected in cases.items():
        assert mia.extraction_strength(correct) == pytest.approx(expected)
        assert mia.extraction_strength(correct) == pytest.approx(slow_extraction_strength(list(correct)))
    rng = np.random.default_rng(2)
    for _ in range(30):
        flags = (rng.random(rng.integers(1, 12)) < 0.7).tolist()
        assert mia.extraction_strength(flags) == pytest.approx(slow_extraction_strength(flags))
        assert mia.exact_memorization(flags) == pytest.approx(sum(flags) / len(flags))


def test_bootstrap_intervals() -> None:
    assert mia.auc_interval([1, 2, 3], [4, 5, 6], resamples=200) == (1.0, 1.0)  # separated in every resample
    rng = np.random.default_rng(3)
    m, n = rng.normal(0, 1, 40), rng.normal(0.5, 1, 40)
    lo, hi = mia.auc_interval(m, n, resamples=300)
    assert lo < mia.auc(m, n) < hi and 0 < hi - lo < 0.5
    assert mia.auc_interval(m, n, resamples=300) == (lo, hi)  # seeded: the same interval again
    # privleak against chance: the interval of the fixed-reference transform of the AUC interval
    p_lo, p_hi = mia.privleak_interval(m, n, None, None, resamples=300)
    assert (p_lo, p_hi) == pytest.approx((mia.privleak(hi, 0.5), mia.privleak(lo, 0.5)))
    # paired with a retrained model that scores like the model: privleak is 0 in every resample
    assert mia.privleak_interval(m, n, m, n, resamples=100) == (0.0, 0.0)


def test_fast_intervals_equal_the_slow_bootstrap() -> None:
    """The pair-win-matrix intervals give the replicates of resampling and recomputing each AUC."""
    rng = np.random.default_rng(4)
    m, n = rng.integers(0, 8, 25).astype(float), rng.integers(2, 10, 31).astype(float)  # ties
    rm, rn = rng.normal(0, 1, 25), rng.normal(0, 1, 31)
    slow = mia.bootstrap_interval(lambda i, j: mia.auc(m[i], n[j]), 25, 31, 300, 0.9, seed=7)
    assert mia.auc_interval(m, n, 300, 0.9, seed=7) == pytest.approx(slow, abs=1e-12)
    slow_leak = mia.bootstrap_interval(lambda i, j: mia.privleak(mia.auc(m[i], n[j]), mia.auc(rm[i], rn[j])),
                                       25, 31, 300, 0.9, seed=7)
    assert mia.privleak_interval(m, n, rm, rn, 300, 0.9, seed=7) == pytest.approx(slow_leak, abs=1e-9)


# --- the same inputs through open-unlearning's code ----------------------------------------------

V, EOS = 30, 29


class TableModel(torch.nn.Module):
    """logits[t] = W[x_t] + P[t] from a seeded generator: causal by construction."""

    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(V, V, generator=g) * 3
        self.P = torch.randn(64, V, generator=g)

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.W[input_ids] + self.P[: input_ids.shape[1]])


def planted_passages(model: TableModel) -> tuple[list[list[int]], list[list[int]]]:
    """30 'members' that follow the model's greedy choice with probability 0.35, 30 'nonmembers'
    with 0.2 (16 tokens each), from one seeded stream."""
    g = torch.Generator().manual_seed(2)

    def passage(follow: float) -> list[int]:
        x = [int(torch.randint(0, EOS, (1,), generator=g))]
        for _ in range(15):
            greedy = int(model(torch.tensor([x])).logits[0, -1, :EOS].argmax())
            x.append(greedy if torch.rand(1, generator=g) < follow else int(torch.randint(0, EOS, (1,), generator=g)))
        return x

    return [passage(0.35) for _ in range(30)], [passage(0.2) for _ in range(30)]


def test_matches_open_unlearning_on_the_same_inputs() -> None:
    """The constants below came from RUNNING open-unlearning's metric code (github.com/locuslab/
    open-unlearning at d3d7cf9: src/evals/metrics/mia, memorization.py; its registry stubbed, the
    rest unchanged) on these models and passages (/tmp script, not in the repo). Their MIA datasets
    label every token but the first; min-k(++) got a trailing EOS that their code drops, and zlib
    compresses the labelled text (the passage less its first token), so inputs match ours."""
    model, reference = TableModel(0), TableModel(1)
    members, nonmembers = planted_passages(model)
    stats = passage_stats(model, members + nonmembers, 4, "cpu")
    ref_stats = passage_stats(reference, members + nonmembers, 4, "cpu")
    loss = [mia.loss_score(s["logprob"]) for s in stats]
    scores = {
        "loss": loss,
        "zlib": [mia.zlib_score(v, " ".join(f"w{i}" for i in p[1:])) for v, p in zip(loss, members + nonmembers)],
        "min_k": [mia.min_k_score(s["logprob"], 0.4) for s in stats],
        "min_k_pp": [mia.min_k_plus_plus_score(s["logprob"], s["mu"], s["variance"], 0.4) for s in stats],
        "reference": [v - mia.loss_score(r["logprob"]) for v, r in zip(loss, ref_stats)],
    }
    open_unlearning_auc = {"loss": 0.7422222222222222, "zlib": 0.6922222222222222, "min_k": 0.5844444444444444,
                           "min_k_pp": 0.5355555555555556, "reference": 0.7222222222222223}
    for attack, expected in open_unlearning_auc.items():
        assert mia.auc(scores[attack][:30], scores[attack][30:]) == pytest.approx(expected, abs=1e-9), attack
    # Extraction strength and exact memorization on the members: prefix 6 tokens, target the other 10.
    correct = [s["correct"][5:] for s in stats[:30]]
    assert np.mean([mia.exact_memorization(c) for c in correct]) == pytest.approx(0.34666667332251866, abs=1e-6)
    # open-unlearning's ES mean is 0.13333; it floors at 1/|y| = 0.1 where the last token is wrong
    # (18 of the 30 here), the published formula gives 0 there.
    last_wrong = sum(not c[-1] for c in correct)
    assert last_wrong == 18
    assert np.mean([mia.extraction_strength(c) for c in correct]) == pytest.approx(0.13333333333333336 - 0.1 * 18 / 30)


def test_passage_stats_against_a_slow_loop() -> None:
    """Batched, right-padded statistics equal one passage at a time, position by position."""
    model = TableModel(0)
    passages = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11]]
    stats = passage_stats(model, passages, 2, "cpu")
    for passage, s in zip(passages, stats):
        logits = model(torch.tensor([passage])).logits[0].double()
        for t in range(1, len(passage)):
            logp = torch.log_softmax(logits[t - 1], -1)
            p = logp.exp()
            mu = float((p * logp).sum())
            assert s["logprob"][t - 1] == pytest.approx(float(logp[passage[t]]), abs=1e-5)
            assert s["mu"][t - 1] == pytest.approx(mu, abs=1e-5)
            assert s["variance"][t - 1] == pytest.approx(float((p * logp ** 2).sum()) - mu ** 2, abs=1e-4)
            assert s["correct"][t - 1] == (int(logp.argmax()) == passage[t])
        assert len(s["logprob"]) == len(passage) - 1
