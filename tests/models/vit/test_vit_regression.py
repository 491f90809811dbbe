"""End to end on the real ViT organism (trains it once, ~70-90 s on 2 cores, then cached under
$HARNESS_CACHE_DIR or .cache/harness): it memorizes the noise labels, K-FAC on the MLP blocks
removes part of them while keeping held-out accuracy, and a random removal of the same number of
components wrecks the model. Thresholds sit well below the measured numbers in docs/vision.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def evaluate(loaded, tmp_path: Path) -> dict[str, float]:
    from tasks.base import TaskContext
    from tasks.mislabeled import MislabeledImages

    ctx = TaskContext(torch.device("cpu"), 0, 256, "edited", tmp_path)
    noised = MislabeledImages(str(loaded.data["images"])).evaluate(loaded.model, None, ctx).metrics
    held = MislabeledImages(str(loaded.data["images"]), subset="heldout").evaluate(loaded.model, None, ctx).metrics
    return {**noised, "heldout": held["accuracy"]}


@pytest.mark.regression
def test_vit_organism_memorizes_and_kfac_removes_part_of_it(tmp_path: Path) -> None:
    from models import load_model
    from methods.base import MethodContext, build_method
    from models.vit.organism import default_settings

    from core.buildcache import default_cache_dir

    cache = default_cache_dir()  # the app's: $HARNESS_CACHE_DIR, else .cache/harness
    cfg = {"kind": "vit_organism", "name": "vit_organism", "organism": default_settings()}

    def edited(method: dict) -> dict[str, float]:
        loaded = load_model(cfg, "cpu", cache)
        ctx = MethodContext(tokenizer=None, device=loaded.device, seed=0, cache_dir=tmp_path / "methods",
                            model_key=loaded.key, stats=loaded.sources.statistics())
        build_method(method).apply(loaded.model, ctx)
        return evaluate(loaded, tmp_path)

    base = evaluate(load_model(cfg, "cpu", cache), tmp_path)
    assert base["memorized"] >= 0.9 and base["gt_recovery"] <= 0.1 and base["heldout"] >= 0.88
    kfac = edited({"name": "kfac", "rho": 0.99, "matrices": ["up", "down"]})
    assert kfac["memorized"] <= base["memorized"] - 0.1
    assert kfac["gt_recovery"] >= base["gt_recovery"] + 0.05
    # The cost in held-out accuracy depends on the build: 0.930 -> 0.925 on a 1-thread build,
    # 0.905 -> 0.805 on a 2-thread build of the same settings (docs/vision.md). What must hold on
    # every build: far less damage than removing the same number of components at random.
    assert kfac["heldout"] >= base["heldout"] - 0.15
    random = edited({"name": "random_ablation", "rho": 0.99, "matrices": ["up", "down"]})
    assert random["heldout"] <= base["heldout"] - 0.2
    assert kfac["heldout"] >= random["heldout"] + 0.2
