"""Load the model a run evaluates: the embedded organism, any Hugging Face causal LM (hub id or
local folder), or an image classifier for the mislabeled-images suite.

Weights load from safetensors only, and `trust_remote_code` stays off unless the config sets it:
a run never executes or unpickles code the user did not ask for.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.errors import ConfigError, ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: Any  # None for image classifiers
    name: str
    key: str  # identity of the weights, for cache keys (factor files, baselines)
    data: dict[str, Path]  # datasets the model brings (organism ground truth), by name
    device: torch.device
    kind: str = "causal_lm"  # or "image_classifier"
    stats_images: Callable[[int], Iterator[tuple[torch.Tensor, int]]] | None = None


def model_name(model_cfg: Mapping[str, Any]) -> str:
    """The name runs are filed under: `model.name`, else the path with '/' replaced."""
    return model_cfg.get("name") or _safe_name(str(model_cfg.get("path") or model_cfg.get("kind", "model")))


def pick_device(spec: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else is passed to torch.device."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device '{spec}' is not valid; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{spec}' asked for, but CUDA is not available here; use device=auto or cpu")
    return device


def parse_dtype(name: str, device: torch.device) -> torch.dtype | str:
    if name == "auto":  # bf16 where it is fast, fp32 on CPU
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ConfigError(f"model.dtype '{name}' is not valid; use auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def load_model(model_cfg: Mapping[str, Any], device: str, cache_dir: Path, progress: Any = None) -> LoadedModel:
    """Dispatch on `model_cfg['kind']`: organism, hf, vit_organism, vit_imagenet."""
    kind = model_cfg.get("kind")
    dev = pick_device(device)
    if kind == "organism":
        from harness.organism import ensure_organism

        settings = model_cfg["organism"]
        if not isinstance(settings, dict):  # an OmegaConf node when called with an unresolved config
            from omegaconf import OmegaConf

            settings = OmegaConf.to_container(settings, resolve=True)
        folder = ensure_organism(settings, Path(cache_dir), progress)
        loaded = load_hf_causal_lm(str(folder / "model"), dev, model_cfg.get("dtype", "float32"))
        data = {p.name.split(".")[0]: p for p in sorted((folder / "data").iterdir())}
        return dataclasses.replace(loaded, name=model_cfg.get("name", "organism"), key=f"organism-{folder.name}", data=data)
    if kind == "hf":
        path = model_cfg.get("path")
        if not path:
            raise ConfigError("model=hf needs model.path=<hub id or local folder>")
        loaded = load_hf_causal_lm(
            str(path), dev, model_cfg.get("dtype", "auto"), revision=model_cfg.get("revision"),
            trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
        )
        return dataclasses.replace(loaded, name=model_name(model_cfg))
    if kind in ("vit_organism", "vit_imagenet"):
        from harness import vision

        loader = vision.load_vit_organism if kind == "vit_organism" else vision.load_vit_imagenet
        model, data, stats_images = loader(model_cfg, dev, Path(cache_dir), progress)
        key = hashlib.sha256(repr(sorted(dict(model_cfg).items())).encode()).hexdigest()[:16]
        return LoadedModel(model, None, model_cfg.get("name", kind), f"{kind}-{key}", data, dev,
                           kind="image_classifier", stats_images=stats_images)
    raise ConfigError(f"model.kind '{kind}' is not valid; use organism, hf, vit_organism or vit_imagenet")


def load_hf_causal_lm(path: str, device: torch.device, dtype: str = "auto", revision: str | None = None,
                      trust_remote_code: bool = False) -> LoadedModel:
    """Load a causal LM and its tokenizer from a local folder or a hub id (safetensors only)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # our own rich progress shows the run's steps
    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1
    if looks_local and not local.is_dir():
        raise ModelLoadError(f"model folder not found: {local} (pass a save_pretrained folder or a hub id)")
    source = str(local) if looks_local else path
    if looks_local and not any(local.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in local.glob("*.bin"))) or "no weight files"
        raise ModelLoadError(f"{local}: only safetensors weights are loaded (found {found}); "
                             "re-save with save_pretrained(safe_serialization=True)")
    kwargs = dict(revision=revision, trust_remote_code=trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=parse_dtype(dtype, device), use_safetensors=True, **kwargs
        )
    except ConfigError:
        raise
    except (OSError, ValueError) as e:
        if looks_local:
            raise ModelLoadError(f"cannot load model from {local}: {_first_line(e)}") from e
        raise ModelLoadError(
            f"cannot load '{path}' from the hub ({_first_line(e)}); no network: pass a local path with model.path=..."
        ) from e
    model.to(device).eval()
    if tokenizer.pad_token_id is None:  # batched generation needs a pad id; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    commit = getattr(model.config, "_commit_hash", None) or _folder_fingerprint(local if looks_local else None)
    key = f"{_safe_name(path)}@{revision or 'main'}:{commit}"
    return LoadedModel(model, tokenizer, _safe_name(path), key, {}, device)


def _folder_fingerprint(folder: Path | None) -> str:
    """Names, sizes and mtimes of the weight files: changes whenever the weights are re-saved."""
    if folder is None:
        return "unknown"
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _safe_name(path: str) -> str:
    return path.rstrip("/").replace("/", "--").lstrip(".-~") or "model"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
