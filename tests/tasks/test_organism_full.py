"""Every organism_full task on the real organism's baseline (regression: builds the organism once)."""

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.regression
def test_organism_full_suite_runs_on_the_baseline(tmp_path: Path) -> None:
    from models import load_model
    from harness.config import resolve_config
    from harness.pipeline import build_tasks, parse_suite
    from tasks.base import TaskContext

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        config = resolve_config(compose(config_name="config", overrides=["suite=organism_full", "device=cpu"]))
    loaded = load_model(config["model"], "cpu", Path(config["cache_dir"]))
    tasks = build_tasks(parse_suite(config["suite"]), loaded)
    ctx = TaskContext(torch.device("cpu"), 0, 32, "baseline", tmp_path)
    results = {name: task.evaluate(loaded.model, loaded.tokenizer, ctx) for name, (task, _) in tasks.items()}
    for name, r in results.items():
        assert r.n > 0 and r.primary in r.metrics, name
        assert all(math.isfinite(v) for v in r.metrics.values()), name
    assert results["ndcg10"].metrics["ndcg10"] == pytest.approx(1.0)  # the baseline against itself
    assert results["perplexity"].metrics["ppl"] < len(loaded.tokenizer)  # better than uniform
    assert results["qa_open"].n == results["qa_closed"].n  # the same questions
    assert results["verbatim_control"].metrics["strict"] == 0.0
    # Memorized passages survive the perturbation better than never-trained text would (~0).
    assert results["perturbed_test"].metrics["unperturbed"] > 0.5
