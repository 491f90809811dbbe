"""suite=verbatim_files with never-trained passages: the membership task runs in the baseline, the
edited model and a quantization attack; the run file carries its intervals and how to read them,
and the run table prints them."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from hydra import compose, initialize_config_dir
from rich.console import Console

from conftest import WORDS, harness_args
from harness.pipeline import print_run, run_experiment

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_membership_in_a_run_and_an_attack(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from methods.none import NoEdit

    monkeypatch.setattr(NoEdit, "apply", lambda self, model, ctx: {"changed": {"nothing.really": {}}})
    rng = random.Random(1)
    never_seen = tmp_path / "never_seen.jsonl"
    never_seen.write_text("\n".join(json.dumps({"prefix_text": " ".join(rng.choice(WORDS) for _ in range(16)),
                                                "suffix_text": " ".join(rng.choice(WORDS) for _ in range(8))})
                                    for _ in range(6)))
    extra = [f"suite.tasks.membership.nonmembers={never_seen}", "+suite.tasks.membership.resamples=50",
             "attack=standard", "~attack.attacks.relearn", "~attack.attacks.sample",
             "attack.attacks.quantize.schemes=[int8]"]
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=harness_args(tiny_model_dir, tmp_path / "runs", *extra))
    run = run_experiment(cfg)
    base, edited = run["baseline"]["tasks"]["membership"], run["edited"]["tasks"]["membership"]
    assert base["family"] == "membership" and base["n"] == 6 and base["info"]["nonmembers"] == 6
    assert base["metrics"]["auc_reference"] == 0.5 and "auc_reference" in edited["metrics"]
    for entry in (base, edited):
        for metric in ("auc_loss", "auc_zlib", "auc_min_k", "auc_min_k_pp", "privleak"):
            lo, hi = entry["intervals"][metric]
            assert lo <= entry["metrics"][metric] <= hi
    assert "0.5" in edited["info"]["privleak_reference"]
    (unit,) = run["edited"]["attacks"].values()
    attacked = unit["tasks"]["membership"]
    assert attacked["task"] == "membership" and "auc_min_k" in attacked["metrics"]
    assert "auc_reference" not in attacked["metrics"]  # no unedited losses inside attacks
    out = io.StringIO()
    print_run(Console(file=out, width=200), run)
    assert "auc_min_k" in out.getvalue() and "extraction_strength" in out.getvalue()
    assert f"{base['metrics']['auc_loss']:.4g} [{base['intervals']['auc_loss'][0]:.3g}" in out.getvalue()
