"""Mislabeled images: does an image classifier still predict the wrong labels it memorized?

The paper's ViT experiment: a share of the training labels was reassigned at random before
training, and the model fitted them. On those noised training images:
  memorized    = share predicted as their noise label (the memorized wrong label)
  gt_recovery  = share predicted as their true label
On images whose label is right (held-out images, or the clean training images):
  accuracy     = share predicted as their label
An edit that removes memorization drops `memorized`; one that also keeps the general rule raises
`gt_recovery` and keeps `accuracy`.

Settings: `data` (the `images` file a vision model brings, `model:images`), `subset`
(`noised` | `clean` | `heldout`), `primary` (the headline metric; defaults to `memorized` on the
noised subset, `accuracy` otherwise), `limit` (a seeded random sample of that many images).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError
from tasks.base import Task, TaskContext, TaskResult

SUBSETS = ("noised", "clean", "heldout")


def mislabeled_metrics(predicted: Sequence[int], true_labels: Sequence[int],
                       noisy_labels: Sequence[int]) -> dict[str, float]:
    """Share of images predicted as their noise label (`memorized`) and as their true label
    (`gt_recovery`)."""
    n = len(predicted)
    if not n == len(true_labels) == len(noisy_labels):
        raise ValueError("predicted, true_labels and noisy_labels differ in length")
    if n == 0:
        raise ValueError("no images")
    return {"memorized": sum(p == y for p, y in zip(predicted, noisy_labels)) / n,
            "gt_recovery": sum(p == y for p, y in zip(predicted, true_labels)) / n}


class MislabeledImages(Task):
    family = "memorized"

    def __init__(self, data: str, subset: str = "noised", family: str | None = None,
                 primary: str | None = None, limit: int | None = None):
        if subset not in SUBSETS:
            raise ConfigError(f"mislabeled: subset '{subset}' is not valid; use {', '.join(SUBSETS)}")
        valid = ("memorized", "gt_recovery") if subset == "noised" else ("accuracy",)
        primary = primary or valid[0]
        if primary not in valid:
            raise ConfigError(f"mislabeled: primary '{primary}' is not measured on the {subset} subset; use {', '.join(valid)}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"mislabeled: limit must be a positive integer or null, got {limit!r}")
        self.data, self.subset, self.primary, self.limit = Path(data), subset, primary, limit

    def evaluate(self, model: torch.nn.Module, tokenizer: Any, ctx: TaskContext) -> TaskResult:
        from core.images import image_batches

        predicted, true_labels, noisy_labels = [], [], []
        model.eval()
        with torch.no_grad():
            for pixels, labels, noisy in image_batches(self.data, self.subset, ctx.batch_size, self.limit, ctx.seed):
                dtype = next(model.parameters()).dtype
                logits = model(pixel_values=pixels.to(ctx.device, dtype)).logits
                predicted += logits.argmax(-1).tolist()
                true_labels += labels.tolist()
                noisy_labels += noisy.tolist() if noisy is not None else []
        if not predicted:
            raise DataError(f"{self.data}: no images in the {self.subset} subset")
        if self.subset == "noised":
            samples = {"memorized": [float(p == y) for p, y in zip(predicted, noisy_labels)],
                       "gt_recovery": [float(p == y) for p, y in zip(predicted, true_labels)]}
        else:
            samples = {"accuracy": [float(p == y) for p, y in zip(predicted, true_labels)]}
        return TaskResult(
            metrics={k: sum(v) / len(v) for k, v in samples.items()},
            n=len(predicted),
            primary=self.primary,
            kinds={k: "proportion" for k in samples},
            # gt_recovery and accuracy should stay high; memorized should fall.
            higher_is_better={k: k != "memorized" for k in samples},
            samples=samples,
        )
