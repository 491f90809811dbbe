"""Quote recall: the 8-token rule on `full_quote`, and the authors' `prefix` / `target_suffix` split."""

import json
from pathlib import Path

import pytest
import torch

from core.errors import DataError
from tasks.base import TaskContext
from tasks.quotes import QuoteRecall
from tests.tasks.stub_models import NextIdModel


def words(*ids: int) -> str:
    return " ".join(f"w{i}" for i in ids)  # tiny_tokenizer: "wK" is token K + 4


def run(tmp_path: Path, tokenizer, rows: list[dict], **settings):
    data = tmp_path / "quotes.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    ctx = TaskContext(torch.device("cpu"), 0, 8, "baseline", tmp_path)
    return QuoteRecall(str(data), **settings).evaluate(NextIdModel(), tokenizer, ctx)


def test_full_quote_holds_out_the_last_eight_tokens(tmp_path: Path, tiny_tokenizer) -> None:
    rows = [{"full_quote": words(*range(12))},                    # counts up: recalled
            {"full_quote": words(*range(11), 40)},                # last token off: 1/8 wrong
            {"full_quote": words(*range(8))}]                     # 8 tokens: no prompt left, skipped
    result = run(tmp_path, tiny_tokenizer, rows)
    assert result.n == 2
    assert result.samples["strict"] == [1.0, 0.0]
    assert result.samples["lev_norm"] == [0.0, pytest.approx(1 / 8)]


def test_prefix_and_target_suffix_split_is_honoured(tmp_path: Path, tiny_tokenizer) -> None:
    rows = [{"full_quote": words(0, 1, 2, 3), "prefix": words(0, 1), "target_suffix": words(2, 3)},
            {"prefix": words(5), "target_suffix": words(6, 7, 30)},   # third token differs
            {"full_quote": words(*range(10, 22))}]                     # no split given: 8-token rule
    result = run(tmp_path, tiny_tokenizer, rows)
    # Both short quotes are scored (the 8-token rule would drop them), each on its own target.
    assert result.n == 3
    assert result.samples["strict"] == [1.0, 0.0, 1.0]
    assert result.samples["lev_norm"] == [0.0, pytest.approx(1 / 3), 0.0]


def test_a_row_without_a_quote_is_one_line(tmp_path: Path, tiny_tokenizer) -> None:
    with pytest.raises(DataError, match="quotes.jsonl:1: rows need a 'full_quote' string, or 'prefix' and 'target_suffix' strings"):
        run(tmp_path, tiny_tokenizer, [{"prefix": words(1)}])
