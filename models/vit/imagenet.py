"""The real path: a ViT checkpoint (e.g. ViT-Base/16) and ImageNet-1k with noised training labels.

The paper trains ViT-Base/16 from scratch on ImageNet-1k with 10 % of the training labels
reassigned. Training is not this project's job; this module evaluates such a checkpoint:
  - the checkpoint: a local save_pretrained folder or a hub id (`ViTForImageClassification`,
    safetensors only) with its `AutoImageProcessor`;
  - the data: a local ImageFolder (`<data_dir>/train/<class>/*.JPEG`, `<data_dir>/val/...`) or a
    Hugging Face dataset name (`ILSVRC/imagenet-1k`), with `image` and `label` columns;
  - the noise: the file the checkpoint was trained with (`noise.file`), or, when none is given,
    one drawn here (seeded) and saved in the cache, to train a checkpoint with.
The loader writes a small JSON descriptor (`model:images`) that tasks/mislabeled.py reads through
`core.images.image_batches`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError, DataError, ModelLoadError
from core.hashing import canonical_hash
from core.images import DESCRIPTOR_FORMAT, load_split, pixel_batch, read_descriptor, split_labels
from core.io import atomic_write_text
from models.base import LoadedModel, parse_dtype


def load_vit_imagenet(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None) -> LoadedModel:
    """`model=vit_imagenet`: the checkpoint, with files {"images": descriptor, "noise": noise file}."""
    from core.label_noise import load_noise_file, save_noise_file
    from models.vit import image_classifier, statistics_settings

    which = statistics_settings(model_cfg)["images"]
    source = checkpoint_source(model_cfg.get("path"))
    dataset = dataset_settings(model_cfg.get("dataset") or {}, Path(cache_dir))
    dtype = model_cfg.get("dtype", "float32")
    model, _ = load_checkpoint(source, model_cfg.get("revision"))
    model.to(device=device, dtype=parse_dtype(dtype, device)).eval()

    train = load_split(dataset, dataset["train_split"])
    labels = split_labels(train, dataset)
    num_classes = train.features[dataset["label_column"]].num_classes if hasattr(
        train.features[dataset["label_column"]], "num_classes") else max(labels) + 1
    if model.config.num_labels != num_classes:
        raise DataError(f"the checkpoint has {model.config.num_labels} classes, the data set {num_classes}: "
                        "point model.path and model.dataset at matching ones")

    noise_cfg = model_cfg.get("noise") or {}
    if noise_cfg.get("file"):
        noise_file = Path(noise_cfg["file"]).expanduser().resolve()
        load_noise_file(noise_file, labels)
    else:
        fraction, seed = float(noise_cfg.get("fraction", 0.1)), int(noise_cfg.get("seed", 0))
        ident = [dataset["identity"], dataset["train_split"], len(labels), fraction, seed]
        noise_file = Path(cache_dir) / "vit_imagenet" / f"noise-{canonical_hash(ident, 16)}.json"
        if noise_file.exists():
            load_noise_file(noise_file, labels)
        else:
            save_noise_file(noise_file, labels, fraction, num_classes, seed)

    descriptor = {"format": DESCRIPTOR_FORMAT, "processor": source, "revision": model_cfg.get("revision"),
                  "dataset": dataset, "noise_file": str(noise_file)}
    path = Path(cache_dir) / "vit_imagenet" / f"images-{canonical_hash(descriptor, 16)}.json"
    atomic_write_text(path, json.dumps(descriptor, indent=1))
    seed = int(noise_cfg.get("seed", 0))
    return image_classifier(model, "vit_imagenet", model_cfg, device, {"images": path, "noise": noise_file},
                            imagenet_stats_images(path, seed, images=which))


def checkpoint_source(path: Any) -> str:
    """A local folder (must exist and hold safetensors) or a hub id, as a string."""
    if not path:
        raise ConfigError("model=vit_base_imagenet needs model.path=<local save_pretrained folder or hub id>")
    path = str(path)
    local = Path(path).expanduser()
    if local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1:
        if not local.is_dir():
            raise ModelLoadError(f"checkpoint folder not found: {local} (pass a save_pretrained folder or a hub id)")
        if not any(local.glob("*.safetensors")):
            raise ModelLoadError(f"{local}: only safetensors weights are loaded; re-save with save_pretrained")
        return str(local.resolve())
    return path


def load_checkpoint(source: str, revision: str | None = None):
    """(ViTForImageClassification, AutoImageProcessor) from a local folder or the hub."""
    from transformers import AutoImageProcessor, ViTForImageClassification
    from transformers.utils import logging

    from safetensors import SafetensorError

    logging.disable_progress_bar()
    try:
        model = ViTForImageClassification.from_pretrained(source, revision=revision, use_safetensors=True)
        processor = AutoImageProcessor.from_pretrained(source, revision=revision)
    except (OSError, ValueError, SafetensorError) as e:  # SafetensorError: truncated or corrupt weights
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"cannot load the ViT checkpoint '{source}': {first}") from None
    return model, processor


def dataset_settings(cfg: Mapping[str, Any], cache_dir: Path) -> dict[str, Any]:
    """The data set as plain settings: exactly one of `data_dir` (ImageFolder) or `name` (hub)."""
    data_dir, name = cfg.get("data_dir"), cfg.get("name")
    if bool(data_dir) == bool(name):
        raise ConfigError("set exactly one of model.dataset.data_dir=<ImageFolder root> or "
                          "model.dataset.name=<Hugging Face dataset>")
    settings = {"train_split": cfg.get("train_split", "train"), "eval_split": cfg.get("eval_split", "validation"),
                "image_column": cfg.get("image_column", "image"), "label_column": cfg.get("label_column", "label")}
    if data_dir:
        root = Path(data_dir).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"ImageFolder not found: {root} (expected train/ and val/ folders of class folders)")
        return {**settings, "data_dir": str(root), "name": None, "identity": f"imagefolder:{root}",
                "cache_dir": str(Path(cache_dir).resolve() / "datasets")}
    return {**settings, "data_dir": None, "name": str(name), "identity": f"hf:{name}", "cache_dir": None}


def imagenet_stats_images(descriptor_path: Path, seed: int = 0, images: str = "all"):
    """stats_images(max_images): training images in a seeded random order (an ImageFolder lists
    them class by class), each with the label the checkpoint was trained on (the noise label where
    noised); `images="clean"` leaves the noised ones out."""
    def stats_images(max_images: int) -> Iterator[tuple[torch.Tensor, int]]:
        from transformers import AutoImageProcessor

        from core.label_noise import load_noise_file, noisy_training_labels

        descriptor = read_descriptor(descriptor_path)
        dataset = descriptor["dataset"]
        processor = AutoImageProcessor.from_pretrained(descriptor["processor"], revision=descriptor.get("revision"))
        split = load_split(dataset, dataset["train_split"])
        labels = split_labels(split, dataset)
        noise = load_noise_file(Path(descriptor["noise_file"]), labels)
        trained = noisy_training_labels(labels, noise["indices"], noise["noisy_labels"])
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
        if images == "clean":
            noised = set(noise["indices"])
            order = [i for i in order if i not in noised]
        for i in order[:max_images]:
            yield pixel_batch(processor, [split[i][dataset["image_column"]]])[0], int(trained[i])

    return stats_images
