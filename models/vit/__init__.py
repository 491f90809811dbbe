"""Image classifiers for the mislabeled-images experiment (the paper's ViT with noised labels).

Two models, each loaded as a `LoadedModel` whose statistics stream is its training images:
  - `vit_organism` (organism.py): a small ViT the project trains on scikit-learn's digits with a
    seeded share of training labels reassigned; built once and cached.
  - `vit_imagenet` (imagenet.py): a ViT checkpoint (e.g. ViT-Base/16) and ImageNet-1k from a local
    ImageFolder or a Hugging Face dataset, with the label noise read from a saved file.
Each brings the files `images` (what tasks/mislabeled.py reads through core/images.py) and
`noise` (the noise assignment). `stats_images(max_images)` iterates (pixels[C, H, W], label)
over training images, for curvature statistics.

The statistics stream is the model's, so its settings are the model's too (`model.statistics`):
  tokens  cls (default; the paper's ViT setting): the CLS token is the only position that counts
          all: every token (CLS and patches) counts, each as a position of K-FAC's "expand"
          approximation (a weight shared over tokens)
  images  all (default): every training image, noised ones included, as the model saw them
          clean: only the training images whose label was not reassigned
Design and measured numbers: docs/vision.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.hashing import bytes_hash, canonical_hash
from core.images import read_organism_images
from core.errors import ConfigError
from models.base import LoadedModel, ModelData, StatisticsSource, batched, sample_labels

StatsImages = Callable[[int], Iterator[tuple[torch.Tensor, int]]]
STATISTICS_TOKENS = ("cls", "all")
STATISTICS_IMAGES = ("all", "clean")


def statistics_settings(model_cfg: Mapping[str, Any]) -> dict[str, str]:
    """`model.statistics` with its defaults ({"tokens": "cls", "images": "all"}), checked."""
    given = dict(model_cfg.get("statistics") or {})
    unknown = sorted(set(given) - {"tokens", "images"})
    if unknown:
        raise ConfigError(f"model.statistics has unknown keys {unknown}; valid: tokens, images")
    settings = {"tokens": given.get("tokens", "cls"), "images": given.get("images", "all")}
    for key, valid in (("tokens", STATISTICS_TOKENS), ("images", STATISTICS_IMAGES)):
        if settings[key] not in valid:
            raise ConfigError(f"model.statistics.{key} must be one of {', '.join(valid)}, got {settings[key]!r}")
    return settings


class ImageStatistics(StatisticsSource):
    """Training images; the loss is the classification cross-entropy. `tokens="cls"`: the CLS
    token (position 0) is the position that counts (the paper's ViT setting); `tokens="all"`:
    every token counts, and the loss is the images' summed cross-entropy divided by the number of
    token positions, so that the collector's undoing of the mean (models/base.py, methods/kfac/statistics.py)
    gives each token the gradient of the summed loss and A, G average over all token positions."""

    unit = "images"

    def __init__(self, images: StatsImages, tokens: str = "cls") -> None:
        if tokens not in STATISTICS_TOKENS:
            raise ConfigError(f"tokens must be one of {', '.join(STATISTICS_TOKENS)}, got {tokens!r}")
        self.images = images
        self.tokens = tokens

    def batches(self, budget: int, batch_size: int, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batched(self.images(budget), batch_size,
                       lambda rows: (torch.stack([r[0] for r in rows]), torch.tensor([r[1] for r in rows])))

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], labels: str,
             generator: torch.Generator) -> tuple[torch.Tensor, int]:
        pixels, gold = batch
        device = next(model.parameters()).device
        logits = model(pixel_values=pixels.to(device)).logits.float()
        targets = sample_labels(logits, generator) if labels == "sampled" else gold.to(device)
        if self.tokens == "cls":
            return torch.nn.functional.cross_entropy(logits, targets), logits.shape[0]
        n = logits.shape[0] * token_count(model)
        return torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / n, n

    def positions(self, activations: torch.Tensor) -> torch.Tensor:
        if self.tokens == "cls":
            return activations[:, 0]
        return activations.reshape(-1, activations.shape[-1])

    def count(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        return len(batch[0])

    def fingerprint(self, seq_len: int) -> str | None:
        first = next(iter(self.images(1)), None)
        return None if first is None else bytes_hash(first[0].numpy().tobytes(), 16)


def token_count(model: torch.nn.Module) -> int:
    """Tokens a ViT's encoder sees per image: one per patch, plus the CLS token."""
    config = model.config
    size, patch = config.image_size, config.patch_size
    size = size if isinstance(size, (tuple, list)) else (size, size)
    patch = patch if isinstance(patch, (tuple, list)) else (patch, patch)
    return (size[0] // patch[0]) * (size[1] // patch[1]) + 1


class ImageData(ModelData):
    """An image classifier brings its training images as the statistics stream."""

    def __init__(self, images: StatsImages, tokens: str = "cls") -> None:
        self.images = images
        self.tokens = tokens

    def statistics(self) -> ImageStatistics:
        return ImageStatistics(self.images, self.tokens)


def image_classifier(model: torch.nn.Module, kind: str, model_cfg: Mapping[str, Any], device: torch.device,
                     files: dict[str, Path], images: StatsImages) -> LoadedModel:
    """The LoadedModel of an image classifier, keyed by its whole config."""
    key = f"{kind}-{canonical_hash(dict(model_cfg), 16)}"
    tokens = statistics_settings(model_cfg)["tokens"]
    return LoadedModel(model, None, model_cfg.get("name", kind), key, files, device,
                       kind="image_classifier", sources=ImageData(images, tokens))


def load_vit_organism(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None) -> LoadedModel:
    """`model=vit_organism`: build (or reuse) the ViT organism of `model.organism` and load it."""
    from transformers import ViTForImageClassification
    from transformers.utils import logging

    from models.vit.organism import ensure_vit_organism

    which = statistics_settings(model_cfg)["images"]  # a bad setting fails before any build
    logging.disable_progress_bar()  # the run shows its own rich progress
    folder = ensure_vit_organism(dict(model_cfg["organism"]), Path(cache_dir), progress)
    model = ViTForImageClassification.from_pretrained(folder / "model", use_safetensors=True)
    model.to(device).eval()
    files = {"images": folder / "data" / "images.safetensors", "noise": folder / "data" / "noise.json"}
    return image_classifier(model, "vit_organism", model_cfg, device, files,
                            vit_stats_images(folder, seed=int(model_cfg["organism"]["seed"]), images=which))


def vit_stats_images(folder: Path, seed: int = 0, images: str = "all") -> StatsImages:
    """stats_images(max_images) over the organism's training images (`images="all"`: noised ones
    included, as the model saw them; `"clean"`: only those whose label was not reassigned), each at
    most once, in a seeded random order; the label is the one the model was trained on. Asking for
    more images than there are gives them all."""
    if images not in STATISTICS_IMAGES:
        raise ConfigError(f"images must be one of {', '.join(STATISTICS_IMAGES)}, got {images!r}")
    path = Path(folder) / "data" / "images.safetensors"

    def stats_images(max_images: int) -> Iterator[tuple[torch.Tensor, int]]:
        data = read_organism_images(path)
        pixels, labels = data["train_pixels"], data["train_noisy_labels"]
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        if images == "clean":
            order = order[~data["train_noised"][order]]
        for i in order[:max_images].tolist():
            yield pixels[i], int(labels[i])

    return stats_images


