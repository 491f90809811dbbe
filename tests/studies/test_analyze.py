"""`python -m studies.analyze spectrum|predict` end to end on the tiny saved model (tests/conftest.py):
K-FAC factors are collected by the same method code the edit uses, the outputs land beside the
run files, and bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import harness_args
from studies.analyze import main

KFAC_SMALL = ["method=kfac", "method.tokens=256", "method.seq_len=16", "method.batch_size=4", "method.rho=0.9"]


def args(folder: Path, runs: Path, *extra: str) -> list[str]:
    return [*harness_args(folder, runs), f"model.data.stats={folder / 'text.txt'}", *KFAC_SMALL,
            f"+suite.tasks.perplexity={{task: perplexity, family: coherence, data: {folder / 'text.txt'}}}",
            "analyze.seq_len=16", "analyze.general_tokens=160", "analyze.resamples=200", *extra]


def test_spectrum_writes_json_markdown_and_plots(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["spectrum", *args(tiny_model_dir, runs, "analyze.layers=[1]")]) == 0
    (folder,) = (runs / "analysis").glob("*/verbatim_files")  # analysis/<model name>/<suite>
    (result_file,) = folder.glob("spectrum-*.json")
    result = json.loads(result_file.read_text())
    # analyze.layers=[1] keeps the method's setting (every layer) and reads its factor file.
    assert sorted(result["matrices"]) == [f"model.layers.1.mlp.{m}_proj" for m in ("down", "gate", "up")]
    assert (runs / "cache" / "methods" / "kfac").is_dir()
    assert result["groups"] == {"memorized": ["verbatim"], "general": ["perplexity"]}
    entry = result["matrices"]["model.layers.1.mlp.up_proj"]
    deciles = [b for b in result["bands"] if b.endswith("%") and "-" in b]
    assert len(deciles) == 10
    assert sum(entry["band_mass"][d] for d in deciles) == pytest.approx(1.0)
    ratio = entry["ratios"]["memorized/general"]["bottom half"]
    assert ratio["lo"] <= ratio["ratio"] <= ratio["hi"] and ratio["ratio"] > 0
    assert result["examples"] == {"verbatim": 6, "quotes": 6, "perplexity": 10}
    assert Path(result["outputs"]["md"]).read_text().startswith("# Activation by curvature band")
    pngs = list(folder.glob("spectrum-*-ratio-memorized-vs-general.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"


def test_predict_reads_the_runs_of_the_setting(tiny_model_dir: Path, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from harness.app import CONF_DIR
    from harness.pipeline import run_experiment

    runs = tmp_path / "runs"
    overrides = args(tiny_model_dir, runs)[:-3]  # the run's overrides, less the analyze block
    for rho in ("0.9", "0.5"):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=[*overrides, f"method.rho={rho}"])
        run_experiment(cfg)
    assert main(["predict", *args(tiny_model_dir, runs)]) == 0
    (result_file,) = (runs / "analysis").glob("*/verbatim_files/predict-*.json")
    result = json.loads(result_file.read_text())
    assert sorted(r["rho"] for r in result["runs"]) == [0.5, 0.9]
    by_rho = {r["rho"]: r for r in result["runs"]}
    # Random tiny model: recall and quotes baselines are 0 (no drop defined); coherence is measured.
    for run in by_rho.values():
        assert set(run["families"]) == {"coherence"}
        assert 0 < run["families"]["coherence"]["removed_share"] < 1
    # Keeping less mass removes more components, which carry more of the output.
    assert by_rho[0.5]["components_removed_share"] > by_rho[0.9]["components_removed_share"]
    assert by_rho[0.5]["families"]["coherence"]["removed_share"] > by_rho[0.9]["families"]["coherence"]["removed_share"]


def test_bad_input_is_one_line(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["spectrum", *args(tiny_model_dir, runs, "analyze.layers=[7]")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "analyze.layers" in err
    assert main(["predict", *args(tiny_model_dir, runs)]) == 2
    assert "no finished kfac run" in capsys.readouterr().err
    assert main(["spectrum", *harness_args(tiny_model_dir, runs), "method=none"]) == 2
    assert "not a K-FAC method" in capsys.readouterr().err
    assert main(["spectrum", *args(tiny_model_dir, runs, "analyze.groups={memorized: [nope]}")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["bogus"]) == 2


@pytest.fixture(scope="module")
def fake_vit(tmp_path_factory) -> Path:
    """A tiny ViT checkpoint and a fake ImageFolder (tests/conftest.py)."""
    from tests.conftest import make_fake_vit_imagenet

    return make_fake_vit_imagenet(tmp_path_factory.mktemp("fake_vit"), train_per_class=8)


def test_spectrum_on_a_vit_compares_mislabeled_and_clean_images(fake_vit: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = ["model=vit_base_imagenet", f"model.path={fake_vit / 'ckpt'}",
                 f"model.dataset.data_dir={fake_vit / 'imagenet'}", "model.noise.fraction=0.25",
                 "suite=mislabeled", "method=kfac_vit", "method.images=24", "method.batch_size=8",
                 f"runs_dir={runs}", f"cache_dir={runs / 'cache'}", "device=cpu", "analyze.resamples=100"]
    assert main(["spectrum", *overrides]) == 0
    (result_file,) = (runs / "analysis" / "vit_base_imagenet" / "mislabeled").glob("spectrum-*.json")
    result = json.loads(result_file.read_text())
    assert result["groups"] == {"memorized": ["memorized"], "clean_train": ["clean_train"],
                                "heldout_images": ["accuracy"]}
    # 24 training images, a quarter noised; 6 held-out images; one CLS position each.
    assert result["examples"] == {"memorized": 6, "gt_recovery": 6, "clean_train": 18, "accuracy": 6}
    assert sorted(m["role"] for m in result["matrices"].values()) == ["down", "down", "up", "up"]
    for m in result["matrices"].values():
        r = m["ratios"]["memorized/clean_train"]["bottom half"]
        assert r["lo"] <= r["ratio"] <= r["hi"]


def test_groups_can_be_chosen_on_the_command_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert main(["spectrum", *args(tiny_model_dir, runs, "analyze.layers=[0]",
                                   "analyze.groups={memorized: [verbatim], quotes: [quotes]}")]) == 0
    (result_file,) = (runs / "analysis").glob("*/verbatim_files/spectrum-*.json")
    result = json.loads(result_file.read_text())
    assert result["groups"] == {"memorized": ["verbatim"], "quotes": ["quotes"]}
    assert list(result["summary"]) == ["memorized/quotes"]
