"""Label noise: reassign a seeded share of training labels, each to a class other than its own.

The paper's controlled-memorization experiment trains a ViT with 10 % of the training labels
reassigned at random; a model that fits them has memorized those (image, wrong label) pairs. The
assignment is saved to a JSON file, so every method and every rerun sees the same noised labels,
and so a checkpoint trained elsewhere can be evaluated against the labels it was trained with.

Noise file (format 1):
  {"format": 1, "seed": 0, "fraction": 0.1, "num_classes": 10, "num_examples": N,
   "indices": [...], "true_labels": [...], "noisy_labels": [...]}
`indices` are positions in the training set (sorted); `true_labels` let a loader check that the
data set it reads is the one the noise was drawn for (same order, same labels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, DataError
from core.io import atomic_write_text

NOISE_FORMAT = 1


def assign_noise(labels: Sequence[int], fraction: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, noisy_labels): round(fraction * N) distinct positions chosen uniformly at random,
    each given a label drawn uniformly from the other num_classes - 1 classes (never its own)."""
    if not 0 <= fraction <= 1:
        raise ConfigError(f"noise fraction must be in [0, 1], got {fraction}")
    if num_classes < 2:
        raise ConfigError(f"label noise needs at least 2 classes, got {num_classes}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    rng = np.random.default_rng(seed)
    count = int(round(fraction * len(labels)))
    indices = np.sort(rng.permutation(len(labels))[:count])
    # An offset in 1..C-1 added modulo C is uniform over the other classes and never 0.
    offsets = rng.integers(1, num_classes, size=count)
    return indices, (labels[indices] + offsets) % num_classes


def noisy_training_labels(labels: Sequence[int], indices: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """The labels a model is trained on: the true ones, with the noised positions replaced."""
    out = np.array(labels, dtype=np.int64, copy=True)
    out[indices] = noisy
    return out


def save_noise_file(path: Path, labels: Sequence[int], fraction: float, num_classes: int, seed: int) -> dict[str, Any]:
    """Draw the noise for `labels` and write it atomically to `path`; returns the record."""
    indices, noisy = assign_noise(labels, fraction, num_classes, seed)
    record = {"format": NOISE_FORMAT, "seed": seed, "fraction": fraction, "num_classes": num_classes,
              "num_examples": len(labels), "indices": indices.tolist(),
              "true_labels": np.asarray(labels, dtype=np.int64)[indices].tolist(),
              "noisy_labels": noisy.tolist()}
    atomic_write_text(Path(path), json.dumps(record))
    return record


def load_noise_file(path: Path, labels: Sequence[int] | None = None) -> dict[str, Any]:
    """Read a noise file; with `labels` (the training set's true labels), check that it was drawn
    for this data set. Malformed or mismatched files are a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"noise file not found: {path} (set it to the file the checkpoint was trained with, "
                        "or leave it null to draw one)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg})") from None
    keys = ("format", "num_classes", "num_examples", "indices", "true_labels", "noisy_labels")
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(f"{path}: not a noise file (missing {', '.join(missing)})")
    if record["format"] != NOISE_FORMAT:
        raise DataError(f"{path}: noise file format {record['format']} is not supported (expected {NOISE_FORMAT})")
    n = len(record["indices"])
    if not len(record["true_labels"]) == len(record["noisy_labels"]) == n:
        raise DataError(f"{path}: indices, true_labels and noisy_labels differ in length")
    if any(t == y for t, y in zip(record["true_labels"], record["noisy_labels"])):
        raise DataError(f"{path}: some noisy labels equal the true label")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != record["num_examples"]:
            raise DataError(f"{path}: drawn for {record['num_examples']} training examples, the data set has {len(labels)}")
        if n and not np.array_equal(labels[np.asarray(record["indices"])], np.asarray(record["true_labels"])):
            raise DataError(f"{path}: the true labels it records differ from the data set's (different data or order)")
    return record
