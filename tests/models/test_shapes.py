"""Models built from published shapes with random weights (models/shapes.py). The 1B and 7B shapes
are checked on the meta device only: 7B in fp32 is ~29 GB."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import ConfigError
from models.shapes import build_config, load, parameter_count, read_shape

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "shapes" / "tiny_olmo2.json")

# docs/paper.md, "Real architectures": hidden, MLP, layers, heads, KV heads.
PUBLISHED = {"olmo2_1b": (2048, 8192, 16, 16, 16), "olmo2_7b": (4096, 11008, 32, 32, 32)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shipped_shapes_are_the_published_architectures(name):
    config = build_config(read_shape(name))
    assert type(config).__name__ == "Olmo2Config"
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_attention_heads,
            config.num_key_value_heads) == PUBLISHED[name]
    assert (config.vocab_size, config.max_position_embeddings, config.pad_token_id, config.eos_token_id) == (
        100352, 4096, 100277, 100257)
    assert config.rope_parameters["rope_theta"] == 500000.0 and config.rms_norm_eps == 1e-6
    assert config.tie_word_embeddings is False


def test_parameter_counts_on_the_meta_device():
    # OLMo-2 1B and 7B as published: 1.48 B and 7.30 B parameters (untied embeddings).
    assert parameter_count(build_config(read_shape("olmo2_1b"))) == 1_484_916_736
    assert parameter_count(build_config(read_shape("olmo2_7b"))) == 7_298_617_344
    assert parameter_count(build_config(read_shape("olmo2_1b"), num_hidden_layers=1)) < 0.3e9 * 2


def test_the_loader_is_seeded_and_brings_a_random_token_stream():
    cpu = torch.device("cpu")
    a = load({"shape": TINY, "dtype": "float32", "seed": 3}, cpu, None)
    b = load({"shape": TINY, "dtype": "float32", "seed": 3}, cpu, None)
    c = load({"shape": TINY, "dtype": "float32", "seed": 4}, cpu, None)
    assert a.tokenizer is None and a.name == "tiny_olmo2_shapes"
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not torch.equal(a.model.lm_head.weight, c.model.lm_head.weight)
    assert a.key == b.key != c.key
    stats = a.sources.statistics()
    first = list(stats.batches(64, 2, 16))
    assert [tuple(x.shape) for x in first] == [(2, 16), (2, 16)]
    assert all(torch.equal(x, y) for x, y in zip(first, stats.batches(64, 2, 16)))
    assert int(torch.cat(first).max()) < 300
    fewer = load({"shape": TINY, "num_hidden_layers": 1}, cpu, None)
    assert len(fewer.model.model.layers) == 1


def test_bad_shapes_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="neither shipped nor a JSON file; shipped: olmo2_1b, olmo2_7b"):
        read_shape("olmo2_3b")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JSON"):
        read_shape(str(bad))
    with pytest.raises(ConfigError, match="needs model.shape"):
        load({}, torch.device("cpu"), None)
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        build_config(read_shape(TINY), num_hidden_layers=0)


def test_kfac_runs_end_to_end_on_a_shapes_model(tmp_path):
    """`python -m harness model=<shapes> method=kfac suite=shapes`, in process, on the tiny shape."""
    from hydra import compose, initialize_config_dir

    from harness.pipeline import run_experiment

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(config_dir=conf, version_base=None):
        cfg = compose("config", overrides=[
            "model=olmo2_1b_shapes", f"model.shape={TINY}", "model.name=tiny_shapes", "suite=shapes",
            "method=kfac", "method.tokens=512", "method.seq_len=32", "method.batch_size=4", "method.rho=0.9",
            "suite.tasks.random_token_nll.seq_len=32", "suite.tasks.random_token_nll.windows=2",
            f"runs_dir={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}", "device=cpu"])
        run = run_experiment(cfg)
        assert run["status"] == "complete" and run["method"]["report"]["tokens"] == 512
        assert len(run["method"]["report"]["changed"]) == 2 * 3  # 2 layers x gate, up, down
        base = run["baseline"]["tasks"]["random_token_nll"]["metrics"]["mean_nll"]
        edited = run["edited"]["tasks"]["random_token_nll"]["metrics"]["mean_nll"]
        assert base != edited and abs(base - torch.log(torch.tensor(300.0)).item()) < 1.0

        wrong_suite = compose("config", overrides=["model=olmo2_7b_shapes", f"runs_dir={tmp_path / 'r2'}"])
        with pytest.raises(ConfigError, match="runs only suite shapes .* add suite=shapes"):
            run_experiment(wrong_suite)  # before the 29 GB model is built
