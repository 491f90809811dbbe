"""Issue 29: every method edits around an MLP matrix the model lacks, as README says ("edit the
matrices that exist, report the missing ones"): on GPT-2 (no gate matrix) `method=svd` with its
defaults edits up and down, reports `gate` as absent in one warning line, and finishes."""

import logging
from pathlib import Path

import pytest

from tests.conftest import WORDS, make_tiny_tokenizer
from tests.harness.test_own_model import own_model_args, run

NO_LM_EVAL = ["~suite.tasks.logic", "~suite.tasks.qa_open", "~suite.tasks.math_simple"]


@pytest.fixture(scope="module")
def gpt2_dir(tiny_model_dir: Path, tmp_path_factory) -> Path:
    """The tiny own-model folder with a tiny GPT-2 (random weights) in place of the OLMo-2."""
    import shutil

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    for name in ("verbatim.jsonl", "quotes.jsonl", "text.txt"):
        shutil.copy(tiny_model_dir / name, folder / name)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(WORDS) + 4, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                        bos_token_id=2, eos_token_id=3, pad_token_id=0)
    GPT2LMHeadModel(config).eval().save_pretrained(folder / "model")
    make_tiny_tokenizer().save_pretrained(folder / "model")
    return folder


def test_svd_defaults_on_gpt2_edit_up_and_down_and_name_gate_once(gpt2_dir: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="harness"):
        record = run(own_model_args(gpt2_dir, tmp_path / "runs", "method=svd", *NO_LM_EVAL))
    assert record["status"] == "complete"
    report = record["method"]["report"]
    assert report["matrices_absent"] == ["gate"]
    assert report["changed"] and all(name.endswith(("c_fc.weight", "c_proj.weight")) for name in report["changed"])
    lines = [r.getMessage() for r in caplog.records if "no MLP matrix" in r.getMessage()]
    assert lines == ["GPT2LMHeadModel has no MLP matrix 'gate': editing up, down only"]


@pytest.mark.parametrize("method, overrides", [
    ("kfac", ["method.tokens=256"]), ("random_ablation", ["method.tokens=256"]),
    ("gradient_ascent", ["method.epochs=1"]), ("npo", ["method.epochs=1"]),
    ("balanced_subnet", ["method.epochs=1"]), ("neuron_zero_out", [])])
def test_every_method_checks_a_gpt2_without_stopping_on_gate(method: str, overrides: list[str], gpt2_dir: Path,
                                                            caplog) -> None:
    """Each method's check() (run before the baseline) accepts GPT-2 and says nothing; the warning
    line is its edit's (apply), once."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from transformers import GPT2LMHeadModel

    from methods.base import build_method
    from models.architectures import available_matrices
    from tests.harness.test_own_model import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=[f"method={method}", *overrides])
    model = GPT2LMHeadModel.from_pretrained(gpt2_dir / "model")
    assert available_matrices(model) == ("up", "down")
    with caplog.at_level(logging.WARNING, logger="harness"):
        build_method(OmegaConf.to_container(cfg.method, resolve=True)).check(model)
    assert not [r for r in caplog.records if "no MLP matrix" in r.getMessage()]
