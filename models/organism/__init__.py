"""The embedded model organism: a small OLMo-2 model the project trains on a synthetic corpus with
planted memorization and known ground truth, cached under a hash of its settings.

`ensure_organism(settings, cache_root)` returns the organism's folder:
  model/          save_pretrained model + tokenizer (safetensors)
  data/           ground truth (docs/DESIGN.md, "The organism's data")
  manifest.json   settings, hash, token shares, learning curve, final checks, seconds, versions
  SHA256SUMS      the digest of every file (checked before use)
The default settings of seeds 0-2 are *shipped*: trained once and committed under `shipped/`
(bfloat16 weights), because training differs by CPU and every machine must score the same
organism. Other settings are built here and cached under `<cache_root>/organism/<hash>/`.
`python -m models.build organism --seed N` rebuilds a shipped organism and compares it with its manifest.
The corpus and its ground truth come from the registered data families (families/, corpus.py).
Design, measured numbers and how to add a family: docs/organism.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from models.base import LoadedModel
    from models.organism.corpus import Corpus

# Bump when the generator or training changes in a way the settings do not capture.
ORGANISM_FORMAT_VERSION = 1
# The committed builds (one folder each, found by the settings hash in its manifest).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
REBUILD_HINT = "python -m models.build organism --seed <seed>"


def load(model_cfg: Mapping[str, Any], device: "torch.device", cache_dir: Path, progress: Any = None) -> "LoadedModel":
    """`model=organism`: build (or reuse) the organism of `model.organism` and load it with the
    files it brings (`model:<name>` data references)."""
    from core.data import read_one_document_a_line
    from models.hf import load_hf_causal_lm

    settings = model_cfg["organism"]
    if not isinstance(settings, dict):  # an OmegaConf node when called with an unresolved config
        from omegaconf import OmegaConf

        settings = OmegaConf.to_container(settings, resolve=True)
    folder = ensure_organism(settings, Path(cache_dir), progress)
    files = {p.name.split(".")[0]: p for p in sorted((folder / "data").iterdir())}
    read_one_document_a_line(*files.values())  # its side texts are written one document a line
    loaded = load_hf_causal_lm(str(folder / "model"), device, model_cfg.get("dtype", "float32"),
                               data_refs=model_cfg.get("data") or {}, files=files)
    loaded.name, loaded.key = model_cfg.get("name", "organism"), f"organism-{settings_hash(settings)}"
    return loaded


def default_settings() -> dict[str, Any]:
    """The `organism:` mapping of conf/model/organism.yaml."""
    from core.buildcache import default_build_settings

    return default_build_settings("organism")


def settings_hash(settings: Mapping[str, Any]) -> str:
    from core.buildcache import settings_hash as hash_settings

    return hash_settings(settings, ORGANISM_FORMAT_VERSION)


def ensure_organism(settings: Mapping[str, Any], cache_root: Path, progress: Any = None) -> Path:
    """The folder of the organism built with `settings`: the shipped build with the same settings
    hash, else a cached one, else built first. The build happens in a temporary sibling folder
    that is renamed into place at the end, so an interrupted build never leaves a half organism."""
    from core.buildcache import ensure_built

    return ensure_built(settings, Path(cache_root) / "organism", ORGANISM_FORMAT_VERSION, build_organism, progress,
                        shipped_root=SHIPPED_DIR, rebuild_hint=REBUILD_HINT)


def write_data_files(files: Mapping[str, Any], data_dir: Path) -> None:
    """JSONL for rows (dicts), plain text (one document a line) for side texts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        if rows and isinstance(rows[0], dict):
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            (data_dir / f"{name}.jsonl").write_text(text, encoding="utf-8")
        else:
            (data_dir / f"{name}.txt").write_text("".join(f"{line}\n" for line in rows), encoding="utf-8")


def prepare_data(settings: Mapping[str, Any], data_dir: Path) -> tuple["Corpus", Any]:
    """Generate the corpus, build the tokenizer on every word in it, let each family complete its
    files (planted passages get their token ids) and write them to `data_dir`."""
    from models.organism.corpus import generate_corpus
    from models.organism.families import families
    from models.organism.tokenizer import build_tokenizer

    corpus = generate_corpus(settings)
    texts = corpus.train + [str(v) for rows in corpus.files.values() for r in rows
                            for v in (r.values() if isinstance(r, dict) else [r])]
    tokenizer = build_tokenizer(texts, int(settings["model"]["max_positions"]))
    for family in families().values():
        family.prepare_files(corpus.files, tokenizer)
    write_data_files(corpus.files, data_dir)
    return corpus, tokenizer


def training_documents(corpus: "Corpus", tokenizer: Any) -> list[list[int]]:
    """The corpus's training documents as the organism trains on them: token ids, each ended by EOS."""
    return [ids + [tokenizer.eos_token_id] for ids in tokenizer(corpus.train, add_special_tokens=False)["input_ids"]]


def build_organism(settings: Mapping[str, Any], folder: Path, progress: Any = None) -> None:
    import torch
    import transformers

    from models.organism.measure import check_names, measure
    from models.organism.corpus import token_shares
    from models.organism.train import build_model, schedule_batches, train_model, training_precision

    checks = settings["train"].get("quick_check") or {}
    check_names(checks.get("names"))
    precision = training_precision(settings["train"])  # a bad value is refused before the corpus is made
    start = time.perf_counter()
    data_dir = folder / "data"
    corpus, tokenizer = prepare_data(settings, data_dir)

    torch.manual_seed(int(settings["seed"]))
    special = {"pad": tokenizer.pad_token_id, "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id}
    model = build_model(settings, len(tokenizer), special)
    docs = training_documents(corpus, tokenizer)
    batches = schedule_batches(docs, corpus.bursts, int(settings["train"]["seq_len"]),
                               int(settings["train"]["batch_size"]), int(settings["seed"]))

    def quick_check(m: torch.nn.Module) -> dict[str, float]:
        return measure(m, tokenizer, data_dir, limit=int(checks.get("limit", 32)), names=checks.get("names"))

    curve = train_model(model, batches, settings, tokenizer.pad_token_id, quick_check if checks else None, progress,
                        precision)
    model.save_pretrained(folder / "model", safe_serialization=True)
    tokenizer.save_pretrained(folder / "model")
    manifest = {
        "format_version": ORGANISM_FORMAT_VERSION,
        "settings_hash": settings_hash(settings),
        "settings": settings,
        "documents": len(corpus.train),
        "train_tokens": sum(len(d) for d in docs),
        "token_shares": token_shares(corpus),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "curve": curve,
        "final_checks": measure(model, tokenizer, data_dir),
        "train_seconds": curve[-1]["seconds"],
        "build_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def stored_checks(folder: Path) -> dict[str, float]:
    """The check targets measured on the weights as stored in `folder` (models/shipping.py)."""
    import torch

    from models.hf import load_hf_causal_lm
    from models.organism.measure import measure

    loaded = load_hf_causal_lm(str(folder / "model"), torch.device("cpu"), "float32")
    return measure(loaded.model, loaded.tokenizer, folder / "data")


def shippable() -> Any:
    from models.shipping import Shippable

    return Shippable("organism", default_settings, ORGANISM_FORMAT_VERSION, build_organism, SHIPPED_DIR,
                     stored_checks, bfloat16=True, checks_key="final_checks")
