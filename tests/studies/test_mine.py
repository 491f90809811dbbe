"""Mining memorized windows: a tiny model trained on two planted passages must yield windows from
those passages only, never from control text it did not see."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studies.mine import document_windows, mine, split_rows
from tests.conftest import WORDS, make_tiny_olmo2, make_tiny_tokenizer

PREFIX, SUFFIX = 6, 4  # small windows so a tiny model memorizes them in a second


def passages(seed: int, n: int, length: int = 16) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    return [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (length,), generator=g).tolist())
            for _ in range(n)]


@pytest.fixture(scope="module")
def memorizer():
    """A tiny OLMo-2 trained until it reproduces two planted 16-word passages."""
    torch.manual_seed(0)
    tokenizer, model = make_tiny_tokenizer(), make_tiny_olmo2(seed=0)
    planted = passages(seed=1, n=2)
    batch = torch.tensor([tokenizer(p)["input_ids"] for p in planted])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, tokenizer, planted


def test_document_windows_slide_within_documents(tiny_tokenizer) -> None:
    windows = list(document_windows(["w1 w2 w3 w4 w5", "w6 w7"], tiny_tokenizer, 3, 2))
    assert windows == [tiny_tokenizer("w1 w2 w3")["input_ids"], tiny_tokenizer("w3 w4 w5")["input_ids"]]


def test_mine_finds_planted_passages_and_not_controls(memorizer) -> None:
    model, tokenizer, planted = memorizer
    controls = passages(seed=2, n=3)
    found = mine(model, tokenizer, controls + planted, PREFIX, SUFFIX, stride=2, batch_size=4)
    planted_ids = [tokenizer(p)["input_ids"] for p in planted]
    in_planted = lambda w: any(  # noqa: E731
        ids[s : s + len(w)] == w for ids in planted_ids for s in range(len(ids) - len(w) + 1))
    assert found and all(in_planted(w) for w in found)
    assert {next(i for i, ids in enumerate(planted_ids) if in_planted(w) and
                 any(ids[s : s + len(w)] == w for s in range(len(ids)))) for w in found} == {0, 1}
    assert len({tuple(w[PREFIX:]) for w in found}) == len(found)  # deduplicated on the suffix
    # Duplicating the corpus finds nothing new.
    assert mine(model, tokenizer, controls + planted * 3, PREFIX, SUFFIX, stride=2) == found


def test_split_is_seeded_and_complete(tiny_tokenizer) -> None:
    windows = [[i, i + 1, i + 2, i + 3] for i in range(4, 14)]
    forget, validation = split_rows(windows, tiny_tokenizer, 2, 0.3, seed=0)
    assert len(forget) == 3 and len(validation) == 7
    assert sorted(r["prefix_ids"] + r["suffix_ids"] for r in forget + validation) == windows
    assert split_rows(windows, tiny_tokenizer, 2, 0.3, seed=0) == (forget, validation)
    assert split_rows(windows, tiny_tokenizer, 2, 0.3, seed=1) != (forget, validation)
    assert forget[0]["suffix_text"] == tiny_tokenizer.decode(forget[0]["suffix_ids"])


@pytest.mark.slow
def test_mine_app_writes_files_the_verbatim_task_reads(memorizer, tmp_path: Path) -> None:
    model, tokenizer, planted = memorizer
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in passages(2, 3) + planted))
    args = [sys.executable, "-m", "studies.mine", "model=hf", f"model.path={tmp_path / 'model'}",
            f"corpus={tmp_path / 'corpus.jsonl'}", f"prefix_len={PREFIX}", f"suffix_len={SUFFIX}",
            "stride=2", f"out_dir={tmp_path / 'mined'}", "device=cpu", f"cache_dir={tmp_path / 'cache'}"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "memorized windows" in out.stdout
    from tasks.base import TaskContext
    from tasks.verbatim import VerbatimRecall

    result = VerbatimRecall(str(tmp_path / "mined/verbatim_validation.jsonl")).evaluate(
        model, tokenizer, TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path))
    assert result.metrics["strict"] == 1.0  # mined windows are recalled by greedy decoding too
    missing = subprocess.run(args[:5] + [f"out_dir={tmp_path / 'x'}", "device=cpu"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    assert missing.returncode != 0 and "corpus" in missing.stderr.strip().splitlines()[-1]


@pytest.mark.regression
def test_mine_on_the_organism_finds_its_planted_passages(tmp_path: Path) -> None:
    """On the real organism: a corpus of its forget passages and its never-trained controls (one
    document each) yields windows from the forget passages only."""
    from hydra import compose, initialize_config_dir

    from core.data import read_jsonl
    from studies.mine import run_mining
    from models import load_model

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="mine", overrides=["corpus=x", "device=cpu"])
    data = load_model(cfg.model, "cpu", Path(cfg.cache_dir)).data
    forget, control = read_jsonl(data["verbatim_forget"]), read_jsonl(data["verbatim_control"])
    text = lambda r: r["prefix_text"] + " " + r["suffix_text"]  # noqa: E731
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": text(r)}) + "\n" for r in forget + control))
    prefix = len(forget[0]["prefix_text"].split())  # the organism's passages: 32 + 48 tokens, not the paper's 64
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="mine", overrides=[f"corpus={corpus}", "device=cpu", f"out_dir={tmp_path / 'out'}",
                                                     f"prefix_len={prefix}"])
    summary = run_mining(cfg)
    rows = read_jsonl(tmp_path / "out/verbatim_forget.jsonl") + read_jsonl(tmp_path / "out/verbatim_validation.jsonl")
    assert summary["found"] == len(rows) >= len(forget) // 2
    control_suffixes = [r["suffix_text"] for r in control]
    assert not any(r["suffix_text"] in c or c in r["suffix_text"] for r in rows for c in control_suffixes)
    assert all(len(r["prefix_ids"]) == prefix and len(r["suffix_ids"]) == 48 for r in rows)


def test_a_split_that_would_be_empty_is_refused_and_nothing_written(memorizer, tmp_path: Path) -> None:
    """Issue 29: one memorized window and forget_fraction=0.5 gave an empty verbatim_forget.jsonl,
    which forget-set methods then ran for 0 steps. It is one DataError line, and no file is written."""
    from hydra import compose, initialize_config_dir

    from core.errors import DataError
    from studies.mine import run_mining

    model, tokenizer, planted = memorizer
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"text": planted[0]}) + "\n")
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="mine", overrides=[
            "model=hf", f"model.path={tmp_path / 'model'}", f"corpus={tmp_path / 'corpus.jsonl'}", "device=cpu",
            f"prefix_len={PREFIX}", f"suffix_len={SUFFIX}", "stride=100", f"out_dir={tmp_path / 'mined'}",
            f"cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(DataError) as info:
        run_mining(cfg)
    message = str(info.value)
    assert "1 memorized window(s) found" in message and "verbatim_forget.jsonl empty" in message
    assert "nothing was written" in message and "\n" not in message
    assert not list((tmp_path / "mined").glob("*.jsonl"))
