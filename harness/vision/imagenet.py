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
`harness.vision.image_batches`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.errors import ConfigError, DataError, ModelLoadError

DESCRIPTOR_FORMAT = 1
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_vit_imagenet(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path,
                      progress: Any = None):
    """(model, {"images": descriptor, "noise": noise file}, stats_images) for `model=vit_imagenet`."""
    from harness.vision.noise import load_noise_file, save_noise_file

    source = checkpoint_source(model_cfg.get("path"))
    dataset = dataset_settings(model_cfg.get("dataset") or {}, Path(cache_dir))
    dtype = model_cfg.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ConfigError(f"model.dtype '{dtype}' is not valid; use {', '.join(DTYPES)}")
    model, _ = load_checkpoint(source, model_cfg.get("revision"))
    model.to(device=device, dtype=DTYPES[dtype]).eval()

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
        ident = json.dumps([dataset["identity"], dataset["train_split"], len(labels), fraction, seed])
        noise_file = Path(cache_dir) / "vit_imagenet" / f"noise-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"
        if noise_file.exists():
            load_noise_file(noise_file, labels)
        else:
            save_noise_file(noise_file, labels, fraction, num_classes, seed)

    descriptor = {"format": DESCRIPTOR_FORMAT, "processor": source, "revision": model_cfg.get("revision"),
                  "dataset": dataset, "noise_file": str(noise_file)}
    key = hashlib.sha256(json.dumps(descriptor, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "vit_imagenet" / f"images-{key}.json"
    atomic_write(path, json.dumps(descriptor, indent=1))
    seed = int(noise_cfg.get("seed", 0))
    return model, {"images": path, "noise": noise_file}, imagenet_stats_images(path, seed)


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

    logging.disable_progress_bar()
    try:
        model = ViTForImageClassification.from_pretrained(source, revision=revision, use_safetensors=True)
        processor = AutoImageProcessor.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as e:
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


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


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
    """`harness.vision.image_batches` for a real data set: the noised or clean training images, or
    the held-out (`eval_split`) images, processed by the checkpoint's image processor."""
    from transformers import AutoImageProcessor

    from harness.vision import sample_positions
    from harness.vision.noise import load_noise_file

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


def imagenet_stats_images(descriptor_path: Path, seed: int = 0):
    """stats_images(max_images): training images in a seeded random order (an ImageFolder lists
    them class by class), each with the label the checkpoint was trained on (the noise label where
    noised)."""
    def stats_images(max_images: int) -> Iterator[tuple[torch.Tensor, int]]:
        from transformers import AutoImageProcessor

        from harness.vision.noise import load_noise_file, noisy_training_labels

        descriptor = read_descriptor(descriptor_path)
        dataset = descriptor["dataset"]
        processor = AutoImageProcessor.from_pretrained(descriptor["processor"], revision=descriptor.get("revision"))
        split = load_split(dataset, dataset["train_split"])
        labels = split_labels(split, dataset)
        noise = load_noise_file(Path(descriptor["noise_file"]), labels)
        trained = noisy_training_labels(labels, noise["indices"], noise["noisy_labels"])
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:max_images].tolist()
        for i in order:
            yield pixel_batch(processor, [split[i][dataset["image_column"]]])[0], int(trained[i])

    return stats_images
