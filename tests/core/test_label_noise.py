"""Label-noise assignment: seeded, exact share, never the true label, saved file round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError, DataError
from core.label_noise import assign_noise, load_noise_file, noisy_training_labels, save_noise_file


def labels(n: int = 1000, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(123).integers(0, classes, size=n)


def test_exact_share_distinct_indices_and_never_the_true_label() -> None:
    y = labels()
    for fraction, count in [(0.1, 100), (0.25, 250), (0.0, 0), (1.0, 1000), (0.0015, 2)]:
        idx, noisy = assign_noise(y, fraction, 10, seed=0)
        assert len(idx) == count == len(set(idx.tolist())) == len(noisy)
        assert np.all(noisy != y[idx]) and noisy.min(initial=0) >= 0 and noisy.max(initial=0) < 10


def test_seeded() -> None:
    y = labels()
    a, b, c = (assign_noise(y, 0.1, 10, seed=s) for s in (0, 0, 1))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_noisy_labels_cover_the_other_classes_about_uniformly() -> None:
    """Against a slow obvious reference: for each true class, the noise label is uniform over the
    other 9 classes (each ~1/9 of 5,000 draws per class here)."""
    y = np.repeat(np.arange(10), 5000)
    idx, noisy = assign_noise(y, 1.0, 10, seed=0)
    for true in range(10):
        counts = np.bincount(noisy[y[idx] == true], minlength=10)
        assert counts[true] == 0
        others = np.delete(counts, true) / counts.sum()
        assert np.all(np.abs(others - 1 / 9) < 0.02)


def test_training_labels_replace_only_the_noised_positions() -> None:
    y = labels(50)
    idx, noisy = assign_noise(y, 0.2, 10, seed=3)
    trained = noisy_training_labels(y, idx, noisy)
    assert np.sum(trained != y) == 10 and np.array_equal(trained[idx], noisy)


def test_file_round_trip_and_checks(tmp_path: Path) -> None:
    y = labels(200)
    path = tmp_path / "sub" / "noise.json"
    record = save_noise_file(path, y.tolist(), 0.1, 10, seed=7)
    loaded = load_noise_file(path, y.tolist())
    assert loaded == record and loaded["seed"] == 7 and len(loaded["indices"]) == 20
    idx, noisy = assign_noise(y, 0.1, 10, seed=7)
    assert loaded["indices"] == idx.tolist() and loaded["noisy_labels"] == noisy.tolist()
    with pytest.raises(DataError, match="drawn for 200 training examples"):
        load_noise_file(path, y[:100].tolist())
    with pytest.raises(DataError, match="differ from the data set"):
        load_noise_file(path, ((y + 1) % 10).tolist())
    with pytest.raises(DataError, match="noise file not found"):
        load_noise_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1}))
    with pytest.raises(DataError, match="not a noise file"):
        load_noise_file(bad)


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        assign_noise([0, 1], 1.5, 10, 0)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        assign_noise([0, 0], 0.5, 1, 0)
    with pytest.raises(DataError, match="labels must lie in 0..9"):
        assign_noise([0, 12], 0.5, 10, 0)
