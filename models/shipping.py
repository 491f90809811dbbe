"""Shipping a build: the organisms are trained once and committed, because training differs by
CPU (and by thread count and precision) while evaluating the same weights does not (issue 26:
every accuracy metric identical at 1 and 2 threads on one build). A shipped folder is the build
folder with its weights optionally stored in bfloat16 (half the size), the checks re-measured on
the stored weights (`manifest["stored_checks"]`: the numbers every machine gets), and
`SHA256SUMS` over every file (core/buildcache.py refuses a changed one)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.buildcache import write_digests


def store_bfloat16(model_dir: Path) -> None:
    """Rewrite every `*.safetensors` under `model_dir` with its float32 tensors as bfloat16."""
    import torch
    from safetensors.torch import load_file, save_file

    for path in sorted(Path(model_dir).glob("*.safetensors")):
        tensors = {k: (v.to(torch.bfloat16) if v.dtype == torch.float32 else v).contiguous()
                   for k, v in load_file(str(path)).items()}
        save_file(tensors, str(path), metadata={"format": "pt"})


def ship(build: Path, dest: Path, stored_checks: Callable[[Path], dict[str, Any]], bfloat16: bool) -> dict[str, Any]:
    """Copy the finished build `build` to `dest` (replacing it), store its weights in bfloat16 if
    asked, record `stored_checks(folder)` and the storage in its manifest, and write its digests.
    Returns the new manifest. Made in a sibling folder and renamed, so `dest` is never half made."""
    dest = Path(dest)
    temp = dest.parent / f".{dest.name}.shipping-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(build, temp, ignore=shutil.ignore_patterns("SHA256SUMS"))
    try:
        if bfloat16:
            store_bfloat16(temp / "model")
        manifest = json.loads((temp / "manifest.json").read_text(encoding="utf-8"))
        manifest["storage"] = "bfloat16" if bfloat16 else "float32"
        manifest["stored_checks"] = stored_checks(temp)
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        write_digests(temp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(temp, dest)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return manifest


class Shippable:
    """What `python -m models.build` needs to know of a kind of build (each organism defines one)."""

    def __init__(self, kind: str, default_settings: Callable[[], dict[str, Any]], format_version: int,
                 build: Callable[[Any, Path, Any], None], shipped_dir: Path,
                 stored_checks: Callable[[Path], dict[str, Any]], bfloat16: bool, checks_key: str) -> None:
        self.kind, self.default_settings, self.format_version = kind, default_settings, format_version
        self.build, self.shipped_dir, self.stored_checks = build, shipped_dir, stored_checks
        self.bfloat16, self.checks_key = bfloat16, checks_key

    def settings(self, seed: int) -> dict[str, Any]:
        settings = self.default_settings()
        settings["seed"] = seed
        return settings

    def shipped_folder(self, seed: int) -> Path:
        return self.shipped_dir / f"seed{seed}"
