"""Builds cached under a hash of their settings (the LM and ViT organisms), put in place atomically:
built in a temporary sibling folder and renamed, so an interrupted build never leaves a half one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.hashing import canonical_hash


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
