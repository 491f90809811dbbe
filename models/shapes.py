"""Models built from a published architecture with random weights: real dimensions, no download
(`model.kind: shapes`, e.g. model=olmo2_1b_shapes, olmo2_7b_shapes).

The architecture is a shipped config JSON (models/shape_configs/<name>.json: hidden size, MLP
size, layers, heads, vocabulary, rope, norms as published); the weights are drawn by the
architecture's own initialiser from a seeded generator, so the same config and seed give the same
model. There is no tokenizer and no text: the statistics stream is windows of seeded random token
ids drawn uniformly from the vocabulary, which is enough to time and size the K-FAC pipeline (the
factors of random weights on random ids say nothing about memorization). Tasks that need a
tokenizer cannot run on these models; suite=shapes has one that does not.

Memory: fp32 weights take 4 bytes per parameter (OLMo-2 1B: 1.48 B parameters, 5.9 GB; 7B: 7.30 B,
29 GB). `model.num_hidden_layers` builds fewer layers at the same width (for tests and smoke runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import ConfigError
from core.hashing import canonical_hash
from models.base import LoadedModel, ModelData, parse_dtype

CONFIG_DIR = Path(__file__).resolve().parent / "shape_configs"


def shape_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def read_shape(name: str) -> dict[str, Any]:
    """The shipped architecture `name` (or a JSON file of the same form) as a dict of transformers
    config fields, model_type included."""
    path = Path(name).expanduser() if name.endswith(".json") else CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"model.shape '{name}' is neither shipped nor a JSON file; shipped: {', '.join(shape_names())}")
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"model.shape {path}: not a readable JSON file ({e})") from None
    if not isinstance(fields, dict) or "model_type" not in fields:
        raise ConfigError(f"model.shape {path}: needs a JSON object with model_type and the config fields")
    return {k: v for k, v in fields.items() if not k.startswith("_")}


def build_config(shape: Mapping[str, Any], num_hidden_layers: int | None = None) -> Any:
    """A transformers config for the shape, optionally with fewer layers."""
    from transformers import AutoConfig

    fields = dict(shape)
    model_type = fields.pop("model_type")
    if num_hidden_layers is not None:
        if isinstance(num_hidden_layers, bool) or not isinstance(num_hidden_layers, int) or num_hidden_layers < 1:
            raise ConfigError(f"model.num_hidden_layers must be a positive integer or null, got {num_hidden_layers!r}")
        fields["num_hidden_layers"] = num_hidden_layers
    return AutoConfig.for_model(model_type, **fields)


def parameter_count(config: Any) -> int:
    """Parameters of the architecture, counted on the meta device (no memory allocated)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


class RandomTokenData(ModelData):
    """The statistics stream of a shapes model: windows of token ids drawn uniformly from the
    vocabulary by a generator seeded with `seed` (same seed, same windows)."""

    def __init__(self, vocab_size: int, seed: int) -> None:
        self.vocab_size, self.seed = vocab_size, seed

    def windows(self, seq_len: int, max_tokens: int) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(max_tokens // seq_len):
            yield torch.randint(0, self.vocab_size, (seq_len,), generator=generator)

    def statistics(self):
        from models.hf import TokenStatistics

        return TokenStatistics(self.windows)


def load(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path, progress: Any = None) -> LoadedModel:
    """`model.kind: shapes`: `model.shape` names a JSON in models/shape_configs; `model.seed` seeds
    the weights, `model.data_seed` the random token stream."""
    from transformers import AutoModelForCausalLM

    shape_name = model_cfg.get("shape")
    if not shape_name:
        raise ConfigError(f"model.kind=shapes needs model.shape=<{' | '.join(shape_names())}>")
    shape = read_shape(str(shape_name))
    config = build_config(shape, model_cfg.get("num_hidden_layers"))
    dtype = parse_dtype(model_cfg.get("dtype", "auto"), device)
    seed = int(model_cfg.get("seed", 0))
    torch.manual_seed(seed)  # the initialiser draws from the global generator
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)  # allocate and initialise in the target dtype: no fp32 copy
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    key = "shapes:" + canonical_hash({"shape": shape, "layers": config.num_hidden_layers, "seed": seed,
                                      "dtype": str(dtype)}, 16)
    name = str(model_cfg.get("name") or f"{Path(str(shape_name)).stem}_shapes")
    return LoadedModel(model, None, name, key, {}, device,
                       sources=RandomTokenData(int(config.vocab_size), int(model_cfg.get("data_seed", 0))))
