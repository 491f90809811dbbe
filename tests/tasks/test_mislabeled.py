"""The mislabeled-images metrics on hand-made predictions, and the task over an image-set file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core.errors import ConfigError, DataError
from tasks.base import TaskContext
from tasks.mislabeled import MislabeledImages, mislabeled_metrics


def test_metrics_on_hand_made_predictions() -> None:
    # 5 noised images: 2 predicted as the noise label, 2 as the true label, 1 as neither.
    predicted, true, noisy = [3, 1, 0, 9, 5], [0, 1, 0, 2, 4], [3, 2, 7, 9, 6]
    assert mislabeled_metrics(predicted, true, noisy) == {"memorized": 0.4, "gt_recovery": 0.4}
    with pytest.raises(ValueError, match="differ in length"):
        mislabeled_metrics([1], [1, 2], [3, 4])


class ReadsItsAnswer(torch.nn.Module):
    """Predicts the class written in each image's top-left pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=torch.nn.functional.one_hot(pixel_values[:, 0, 0, 0].long(), 10).float())


def write_image_set(path: Path, train_pred: list[int], true: list[int], noisy: list[int],
                    held_pred: list[int], held_true: list[int]) -> None:
    from safetensors.torch import save_file

    def pixels(preds: list[int]) -> torch.Tensor:
        x = torch.zeros(len(preds), 1, 8, 8)
        x[:, 0, 0, 0] = torch.tensor(preds, dtype=torch.float32)
        return x

    save_file({"train_pixels": pixels(train_pred), "train_labels": torch.tensor(true),
               "train_noisy_labels": torch.tensor(noisy), "train_noised": torch.tensor(true) != torch.tensor(noisy),
               "heldout_pixels": pixels(held_pred), "heldout_labels": torch.tensor(held_true)}, str(path))


def test_task_over_an_image_set(tmp_path: Path) -> None:
    path = tmp_path / "images.safetensors"
    # Training images: the first 4 noised (noisy != true), the last 3 clean.
    write_image_set(path, train_pred=[5, 5, 1, 8, 2, 3, 0], true=[1, 2, 1, 4, 2, 3, 4],
                    noisy=[5, 6, 7, 8, 2, 3, 4], held_pred=[0, 1, 2, 0], held_true=[0, 1, 2, 3])
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    model = ReadsItsAnswer()
    noised = MislabeledImages(str(path)).evaluate(model, None, ctx)
    assert noised.metrics == {"memorized": 0.5, "gt_recovery": 0.25} and noised.n == 4
    assert noised.primary == "memorized" and noised.higher_is_better == {"memorized": False, "gt_recovery": True}
    assert noised.samples["memorized"] == [1.0, 0.0, 0.0, 1.0]
    recovered = MislabeledImages(str(path), primary="gt_recovery").evaluate(model, None, ctx)
    assert recovered.primary == "gt_recovery" and recovered.metrics == noised.metrics
    held = MislabeledImages(str(path), subset="heldout").evaluate(model, None, ctx)
    assert held.metrics == {"accuracy": 0.75} and held.n == 4 and held.kinds == {"accuracy": "proportion"}
    clean = MislabeledImages(str(path), subset="clean").evaluate(model, None, ctx)
    assert clean.metrics == {"accuracy": 2 / 3} and clean.n == 3
    sample = MislabeledImages(str(path), subset="heldout", limit=2).evaluate(model, None, ctx)
    assert sample.n == 2


def test_bad_settings_and_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="use noised, clean, heldout"):
        MislabeledImages("x", subset="train")
    with pytest.raises(ConfigError, match="not measured on the heldout subset"):
        MislabeledImages("x", subset="heldout", primary="memorized")
    with pytest.raises(ConfigError, match="limit"):
        MislabeledImages("x", limit=0)
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    with pytest.raises(DataError, match="image file not found"):
        MislabeledImages(str(tmp_path / "none.safetensors")).evaluate(ReadsItsAnswer(), None, ctx)
    (tmp_path / "images.txt").write_text("")
    with pytest.raises(DataError, match="is a .safetensors file"):
        MislabeledImages(str(tmp_path / "images.txt")).evaluate(ReadsItsAnswer(), None, ctx)
