"""QA, logic and arithmetic: answer extraction, matching, and the open/closed pairing."""

import json
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, DataError
from tasks.arithmetic import Arithmetic
from tasks.base import TaskContext
from tasks.logic import Logic
from tasks.qa import QuestionAnswering, answer_matches, first_answer
from tests.tasks.stub_models import NextIdModel

# The tiny tokenizer maps word wN to id N + 4; NextIdModel continues "w10" with "w11 w12 ...".


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def ctx(tmp_path: Path, role: str = "baseline") -> TaskContext:
    return TaskContext(torch.device("cpu"), 0, 3, role, tmp_path)


def test_answer_matching_rules() -> None:
    assert first_answer("  Paris\nQ: next") == "Paris"
    assert answer_matches("Paris", "Paris") and answer_matches("Paris. It is", " Paris ")
    assert not answer_matches("Parisian", "Paris") and not answer_matches("Lyon", "Paris")
    assert not answer_matches("1234", "12")  # a longer number is wrong, not a match


FACTS = [
    {"id": "f1", "question": "w10", "answer": "w11", "context": "w1 w2", "frequency": "common"},
    {"id": "f2", "question": "w20", "answer": "w99", "context": "w3 w4", "frequency": "common"},
    {"id": "f3", "question": "w30", "answer": "w31", "context": "w5 w6", "frequency": "rare"},
    {"id": "f4", "question": "w40", "answer": "w41", "context": "", "frequency": "rare"},  # no context
]


def test_open_and_closed_ask_the_same_questions(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    for frequency in (None, "common", "rare"):
        closed = QuestionAnswering(data, mode="closed", frequency=frequency)
        opened = QuestionAnswering(data, mode="open", frequency=frequency)
        ids_closed = [r["id"] for r in closed.select(FACTS)]
        assert ids_closed == [r["id"] for r in opened.select(FACTS)]
        assert "f4" not in ids_closed
    assert [r["id"] for r in QuestionAnswering(data, frequency="rare").select(FACTS)] == ["f3"]
    assert QuestionAnswering(data, mode="open").prompt(FACTS[0]) == "w1 w2\nw10"


def test_qa_exact_match_on_a_known_model(tmp_path: Path, tiny_tokenizer) -> None:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    closed = QuestionAnswering(data, mode="closed").evaluate(NextIdModel(), tiny_tokenizer, ctx(tmp_path))
    assert closed.samples["exact_match"] == [1.0, 0.0, 1.0]  # f2's answer is not the next word
    assert closed.metrics["exact_match"] == pytest.approx(2 / 3) and closed.n == 3
    # Open book: the prompt ends with the same question, so this model answers identically.
    opened = QuestionAnswering(data, mode="open").evaluate(NextIdModel(), tiny_tokenizer, ctx(tmp_path))
    assert opened.samples["exact_match"] == [1.0, 0.0, 1.0]


def test_generation_stops_at_eos(tmp_path: Path, tiny_tokenizer) -> None:
    # After w11 (id 15) the model emits EOS (3), then "w0"... which must be cut away.
    data = write_jsonl(tmp_path / "l.jsonl", [{"prompt": "w10", "answer": "w11"}])
    model = NextIdModel(forced={15: 3, 3: 4})
    assert Logic(data).evaluate(model, tiny_tokenizer, ctx(tmp_path)).metrics["exact_match"] == 1.0
    model_no_eos = NextIdModel(forced={15: 4})  # "w11 w0": still a match at a word boundary
    assert Logic(data).evaluate(model_no_eos, tiny_tokenizer, ctx(tmp_path)).metrics["exact_match"] == 1.0


def test_arithmetic_reports_trained_and_heldout(tmp_path: Path, tiny_tokenizer) -> None:
    rows = [
        {"a": 1, "op": "+", "b": 1, "prompt": "w1", "answer": "w2", "in_train": True},   # right
        {"a": 1, "op": "+", "b": 2, "prompt": "w5", "answer": "w9", "in_train": True},   # wrong
        {"a": 2, "op": "+", "b": 2, "prompt": "w7", "answer": "w8", "in_train": False},  # right
    ]
    r = Arithmetic(write_jsonl(tmp_path / "a.jsonl", rows)).evaluate(NextIdModel(), tiny_tokenizer, ctx(tmp_path))
    assert r.metrics == {"exact_match": pytest.approx(2 / 3), "exact_match_trained": 0.5, "exact_match_heldout": 1.0}
    assert r.samples["exact_match_trained"] == [1.0, 0.0] and r.samples["exact_match_heldout"] == [1.0]
    assert r.primary == "exact_match" and r.n == 3


def test_bad_settings_and_data_are_one_line_errors(tmp_path: Path, tiny_tokenizer) -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        QuestionAnswering("x", mode="book")
    with pytest.raises(ConfigError, match="frequency"):
        QuestionAnswering("x", frequency="often")
    data = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "w1"}])
    with pytest.raises(DataError, match="missing \\['answer'\\]"):
        Logic(data).evaluate(NextIdModel(), tiny_tokenizer, ctx(tmp_path))
