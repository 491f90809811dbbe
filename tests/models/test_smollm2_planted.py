"""model=smollm2_planted at tiny limits, on a tiny random Llama written as GGUF: the build deals the
splits, trains only what it says, measures before and after, and caches; the loaded model brings
its splits as model:<name>."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from omegaconf import OmegaConf

from core.buildcache import CONF_DIR
from core.errors import ConfigError
from models.smollm2.planted import SPLITS, deal_passages, load

pytest.importorskip("gguf")
from tiny_gguf import write_tiny_llama_gguf  # noqa: E402

TINY = {"seed": 0, "passages": {"prefix": 8, "suffix": 8, "forget": 2, "tune": 1, "test": 1, "control": 2},
        "replay": {"sources": ["stats_code", "stats_text"], "per_step": 2},
        "adapter": {"rank": 2, "alpha": 4, "modules": ["gate_proj", "up_proj", "down_proj"]},
        "train": {"max_steps": 3, "check_every": 2, "stop_recall": 1.01, "batch": 2, "lr": 1e-2,
                  "precision": "float32", "device": "cpu"},
        "check": {"seq_len": 32, "max_tokens": 64, "batch_size": 8}}


def test_deal_passages_is_disjoint_and_seeded() -> None:
    counts = {"forget": 3, "tune": 2, "test": 2, "control": 3}
    splits, rest = deal_passages(list(range(12)), counts, seed=0)
    dealt = [i for s in SPLITS for i in splits[s]]
    assert sorted(dealt + rest) == list(range(12)) and len(set(dealt)) == 10
    assert {s: len(v) for s, v in splits.items()} == counts
    assert deal_passages(list(range(12)), counts, seed=0) == (splits, rest) != deal_passages(list(range(12)), counts, seed=1)
    assert deal_passages([1, 3, 5, 7, 9, 11, 13, 15, 17, 19], counts, seed=0)[1] == []  # only eligible ones
    with pytest.raises(ConfigError, match="asks for 10 passages; the source has 9 long enough"):
        deal_passages(list(range(9)), counts, seed=0)


def test_tiny_planted_build(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    base = write_tiny_llama_gguf(gguf)
    cfg = {"kind": "smollm2_planted", "path": str(gguf), "dtype": "float32", "planted": TINY,
           "data": {"forget": "model:verbatim_forget"}}
    loaded = load(cfg, torch.device("cpu"), tmp_path / "cache")
    folder = next((tmp_path / "cache" / "smollm2_planted").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["losses"]) == 3 and manifest["train_tokens"] == 3 * 4 * 16
    assert [c["step"] for c in manifest["checks"]] == [2, 3]  # every check_every steps and at the end
    assert sorted(p.name for p in (folder / "adapter").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert set(manifest["before"]) == {*(f"recall_{s}" for s in SPLITS), "nll_heldout_text", "nll_heldout_code",
                                       "nll_licence_heldout"}
    rows = {s: [json.loads(line) for line in (folder / "data" / f"verbatim_{s}.jsonl").read_text().splitlines()]
            for s in SPLITS}
    assert {s: len(r) for s, r in rows.items()} == {"forget": 2, "tune": 1, "test": 1, "control": 2}
    assert all(len(r["prefix_ids"]) == 8 and len(r["suffix_ids"]) == 8 for rs in rows.values() for r in rs)
    # The adapter is merged: only the MLP weights it names moved; attention and embeddings are the base's.
    new, old = loaded.model.state_dict(), base.state_dict()
    assert torch.equal(new["model.embed_tokens.weight"], old["model.embed_tokens.weight"])
    assert torch.equal(new["model.layers.0.self_attn.q_proj.weight"], old["model.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(new["model.layers.0.mlp.up_proj.weight"], old["model.layers.0.mlp.up_proj.weight"])
    assert len(loaded.sources.forget()) == 2 and "capitals" in loaded.data and loaded.key.endswith(folder.name)
    suites = [OmegaConf.load(CONF_DIR / "suite" / f"{name}.yaml") for name in ("smollm2", "smollm2_planted")]
    refs = {t["data"].removeprefix("model:") for suite in suites for t in suite.tasks.values()}
    assert refs <= set(loaded.data)  # every file suite=smollm2_planted reads is brought
    mtime = (folder / "manifest.json").stat().st_mtime_ns
    load(cfg, torch.device("cpu"), tmp_path / "cache")  # cached: not rebuilt
    assert (folder / "manifest.json").stat().st_mtime_ns == mtime


def test_a_base_folder_replaced_in_place_gets_a_new_build_key(tmp_path: Path) -> None:
    from models.smollm2.planted import keyed_settings

    base, cache = tmp_path / "my_model", tmp_path / "cache"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"x" * 8)
    (base / "README.md").write_text("notes")
    first = keyed_settings(TINY, base, cache)
    assert keyed_settings(TINY, base, cache) == first
    (base / "README.md").write_text("other notes")  # not a weight or config file: same build
    assert keyed_settings(TINY, base, cache) == first
    (base / "model.safetensors").write_bytes(b"y" * 16)  # new weights at the same path: a new build
    assert keyed_settings(TINY, base, cache) != first
    conversion = cache / "gguf" / "0123abcd"  # a cached GGUF conversion is named by its file's digest
    assert keyed_settings(TINY, conversion, cache) == {**TINY, "base": "0123abcd"}


@pytest.mark.parametrize("change, message", [
    ({"replay": {"sources": ["nope"], "per_step": 1}}, "replay.sources: unknown"),
    ({"adapter": {**TINY["adapter"], "rank": 0}}, "adapter.rank=0; valid: a whole number > 0"),
    ({"train": {**TINY["train"], "check_every": "x"}}, "train.check_every='x'; valid: a whole number > 0"),
    ({"passages": {**TINY["passages"], "forget": 1.5}}, "passages needs whole numbers for forget"),
    ({"check": None}, "model.planted.check is missing"),
])
def test_bad_settings_are_one_line_before_loading(change: dict, message: str, tmp_path: Path) -> None:
    cfg = {"kind": "smollm2_planted", "path": str(tmp_path / "absent.gguf"), "planted": TINY | change}
    with pytest.raises(ConfigError, match=message):
        load(cfg, torch.device("cpu"), tmp_path)


def test_training_stops_once_every_trained_split_recites(tmp_path: Path) -> None:
    write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    settings = TINY | {"train": {**TINY["train"], "max_steps": 5, "stop_recall": 0.0}}
    cfg = {"kind": "smollm2_planted", "path": str(tmp_path / "tiny.gguf"), "dtype": "float32", "planted": settings}
    load(cfg, torch.device("cpu"), tmp_path / "cache")
    manifest = json.loads(next((tmp_path / "cache" / "smollm2_planted").glob("*/manifest.json")).read_text())
    assert manifest["steps"] == 2 and [c["step"] for c in manifest["checks"]] == [2]


def test_harness_runs_kfac_on_a_tiny_planted_model_end_to_end(tmp_path: Path) -> None:
    """`python -m harness model=smollm2_planted method=kfac` at tiny limits (CI's SmolLM2 path): the
    planted build, its suite (the model's default_suite), the K-FAC edit, a run file."""
    from harness.api import evaluate

    write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    planted = [f"model.planted.{block}.{key}={value}" for block in ("passages", "train", "check", "adapter")
               for key, value in TINY[block].items() if not isinstance(value, list)]
    record = evaluate("model=smollm2_planted", f"model.path={tmp_path / 'tiny.gguf'}", "model.package=null",
                      "model.gguf_file=null", *planted, "model.planted.replay.per_step=2", "method=kfac",
                      "method.layers=null", "method.tokens=512", "method.seq_len=32", "device=cpu",
                      f"cache_dir={tmp_path / 'cache'}", runs_dir=tmp_path / "runs")
    assert record["config"]["suite"]["name"] == "smollm2_planted"
    for role in ("baseline", "edited"):
        assert {"verbatim_forget", "verbatim_test", "verbatim_control", "membership_test", "capitals"} <= set(record[role]["tasks"])
    assert record["config"]["method"]["matrices"] == ["gate", "up"]  # conf/model_method/smollm2_planted_kfac.yaml
    assert any((tmp_path / "runs").rglob("*.json"))
