"""Image sets, read the same way by the mislabeled-images task and the models that bring them.

An image-set file (`model:images`) is one of two kinds, read by `image_batches`:
  - `.safetensors`: the ViT organism's tensors (models/vit/organism.py lists them);
  - `.json`: a descriptor of a real data set (models/vit/imagenet.py writes it): a local ImageFolder
    or a Hugging Face dataset, the checkpoint's image processor and the label-noise file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import DataError

DESCRIPTOR_FORMAT = 1


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


def load_split(dataset: Mapping[str, Any], split: str):
    """One split of the data set (datasets.Dataset); a missing data set or split is a DataError."""
    import datasets

    try:
        if dataset["data_dir"]:
            return datasets.load_dataset("imagefolder", data_dir=dataset["data_dir"], split=split,
                                         cache_dir=dataset["cache_dir"])
        return datasets.load_dataset(dataset["name"], split=split)
    except Exception as e:  # datasets raises many types; all mean "cannot read it"
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise DataError(f"cannot load split '{split}' of {dataset['identity']} ({type(e).__name__}: {first})") from None


def split_labels(split, dataset: Mapping[str, Any]) -> list[int]:
    column = dataset["label_column"]
    if column not in split.column_names:
        raise DataError(f"{dataset['identity']}: no '{column}' column (columns: {', '.join(split.column_names)}); "
                        "set model.dataset.label_column")
    return [int(y) for y in split[column]]


def read_descriptor(path: Path) -> dict[str, Any]:
    try:
        descriptor = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"image-set descriptor not found: {path}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg})") from None
    if descriptor.get("format") != DESCRIPTOR_FORMAT:
        raise DataError(f"{path}: not an image-set descriptor of format {DESCRIPTOR_FORMAT}")
    return descriptor


def pixel_batch(processor, images: list) -> torch.Tensor:
    return processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]


def descriptor_batches(path: Path, subset: str, batch_size: int, limit: int | None = None,
                       seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """`image_batches` for a real data set: the noised or clean training images, or
    the held-out (`eval_split`) images, processed by the checkpoint's image processor."""
    from transformers import AutoImageProcessor

    from core.label_noise import load_noise_file

    descriptor = read_descriptor(path)
    dataset = descriptor["dataset"]
    processor = AutoImageProcessor.from_pretrained(descriptor["processor"], revision=descriptor.get("revision"))
    if subset == "heldout":
        split = load_split(dataset, dataset["eval_split"])
        positions, noisy_of = list(range(len(split))), None
    else:
        split = load_split(dataset, dataset["train_split"])
        noise = load_noise_file(Path(descriptor["noise_file"]), split_labels(split, dataset))
        noisy_of = dict(zip(noise["indices"], noise["noisy_labels"]))
        if subset == "noised":
            positions = list(noise["indices"])
        else:
            positions = [i for i in range(len(split)) if i not in noisy_of]
    positions = [positions[i] for i in sample_positions(len(positions), limit, seed).tolist()]
    for start in range(0, len(positions), batch_size):
        chosen = positions[start:start + batch_size]
        rows = split.select(chosen)
        labels = torch.tensor([int(y) for y in rows[dataset["label_column"]]])
        noisy = torch.tensor([noisy_of[i] for i in chosen]) if subset == "noised" else None
        yield pixel_batch(processor, list(rows[dataset["image_column"]])), labels, noisy
