"""The ViT organism: deterministic tiny builds, the cache, loading through models, and the
statistics image stream."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.vit.organism import default_settings, ensure_vit_organism, settings_hash

TINY = {
    "seed": 0,
    "data": {"heldout_share": 0.2, "noise_fraction": 0.1},
    "model": {"patch": 4, "hidden": 16, "mlp": 32, "layers": 2, "heads": 2},
    "train": {"epochs": 2, "batch_size": 256, "lr": 3e-3, "weight_decay": 0.0, "warmup": 2,
              "grad_clip": 1.0, "shift": 0, "log_every": 1},
}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return ensure_vit_organism(TINY, tmp_path_factory.mktemp("cache"))


def test_layout_and_manifest(tiny_folder: Path) -> None:
    import json

    from core.images import read_organism_images
    from core.label_noise import load_noise_file

    assert tiny_folder.name == settings_hash(TINY)
    manifest = json.loads((tiny_folder / "manifest.json").read_text())
    assert manifest["settings"] == TINY and [c["epoch"] for c in manifest["curve"]] == [1, 2]
    assert manifest["train_images"] + manifest["heldout_images"] == 1797
    images = read_organism_images(tiny_folder / "data" / "images.safetensors")
    n = len(images["train_labels"])
    assert n == manifest["train_images"] and images["train_pixels"].shape == (n, 1, 8, 8)
    assert int(images["train_noised"].sum()) == manifest["noised_images"] == round(0.1 * n)
    noised = images["train_noised"]
    assert torch.all(images["train_noisy_labels"][noised] != images["train_labels"][noised])
    assert torch.equal(images["train_noisy_labels"][~noised], images["train_labels"][~noised])
    noise = load_noise_file(tiny_folder / "data" / "noise.json", images["train_labels"].tolist())
    assert noise["indices"] == torch.nonzero(noised).flatten().tolist()
    assert not list(tiny_folder.parent.glob(".*building*"))  # the temp folder was renamed away


def test_build_is_deterministic_and_cached(tiny_folder: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    again = ensure_vit_organism(TINY, tmp_path)
    first = load_file(str(tiny_folder / "model" / "model.safetensors"))
    second = load_file(str(again / "model" / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    stamp = (again / "manifest.json").stat().st_mtime_ns
    assert ensure_vit_organism(TINY, tmp_path) == again and (again / "manifest.json").stat().st_mtime_ns == stamp
    changed = {**TINY, "data": {**TINY["data"], "noise_fraction": 0.2}}
    assert settings_hash(changed) != settings_hash(TINY)


def test_loads_through_the_model_zoo(tiny_folder: Path) -> None:
    from models import load_model

    cache = tiny_folder.parents[1]
    loaded = load_model({"kind": "vit_organism", "name": "vit_organism", "organism": TINY}, "cpu", cache)
    assert loaded.kind == "image_classifier" and loaded.tokenizer is None
    assert set(loaded.data) == {"images", "noise"} and all(p.is_file() for p in loaded.data.values())
    stream = list(loaded.sources.statistics().images(5))
    assert len(stream) == 5 and stream[0][0].shape == (1, 8, 8) and isinstance(stream[0][1], int)
    assert [label for _, label in stream] == [label for _, label in loaded.sources.statistics().images(5)]  # seeded order
    # Asking for more images than the training set holds: each once, with its trained label.
    from core.images import read_organism_images

    trained = read_organism_images(loaded.data["images"])["train_noisy_labels"]
    labels = [label for _, label in loaded.sources.statistics().images(len(trained) + 10)]
    assert sorted(labels) == sorted(trained.tolist())
    with torch.no_grad():
        logits = loaded.model(pixel_values=torch.stack([x for x, _ in stream])).logits
    assert logits.shape == (5, 10)
    from models.architectures import find_mlp_linears

    assert len(find_mlp_linears(loaded.model, matrices=("up", "down"))) == 4  # K-FAC finds the MLPs


def test_default_settings_are_the_config_file() -> None:
    settings = default_settings()
    assert settings["data"]["noise_fraction"] == 0.1 and settings["model"]["patch"] == 4


def test_random_shift_against_a_slow_reference() -> None:
    """Every shifted image is the original moved by (dy, dx) in -1..1, background -1 filling in."""
    from models.vit.organism import random_shift

    pixels = torch.arange(3 * 64, dtype=torch.float32).view(3, 1, 8, 8)
    shifted = random_shift(pixels, 1, torch.Generator().manual_seed(0))

    def moved(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        out = torch.full_like(image, -1.0)
        for y in range(8):
            for x in range(8):
                if 0 <= y + dy < 8 and 0 <= x + dx < 8:
                    out[:, y, x] = image[:, y + dy, x + dx]
        return out

    for k in range(3):
        assert any(torch.equal(shifted[k], moved(pixels[k], dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_statistics_settings(tiny_folder: Path) -> None:
    """model.statistics: `images: clean` leaves the noised training images out of the statistics
    stream; `tokens: all` reaches the stream; unknown values are one-line ConfigErrors."""
    from core.errors import ConfigError
    from core.images import read_organism_images
    from models import load_model
    from models.vit import statistics_settings

    cache = tiny_folder.parents[1]
    base = {"kind": "vit_organism", "name": "vit_organism", "organism": TINY}
    assert statistics_settings(base) == {"tokens": "cls", "images": "all"}
    images = read_organism_images(tiny_folder / "data" / "images.safetensors")
    clean = load_model({**base, "statistics": {"images": "clean", "tokens": "all"}}, "cpu", cache)
    assert clean.sources.statistics().tokens == "all"
    stream = list(clean.sources.statistics().images(10_000))
    n_clean = int((~images["train_noised"]).sum())
    assert len(stream) == n_clean
    clean_pixels = images["train_pixels"][~images["train_noised"]]
    assert all(any(torch.equal(x, p) for p in clean_pixels) for x, _ in stream[:20])
    noised_pixels = images["train_pixels"][images["train_noised"]]
    assert not any(torch.equal(x, p) for x, _ in stream for p in noised_pixels[:5])
    for bad in ({"tokens": "patches"}, {"images": "noised"}, {"token": "all"}):
        with pytest.raises(ConfigError, match="model.statistics"):
            load_model({**base, "statistics": bad}, "cpu", cache)
