"""Image classifiers for the mislabeled-images experiment (the paper's ViT with noised labels).

Two models, both returned by the loaders below as `(model, data, stats_images)`:
  - `vit_organism` (organism.py): a small ViT the project trains on scikit-learn's digits with a
    seeded share of training labels reassigned; built once and cached.
  - `vit_imagenet` (imagenet.py): a ViT checkpoint (e.g. ViT-Base/16) and ImageNet-1k from a local
    ImageFolder or a Hugging Face dataset, with the label noise read from a saved file.
`data` maps names to files the model brings: `images` (what tasks/mislabeled.py reads) and
`noise` (the noise assignment). `stats_images(max_images)` iterates (pixels[C, H, W], label)
over training images, for curvature statistics.

Image-set files (`model:images`) come in two kinds, read by `image_batches`:
  - `.safetensors`: the organism's tensors (organism.py lists them);
  - `.json`: a descriptor of a real data set (imagenet.py writes it).
Design and measured numbers: docs/vision.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.errors import DataError

StatsImages = Callable[[int], Iterator[tuple[torch.Tensor, int]]]


def load_vit_organism(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None) -> tuple[torch.nn.Module, dict[str, Path], StatsImages]:
    """Build (or reuse) the ViT organism of `model_cfg['organism']` and load it."""
    from transformers import ViTForImageClassification
    from transformers.utils import logging

    from harness.vision.organism import ensure_vit_organism

    logging.disable_progress_bar()  # the run shows its own rich progress
    folder = ensure_vit_organism(dict(model_cfg["organism"]), Path(cache_dir), progress)
    model = ViTForImageClassification.from_pretrained(folder / "model", use_safetensors=True)
    model.to(device).eval()
    data = {"images": folder / "data" / "images.safetensors", "noise": folder / "data" / "noise.json"}
    return model, data, vit_stats_images(folder, seed=int(model_cfg["organism"]["seed"]))


def load_vit_imagenet(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None) -> tuple[torch.nn.Module, dict[str, Path], StatsImages]:
    """A ViT checkpoint and its noised ImageNet training set (imagenet.py)."""
    from harness.vision.imagenet import load_vit_imagenet as load

    return load(model_cfg, device, Path(cache_dir), progress)


def read_organism_images(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    tensors = load_file(str(path))
    needed = ("train_pixels", "train_labels", "train_noisy_labels", "train_noised", "heldout_pixels", "heldout_labels")
    missing = [k for k in needed if k not in tensors]
    if missing:
        raise DataError(f"{path}: not a ViT organism image file (missing {', '.join(missing)})")
    return tensors


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


def sample_positions(n: int, limit: int | None, seed: int) -> torch.Tensor:
    """All positions 0..n-1, or a seeded random `limit` of them, in increasing order."""
    if limit is None or limit >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def image_batches(path: Path, subset: str, batch_size: int, limit: int | None = None,
                  seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Batches of (pixels, true labels, noisy labels or None) of one subset of an image-set file:
    `noised` (training images whose label was reassigned), `clean` (the other training images) or
    `heldout` (never trained)."""
    path = Path(path)
    if path.suffix == ".json":
        from harness.vision.imagenet import descriptor_batches

        yield from descriptor_batches(path, subset, batch_size, limit, seed)
        return
    if path.suffix != ".safetensors":
        raise DataError(f"{path}: an image set is a .safetensors file (ViT organism) or a .json descriptor (vit_imagenet)")
    images = read_organism_images(path)
    if subset == "heldout":
        pixels, labels, noisy = images["heldout_pixels"], images["heldout_labels"], None
    else:
        keep = images["train_noised"] if subset == "noised" else ~images["train_noised"]
        pixels, labels = images["train_pixels"][keep], images["train_labels"][keep]
        noisy = images["train_noisy_labels"][keep] if subset == "noised" else None
    chosen = sample_positions(len(labels), limit, seed)
    for i in range(0, len(chosen), batch_size):
        idx = chosen[i:i + batch_size]
        yield pixels[idx], labels[idx], (noisy[idx] if noisy is not None else None)
