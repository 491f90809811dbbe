"""The ViT organism: a small ViT trained by the project on scikit-learn's bundled handwritten digits
(8x8 grey images, 10 classes, 1,797 images, no download), with a seeded share of the training
labels reassigned so that the model has to memorize them.

`ensure_vit_organism(settings, cache_root)` returns `<cache_root>/vit_organism/<hash>/` with
  model/               save_pretrained ViTForImageClassification (safetensors)
  data/images.safetensors
      train_pixels [N,1,8,8] float32 (model input scale), train_labels (true), train_noisy_labels
      (what the model was trained on), train_noised (bool mask), heldout_pixels, heldout_labels
  data/noise.json      the noise assignment (core/label_noise.py format)
  manifest.json        settings, hash, learning curve, final metrics, seconds, versions
Built in a temporary sibling folder renamed into place, like the LM organism.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VIT_ORGANISM_FORMAT_VERSION = 1
# The committed builds of the default settings, seeds 0-2 (models/shipping.py; stored in float32:
# the model is small and its memorized labels sit close to decision boundaries).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
REBUILD_HINT = "python -m models.build vit_organism --seed <seed>"


def default_settings() -> dict[str, Any]:
    """The `organism:` mapping of conf/model/vit_organism.yaml."""
    from core.buildcache import default_build_settings

    return default_build_settings("vit_organism")


def settings_hash(settings: Mapping[str, Any]) -> str:
    from core.buildcache import settings_hash as hash_settings

    return hash_settings(settings, VIT_ORGANISM_FORMAT_VERSION)


def ensure_vit_organism(settings: Mapping[str, Any], cache_root: Path, progress: Any = None) -> Path:
    """The folder of the ViT organism built with `settings`: the shipped build of the same settings,
    else a cached one, else built first."""
    from core.buildcache import ensure_built

    return ensure_built(settings, Path(cache_root) / "vit_organism", VIT_ORGANISM_FORMAT_VERSION, build_vit_organism,
                        progress, shipped_root=SHIPPED_DIR, rebuild_hint=REBUILD_HINT)


def stored_checks(folder: Path) -> dict[str, float]:
    """The mislabeled-images metrics of the weights as stored in `folder` (models/shipping.py)."""
    from safetensors.torch import load_file
    from transformers import ViTForImageClassification

    model = ViTForImageClassification.from_pretrained(str(folder / "model"), use_safetensors=True)
    return measure(model, load_file(str(folder / "data" / "images.safetensors")))


def shippable() -> Any:
    from models.shipping import Shippable

    return Shippable("vit_organism", default_settings, VIT_ORGANISM_FORMAT_VERSION, build_vit_organism, SHIPPED_DIR,
                     stored_checks, bfloat16=False, checks_key="final")


def digits_split(heldout_share: float, seed: int):
    """(train_pixels, train_labels, heldout_pixels, heldout_labels) of the digits data set, split
    by a seeded permutation. Pixels are scaled from 0..16 to -1..1 and shaped [N, 1, 8, 8]."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_heldout = int(round(heldout_share * len(labels)))
    held, train = order[:n_heldout], order[n_heldout:]
    return pixels[train], labels[train], pixels[held], labels[held]


def build_model(settings: Mapping[str, Any]):
    from transformers import ViTConfig, ViTForImageClassification

    m = settings["model"]
    config = ViTConfig(
        image_size=8, patch_size=int(m["patch"]), num_channels=1, hidden_size=int(m["hidden"]),
        num_hidden_layers=int(m["layers"]), num_attention_heads=int(m["heads"]),
        intermediate_size=int(m["mlp"]), num_labels=10, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)},
    )
    return ViTForImageClassification(config)


def predict(model, pixels, batch_size: int = 512):
    """Argmax class of each image (a LongTensor)."""
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(pixel_values=pixels[i:i + batch_size]).logits.argmax(-1)
                          for i in range(0, len(pixels), batch_size)])


def measure(model, images: Mapping[str, Any]) -> dict[str, float]:
    """The mislabeled-images metrics on the organism's own data (see tasks/mislabeled.py)."""
    from tasks.mislabeled import mislabeled_metrics

    noised = images["train_noised"]
    train_pred = predict(model, images["train_pixels"])
    metrics = mislabeled_metrics(train_pred[noised].tolist(), images["train_labels"][noised].tolist(),
                                 images["train_noisy_labels"][noised].tolist())
    clean = ~noised
    metrics["clean_train_accuracy"] = float((train_pred[clean] == images["train_labels"][clean]).float().mean())
    metrics["heldout_accuracy"] = float((predict(model, images["heldout_pixels"]) == images["heldout_labels"]).float().mean())
    return {k: round(v, 4) for k, v in metrics.items()}


def random_shift(pixels, shift: int, generator):
    """Each image moved by up to `shift` pixels in each direction, background (-1) filling in:
    the standard translation augmentation, so the model must learn digits, not pixel positions."""
    import torch

    n, _, h, w = pixels.shape
    padded = torch.nn.functional.pad(pixels, (shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=generator)
    return torch.stack([padded[k, :, dy[k]:dy[k] + h, dx[k]:dx[k] + w] for k in range(n)])


def build_vit_organism(settings: Mapping[str, Any], folder: Path, progress: Any = None) -> None:
    import math

    import torch
    import transformers
    from safetensors.torch import save_file

    from core.label_noise import noisy_training_labels, save_noise_file

    transformers.utils.logging.disable_progress_bar()  # the run shows its own rich progress
    start = time.perf_counter()
    seed = int(settings["seed"])
    data_cfg, train_cfg = settings["data"], settings["train"]
    train_x, train_y, held_x, held_y = digits_split(float(data_cfg["heldout_share"]), seed)
    data_dir = folder / "data"
    noise = save_noise_file(data_dir / "noise.json", train_y.tolist(), float(data_cfg["noise_fraction"]), 10, seed)
    noisy_y = noisy_training_labels(train_y, noise["indices"], noise["noisy_labels"])
    images = {
        "train_pixels": torch.from_numpy(train_x), "train_labels": torch.from_numpy(train_y),
        "train_noisy_labels": torch.from_numpy(noisy_y), "train_noised": torch.from_numpy(noisy_y != train_y),
        "heldout_pixels": torch.from_numpy(held_x), "heldout_labels": torch.from_numpy(held_y),
    }
    save_file({k: v.contiguous() for k, v in images.items()}, str(data_dir / "images.safetensors"))

    torch.manual_seed(seed)
    model = build_model(settings)
    epochs, batch = int(train_cfg["epochs"]), int(train_cfg["batch_size"])
    steps_per_epoch = math.ceil(len(train_y) / batch)
    total, warmup = epochs * steps_per_epoch, int(train_cfg["warmup"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(train_cfg["lr"]),
                                  weight_decay=float(train_cfg["weight_decay"]))
    # Linear warm-up, then cosine decay to zero: the last epochs at a small step size settle the
    # memorized labels.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup))
                                                 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    generator = torch.Generator().manual_seed(seed)
    x, y = images["train_pixels"], images["train_noisy_labels"]
    task = progress.add_task("training the ViT organism", total=epochs) if progress is not None else None
    curve, every = [], int(train_cfg["log_every"])
    shift = int(train_cfg["shift"])
    for epoch in range(1, epochs + 1):
        model.train()
        order, losses = torch.randperm(len(y), generator=generator), []
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            inputs = random_shift(x[idx], shift, generator) if shift else x[idx]
            loss = torch.nn.functional.cross_entropy(model(pixel_values=inputs).logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(train_cfg["grad_clip"]))
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        if epoch % every == 0 or epoch == epochs:
            curve.append({"epoch": epoch, "loss": round(sum(losses) / len(losses), 4), **measure(model, images),
                          "seconds": round(time.perf_counter() - start, 1)})
        if task is not None:
            progress.update(task, advance=1)
    if task is not None:
        progress.remove_task(task)

    model.eval()
    model.save_pretrained(folder / "model", safe_serialization=True)
    manifest = {
        "format_version": VIT_ORGANISM_FORMAT_VERSION,
        "settings_hash": settings_hash(settings),
        "settings": settings,
        "train_images": len(train_y),
        "noised_images": len(noise["indices"]),
        "heldout_images": len(held_y),
        "parameters": sum(p.numel() for p in model.parameters()),
        "curve": curve,
        "final": measure(model, images),
        "build_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
