"""Wiring of the real ViT/ImageNet path without the real data: a tiny fake ImageFolder of
generated PNGs and a tiny ViT saved with save_pretrained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, DataError, ModelLoadError

CLASSES = ("ant", "bee", "cat")


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    """<root>/ckpt (tiny ViT + processor) and <root>/imagenet/{train,val}/<class>/*.png."""
    from tests.conftest import make_fake_vit_imagenet

    return make_fake_vit_imagenet(tmp_path_factory.mktemp("fake"), train_per_class=4, classes=CLASSES)


def cfg(fake: Path, **over) -> dict:
    base = {"kind": "vit_imagenet", "name": "vit_base_imagenet", "path": str(fake / "ckpt"), "dtype": "float32",
            "dataset": {"data_dir": str(fake / "imagenet"), "name": None, "train_split": "train",
                        "eval_split": "validation", "image_column": "image", "label_column": "label"},
            "noise": {"file": None, "fraction": 0.25, "seed": 0}}
    return {**base, **over}


def test_loads_and_the_task_reads_every_subset(fake: Path, tmp_path: Path) -> None:
    from models import load_model
    from core.label_noise import load_noise_file
    from tasks.base import TaskContext
    from tasks.mislabeled import MislabeledImages

    loaded = load_model(cfg(fake), "cpu", tmp_path)
    assert loaded.kind == "image_classifier" and set(loaded.data) == {"images", "noise"}
    noise = load_noise_file(loaded.data["noise"])
    assert noise["num_examples"] == 12 and len(noise["indices"]) == 3 and noise["seed"] == 0
    ctx = TaskContext(torch.device("cpu"), 0, 4, "baseline", tmp_path)
    results = {s: MislabeledImages(str(loaded.data["images"]), subset=s).evaluate(loaded.model, None, ctx)
               for s in ("noised", "clean", "heldout")}
    assert [results[s].n for s in ("noised", "clean", "heldout")] == [3, 9, 6]
    assert set(results["noised"].metrics) == {"memorized", "gt_recovery"}
    # A noised image is never predicted as both its noise and its true label.
    assert results["noised"].metrics["memorized"] + results["noised"].metrics["gt_recovery"] <= 1
    stream = list(loaded.sources.statistics().images(5))
    assert len(stream) == 5 and stream[0][0].shape == (3, 16, 16)
    # Over all 12 training images, the labels are the trained ones: true labels, noise applied.
    trained = [c for c in range(3) for _ in range(4)]
    for i, y in zip(noise["indices"], noise["noisy_labels"]):
        trained[i] = y
    assert sorted(label for _, label in loaded.sources.statistics().images(100)) == sorted(trained)
    # The same noise file is reused on the next load: every method sees the same noised labels.
    again = load_model(cfg(fake), "cpu", tmp_path)
    assert again.data["noise"] == loaded.data["noise"] and load_noise_file(again.data["noise"]) == noise


def test_a_given_noise_file_is_checked_against_the_data(fake: Path, tmp_path: Path) -> None:
    from models import load_model
    from core.label_noise import save_noise_file

    good = tmp_path / "noise.json"
    save_noise_file(good, [0] * 4 + [1] * 4 + [2] * 4, 0.5, 3, seed=1)
    loaded = load_model(cfg(fake, noise={"file": str(good)}), "cpu", tmp_path)
    assert loaded.data["noise"] == good.resolve()
    wrong = tmp_path / "wrong.json"
    save_noise_file(wrong, [0] * 10, 0.5, 3, seed=1)
    with pytest.raises(DataError, match="drawn for 10 training examples"):
        load_model(cfg(fake, noise={"file": str(wrong)}), "cpu", tmp_path)


def test_one_line_errors(fake: Path, tmp_path: Path) -> None:
    from models import load_model

    with pytest.raises(ConfigError, match="needs model.path"):
        load_model(cfg(fake, path=None), "cpu", tmp_path)
    with pytest.raises(ModelLoadError, match="checkpoint folder not found"):
        load_model(cfg(fake, path=str(tmp_path / "nope")), "cpu", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="only safetensors"):
        load_model(cfg(fake, path=str(tmp_path / "empty")), "cpu", tmp_path)
    with pytest.raises(DataError, match="ImageFolder not found"):
        load_model(cfg(fake, dataset={"data_dir": str(tmp_path / "no_data")}), "cpu", tmp_path)
    with pytest.raises(ConfigError, match="exactly one of"):
        load_model(cfg(fake, dataset={}), "cpu", tmp_path)
    with pytest.raises(DataError, match="cannot load split 'test'"):
        load_model(cfg(fake, dataset={**cfg(fake)["dataset"], "train_split": "test"}), "cpu", tmp_path)
    with pytest.raises(DataError, match="noise file not found"):
        load_model(cfg(fake, noise={"file": str(tmp_path / "none.json")}), "cpu", tmp_path)


def test_class_count_mismatch(fake: Path, tmp_path: Path) -> None:
    import shutil

    from models import load_model

    shutil.copytree(fake / "imagenet", tmp_path / "two")
    for split in ("train", "val"):
        shutil.rmtree(tmp_path / "two" / split / "cat")
    with pytest.raises(DataError, match="the checkpoint has 3 classes, the data set 2"):
        load_model(cfg(fake, dataset={"data_dir": str(tmp_path / "two")}), "cpu", tmp_path)
