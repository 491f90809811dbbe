"""Builds cached under a hash of their settings, written atomically (the LM and ViT organisms)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def settings_hash(settings: Mapping[str, Any], format_version: int) -> str:
    """sha256 of the canonical JSON of the settings and the builder's format version."""
    canonical = json.dumps({"format": format_version, "settings": settings}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ensure_built(settings: Mapping[str, Any], root: Path, format_version: int,
                 build: Callable[[Mapping[str, Any], Path, Any], None], progress: Any = None) -> Path:
    """`root/<hash>/`, running `build(settings, folder, progress)` first unless a finished build
    (one with a manifest.json) exists. The build happens in a temporary sibling folder renamed
    into place at the end, so an interrupted build never leaves a half folder."""
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
