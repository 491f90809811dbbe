"""Builds cached under a hash of their settings (the LM and ViT organisms), put in place atomically:
built in a temporary sibling folder and renamed, so an interrupted build never leaves a half one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.hashing import canonical_hash

# The project's Hydra config folder (the app composes from it; python -m harness).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def default_build_settings(model_config: str) -> dict[str, Any]:
    """The `organism:` block of conf/model/<model_config>.yaml, resolved: the default settings of
    a cached build (`organism` for the LM organism, `vit_organism` for the ViT one)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{model_config}.yaml").organism,
                                  resolve=True)  # type: ignore[return-value]


def default_cache_dir() -> Path:
    """The cache folder the app uses when not told otherwise: `cache_dir` of conf/config.yaml
    ($HARNESS_CACHE_DIR, else .cache/harness), resolved here so the fact stays in that file."""
    from omegaconf import OmegaConf

    return Path(OmegaConf.load(CONF_DIR / "config.yaml").cache_dir)


def settings_hash(settings: Mapping[str, Any], format_version: int) -> str:
    """The cache key of a build: its settings and the builder's format version."""
    return canonical_hash({"format": format_version, "settings": settings})


def ensure_built(settings: Mapping[str, Any], root: Path, format_version: int,
                 build: Callable[[Mapping[str, Any], Path, Any], None], progress: Any = None) -> Path:
    """`root/<hash>/`, running `build(settings, folder, progress)` first unless a finished build
    (one with a manifest.json) exists."""
    key = settings_hash(settings, format_version)
    final = Path(root) / key
    if (final / "manifest.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{key}.building-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        build(settings, temp, progress)
        try:
            os.replace(temp, final)
        except OSError:  # another process finished the same build first; theirs is as good
            if not (final / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
