"""The Python API: harness.evaluate runs what the command line runs and returns the run record;
harness.edit edits an in-memory model; both write nothing unless asked, and bad input raises the
command line's one-line errors."""

import json
import random
from pathlib import Path

import pytest

import harness
from conftest import WORDS, harness_args, make_tiny_olmo2, make_tiny_tokenizer
from core.errors import ConfigError, DataError
from harness.api import composed
from harness.export import weights_digest


def api_args(folder: Path, cache: Path, *extra: str) -> list[str]:
    """The test command line less runs_dir: where run files go is what these tests are about."""
    return [a for a in harness_args(folder, cache.parent, f"cache_dir={cache}", *extra) if not a.startswith("runs_dir=")]


def texts(n: int = 40, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(n)]


def test_evaluate_returns_the_run_the_command_line_writes(tiny_model_dir: Path, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from core.buildcache import CONF_DIR
    from harness.pipeline import run_experiment

    runs = tmp_path / "runs"
    record = harness.evaluate(*api_args(tiny_model_dir, tmp_path / "cache"), runs_dir=runs)
    [file] = [p for p in runs.rglob("*.json") if "baselines" not in p.parts]
    assert json.loads(file.read_text()) == json.loads(json.dumps(record, default=str))
    assert record["status"] == "complete" and record["identity"]["method"] == "none"
    # The same config composed as the command line composes it files under the same identity.
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=api_args(tiny_model_dir, tmp_path / "cache") + [f"runs_dir={runs}"])
    assert run_experiment(cfg)["identity"] == record["identity"]


def test_evaluate_writes_no_run_file_unless_asked(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    record = harness.evaluate(*api_args(tiny_model_dir, tmp_path / "cache"))
    assert record["status"] == "complete" and set(record["edited"]["tasks"]) == {"verbatim", "quotes"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # the cache only; no runs/ folder


def test_evaluate_sets_the_chosen_config_name_as_the_command_line_does() -> None:
    from harness.pipeline import method_label
    from hydra.core.hydra_config import HydraConfig

    with composed(["method=kfac_vit"]) as cfg:
        assert "hydra" not in cfg and method_label({"method": {"name": cfg.method.name}}) == "kfac_vit"
    assert not HydraConfig.initialized()  # nothing left behind for later calls


def test_evaluate_bad_input_raises_the_one_line_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown method 'kfc'.*did you mean 'kfac'"):
        harness.evaluate("method=kfc")
    with pytest.raises(ConfigError, match="method=none,kfac is a sweep"):
        harness.evaluate("method=none,kfac")
    with pytest.raises(ConfigError, match="method kfac has no setting 'rhoo'"):
        harness.evaluate("method=kfac", "method.rhoo=0.5")
    with pytest.raises(ConfigError, match="not the flag '-m'"):
        harness.evaluate("-m", "method=none")
    with pytest.raises(ConfigError, match="seed must be an integer"):
        harness.evaluate(*api_args(tiny_model_dir, tmp_path / "cache", "seed=abc"))


def test_edit_changes_the_model_in_place_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the temporary factor cache goes here, and away
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    model, tokenizer = make_tiny_olmo2(), make_tiny_tokenizer()
    before = weights_digest(model)
    edited, report = harness.edit(model, tokenizer=tokenizer, method="kfac", data={"stats": texts()},
                                  tokens=1500, seq_len=32, rho=0.9)
    assert edited is model and weights_digest(model) != before
    assert report["tokens"] > 0 and len(report["changed"]) == 6  # gate, up, down of 2 layers
    assert all(0 < c["rho"] < 1 for c in report["changed"].values())
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["tmp"]


def test_edit_matches_the_pipelines_edit(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The same method, settings, seed and statistics text: harness.edit and a run make the same
    weights (one code path, harness.pipeline.apply_method)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_dir / "model"
    record = harness.evaluate(*api_args(tiny_model_dir, tmp_path / "cache", "method=kfac", "method.tokens=1500",
                                        "method.seq_len=32", f"model.data.stats={tiny_model_dir / 'text.txt'}",
                                        f"save_edited={tmp_path / 'exported'}"))
    model = AutoModelForCausalLM.from_pretrained(folder)
    model, report = harness.edit(model, tokenizer=AutoTokenizer.from_pretrained(folder), method="kfac",
                                 data=tiny_model_dir / "text.txt", tokens=1500, seq_len=32)
    assert report["tokens"] == record["method"]["report"]["tokens"]
    assert weights_digest(model) == record["export"]["edited_weights_sha256"]


def test_edit_bad_input_raises_the_one_line_errors() -> None:
    model, tokenizer = make_tiny_olmo2(), make_tiny_tokenizer()
    before = weights_digest(model)
    with pytest.raises(ConfigError, match="unknown setting.*rhoo"):
        harness.edit(model, tokenizer=tokenizer, method="kfac", data={"stats": texts()}, rhoo=0.5)
    with pytest.raises(ConfigError, match="unknown method 'kfc'"):
        harness.edit(model, tokenizer=tokenizer, method="kfc")
    with pytest.raises(ConfigError, match="needs the model's tokenizer"):
        harness.edit(model, method="kfac")
    with pytest.raises(ConfigError, match="unknown key.*statistics"):
        harness.edit(model, tokenizer=tokenizer, data={"statistics": "x.txt"})
    with pytest.raises(ConfigError, match="needs stats data: pass data="):
        harness.edit(model, tokenizer=tokenizer, method="kfac", tokens=500, seq_len=32)
    with pytest.raises(DataError, match="not found"):
        harness.edit(model, tokenizer=tokenizer, method="kfac", data="no/such/text.txt", tokens=500, seq_len=32)
    assert weights_digest(model) == before  # nothing was edited by a failed call


def test_the_package_lists_the_api() -> None:
    assert {"evaluate", "edit"} <= set(dir(harness))
    with pytest.raises(AttributeError):
        harness.no_such_function  # noqa: B018
