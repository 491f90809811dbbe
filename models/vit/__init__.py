"""Image classifiers for the mislabeled-images experiment (the paper's ViT with noised labels).

Two models, each loaded as a `LoadedModel` whose statistics stream is its training images:
  - `vit_organism` (organism.py): a small ViT the project trains on scikit-learn's digits with a
    seeded share of training labels reassigned; built once and cached.
  - `vit_imagenet` (imagenet.py): a ViT checkpoint (e.g. ViT-Base/16) and ImageNet-1k from a local
    ImageFolder or a Hugging Face dataset, with the label noise read from a saved file.
Each brings the files `images` (what tasks/mislabeled.py reads through core/images.py) and
`noise` (the noise assignment). `stats_images(max_images)` iterates (pixels[C, H, W], label)
over training images, for curvature statistics.
Design and measured numbers: docs/vision.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.hashing import bytes_hash, canonical_hash
from core.images import read_organism_images
from models.base import LoadedModel, ModelData, StatisticsSource, batched, sample_labels

StatsImages = Callable[[int], Iterator[tuple[torch.Tensor, int]]]


class ImageStatistics(StatisticsSource):
    """Training images; the loss is the classification cross-entropy, and the CLS token (position
    0) is the position that counts (the paper's ViT setting)."""

    unit = "images"

    def __init__(self, images: StatsImages) -> None:
        self.images = images

    def batches(self, budget: int, batch_size: int, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batched(self.images(budget), batch_size,
                       lambda rows: (torch.stack([r[0] for r in rows]), torch.tensor([r[1] for r in rows])))

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], labels: str,
             generator: torch.Generator) -> tuple[torch.Tensor, int]:
        pixels, gold = batch
        device = next(model.parameters()).device
        logits = model(pixel_values=pixels.to(device)).logits.float()
        targets = sample_labels(logits, generator) if labels == "sampled" else gold.to(device)
        return torch.nn.functional.cross_entropy(logits, targets), logits.shape[0]

    def positions(self, activations: torch.Tensor) -> torch.Tensor:
        return activations[:, 0]

    def count(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return len(batch[0])

    def fingerprint(self, seq_len: int) -> str | None:
        first = next(iter(self.images(1)), None)
        return None if first is None else bytes_hash(first[0].numpy().tobytes(), 16)


class ImageData(ModelData):
    """An image classifier brings its training images as the statistics stream."""

    def __init__(self, images: StatsImages) -> None:
        self.images = images

    def statistics(self) -> ImageStatistics:
        return ImageStatistics(self.images)


def image_classifier(model: torch.nn.Module, kind: str, model_cfg: Mapping[str, Any], device: torch.device,
                     files: dict[str, Path], images: StatsImages) -> LoadedModel:
    """The LoadedModel of an image classifier, keyed by its whole config."""
    key = f"{kind}-{canonical_hash(dict(model_cfg), 16)}"
    return LoadedModel(model, None, model_cfg.get("name", kind), key, files, device,
                       kind="image_classifier", sources=ImageData(images))


def load_vit_organism(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None) -> LoadedModel:
    """`model=vit_organism`: build (or reuse) the ViT organism of `model.organism` and load it."""
    from transformers import ViTForImageClassification
    from transformers.utils import logging

    from models.vit.organism import ensure_vit_organism

    logging.disable_progress_bar()  # the run shows its own rich progress
    folder = ensure_vit_organism(dict(model_cfg["organism"]), Path(cache_dir), progress)
    model = ViTForImageClassification.from_pretrained(folder / "model", use_safetensors=True)
    model.to(device).eval()
    files = {"images": folder / "data" / "images.safetensors", "noise": folder / "data" / "noise.json"}
    return image_classifier(model, "vit_organism", model_cfg, device, files,
                            vit_stats_images(folder, seed=int(model_cfg["organism"]["seed"])))


def vit_stats_images(folder: Path, seed: int = 0) -> StatsImages:
    """stats_images(max_images) over the organism's training images (noised ones included, as the
    model saw them), each at most once, in a seeded random order; the label is the one the model
    was trained on. Asking for more images than the training set holds gives them all."""
    path = Path(folder) / "data" / "images.safetensors"

    def stats_images(max_images: int) -> Iterator[tuple[torch.Tensor, int]]:
        images = read_organism_images(path)
        pixels, labels = images["train_pixels"], images["train_noisy_labels"]
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:max_images]
        for i in order.tolist():
            yield pixels[i], int(labels[i])

    return stats_images


