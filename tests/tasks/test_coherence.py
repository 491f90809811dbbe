"""Perplexity and nDCG@10 against slow obvious references and hand-computed cases."""

import math
from pathlib import Path

import pytest
import torch

from core.errors import DataError
from tasks.base import TaskContext
from tasks.coherence import NextTokenNDCG, Perplexity, ndcg_at_k
from tests.conftest import make_tiny_olmo2


def test_ndcg_identical_rankings_is_one() -> None:
    ids = torch.tensor([[5, 7, 9], [1, 2, 3]])
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]])
    assert ndcg_at_k(ids, ids, probs).tolist() == pytest.approx([1.0, 1.0])


def test_ndcg_swapped_and_missing_tokens_by_hand() -> None:
    base_ids, base_probs = torch.tensor([[5, 7, 9]]), torch.tensor([[0.5, 0.3, 0.2]])
    d = [1 / math.log2(i + 1) for i in (1, 2, 3)]
    ideal = 0.5 * d[0] + 0.3 * d[1] + 0.2 * d[2]
    swapped = ndcg_at_k(torch.tensor([[7, 5, 9]]), base_ids, base_probs).item()
    assert swapped == pytest.approx((0.3 * d[0] + 0.5 * d[1] + 0.2 * d[2]) / ideal)  # 0.9065
    missing = ndcg_at_k(torch.tensor([[1, 5, 2]]), base_ids, base_probs).item()
    assert missing == pytest.approx(0.5 * d[1] / ideal)
    assert ndcg_at_k(torch.tensor([[1, 2, 3]]), base_ids, base_probs).item() == 0.0


def write_text(tmp_path: Path) -> str:
    path = tmp_path / "heldout.txt"
    path.write_text("\n\n".join(" ".join(f"w{(i * 7 + j) % 120}" for j in range(30)) for i in range(6)) + "\n")
    return str(path)


def test_perplexity_matches_a_slow_reference(tmp_path: Path, tiny_tokenizer) -> None:
    model = make_tiny_olmo2()
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    r = Perplexity(write_text(tmp_path), seq_len=16).evaluate(model, tiny_tokenizer, ctx)
    # Reference: concatenate documents with EOS, cut into 16-token windows, score token by token.
    ids = []
    for line in Path(tmp_path / "heldout.txt").read_text().strip().split("\n\n"):  # documents: blank-line separated
        ids += tiny_tokenizer(line, add_special_tokens=False)["input_ids"] + [tiny_tokenizer.eos_token_id]
    nll, count = 0.0, 0
    for start in range(0, len(ids) - 15, 16):
        window = torch.tensor([ids[start : start + 16]])
        logp = model(input_ids=window).logits.log_softmax(-1)[0]
        for t in range(15):
            nll -= logp[t, window[0, t + 1]].item()
            count += 1
    assert r.n == len(ids) // 16
    assert r.metrics["mean_nll"] == pytest.approx(nll / count, rel=1e-5)
    assert r.metrics["ppl"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert math.log(len(tiny_tokenizer)) - 1 < r.metrics["mean_nll"] < math.log(len(tiny_tokenizer)) + 1  # random init


def test_ndcg_baseline_is_one_and_edit_is_compared(tmp_path: Path, tiny_tokenizer) -> None:
    data = write_text(tmp_path)
    task = NextTokenNDCG(data, seq_len=16)
    base = make_tiny_olmo2(seed=0)
    baseline = task.evaluate(base, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path))
    assert baseline.metrics["ndcg10"] == pytest.approx(1.0)
    assert list(tmp_path.glob("ndcg10_baseline_*.safetensors"))
    edited_ctx = TaskContext(torch.device("cpu"), 0, 4, "edited", tmp_path)
    same = task.evaluate(base, tiny_tokenizer, edited_ctx)
    assert same.metrics["ndcg10"] == pytest.approx(1.0)
    other = task.evaluate(make_tiny_olmo2(seed=1), tiny_tokenizer, edited_ctx)
    assert other.metrics["ndcg10"] < 0.5  # unrelated random model: rankings barely overlap
    with pytest.raises(DataError, match="evaluate the baseline first"):
        task.evaluate(base, tiny_tokenizer, TaskContext(torch.device("cpu"), 0, 4, "edited", tmp_path / "empty"))


def slow_nll(model, ids: list[int], seq_len: int) -> tuple[float, int, int]:
    """(mean NLL over every scored token, tokens scored, windows) of consecutive windows of
    `seq_len` over `ids`, the last one shorter: token by token."""
    nll, count, windows = 0.0, 0, 0
    for start in range(0, len(ids), seq_len):
        window = ids[start : start + seq_len]
        if len(window) < 2:
            continue
        windows += 1
        logp = model(input_ids=torch.tensor([window])).logits.log_softmax(-1)[0]
        for t in range(len(window) - 1):
            nll -= logp[t, window[t + 1]].item()
            count += 1
    return nll / count, count, windows


@pytest.mark.parametrize("seq_len,remainder,windows", [
    (150, None, 2),   # one full window and the rest: scored whole (it was n=1, the rest dropped)
    (400, None, 1),   # shorter than one window: one shorter window (it was refused)
    (16, None, 11),   # many windows: the remainder is dropped, equal windows as before
    (16, True, 12),   # remainder: true (suite=own_model): every token
])
def test_perplexity_scores_every_token_of_a_short_text(tmp_path: Path, tiny_tokenizer, seq_len: int,
                                                       remainder: bool | None, windows: int) -> None:
    """Issue 29: a text of one and a half windows gave n = 1 and dropped the rest."""
    model = make_tiny_olmo2()
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    r = Perplexity(write_text(tmp_path), seq_len=seq_len, remainder=remainder).evaluate(model, tiny_tokenizer, ctx)
    ids = []
    for doc in Path(tmp_path / "heldout.txt").read_text().strip().split("\n\n"):
        ids += tiny_tokenizer(doc, add_special_tokens=False)["input_ids"] + [tiny_tokenizer.eos_token_id]
    assert len(ids) == 186 and r.n == windows
    scored = ids if remainder or seq_len > len(ids) // 2 else ids[: len(ids) // seq_len * seq_len]
    mean, _, count = slow_nll(model, scored, seq_len)
    assert count == windows and r.metrics["mean_nll"] == pytest.approx(mean, rel=1e-5)


def test_perplexity_remainder_false_refuses_a_text_shorter_than_one_window(tmp_path: Path, tiny_tokenizer) -> None:
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    with pytest.raises(DataError, match="fewer than 400 tokens"):
        Perplexity(write_text(tmp_path), seq_len=400, remainder=False).evaluate(make_tiny_olmo2(), tiny_tokenizer, ctx)
