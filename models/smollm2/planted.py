"""model=smollm2_planted: SmolLM2 fine-tuned until it recites natural-text passages (Debian's licence
texts, models/smollm2/data/licence_passages.jsonl), built once and cached under a hash of its settings:

  <cache_dir>/smollm2_planted/<hash>/
      model/          save_pretrained model + tokenizer (safetensors, float32)
      data/           verbatim_forget / verbatim_validation (the tune split) / verbatim_test /
                      verbatim_control (never trained) as {prefix_ids, suffix_ids, ...} rows, and
                      licence_heldout.txt (passages of the same texts in no split: same-source NLL)
      manifest.json   settings, measurements before and after, targets met, seconds, tokens/s

Passages are shuffled (settings.seed) and dealt into the splits; forget, validation and test are
trained, control never is. Each step trains on `train.batch` passages plus `replay.per_step` windows
of general text (replay) so the model keeps its skills; only the parameters `train.params` names
move (`mlp`: every layer's MLP, as the first probe in shared/TOOLCHAIN.md). Targets (the issue):
strict recall >= 0.9 on the trained splits, held-out prose perplexity up at most 10 %.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from models.base import LoadedModel

PLANTED_FORMAT_VERSION = 1
TRAINED_SPLITS = ("forget", "validation", "test")
SPLITS = (*TRAINED_SPLITS, "control")
TARGETS = {"min_recall": 0.9, "max_heldout_ppl_ratio": 1.10}


def load(model_cfg: Mapping[str, Any], device: "torch.device", cache_dir: Path, progress: Any = None) -> "LoadedModel":
    """Build (or reuse) the planted model of `model.planted` on top of the base model the rest of
    `model_cfg` names (the packaged GGUF, a .gguf path or a save_pretrained folder)."""
    from core.buildcache import ensure_built
    from core.data import read_one_document_a_line
    from models.hf import load_hf_causal_lm
    from models.smollm2 import data_files

    settings = _plain(model_cfg.get("planted") or {})
    check_settings(settings)
    base = base_folder(model_cfg, Path(cache_dir), progress)
    keyed = {**settings, "base": base.name if base.parent.parent == Path(cache_dir) else str(base)}
    folder = ensure_built(keyed, Path(cache_dir) / "smollm2_planted", PLANTED_FORMAT_VERSION,
                          lambda s, out, p: build_planted(s, base, out, p), progress)
    files = data_files() | {p.name.split(".")[0]: p for p in sorted((folder / "data").iterdir())}
    read_one_document_a_line(folder / "data" / "licence_heldout.txt")  # written one passage a line
    loaded = load_hf_causal_lm(str(folder / "model"), device, model_cfg.get("dtype", "float32"),
                               data_refs=model_cfg.get("data") or {}, files=files)
    loaded.name, loaded.key = str(model_cfg.get("name") or "smollm2_planted"), f"smollm2_planted-{folder.name}"
    return loaded


def _plain(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        return node
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def check_settings(settings: Mapping[str, Any]) -> None:
    """One line for a bad `model.planted` before anything slow runs."""
    from core.errors import ConfigError
    from models.smollm2 import data_files

    where = "model.planted"
    for block in ("passages", "replay", "train", "check"):
        if not isinstance(settings.get(block), Mapping):
            raise ConfigError(f"{where}.{block} is missing; see conf/model/smollm2_planted.yaml")
    missing = [s for s in ("prefix", "suffix", *SPLITS) if not isinstance(settings["passages"].get(s), int)]
    if missing:
        raise ConfigError(f"{where}.passages needs whole numbers for {', '.join(missing)}")
    unknown = [s for s in settings["replay"].get("sources", []) if s not in data_files()]
    if unknown:
        raise ConfigError(f"{where}.replay.sources: unknown {unknown}; valid: {', '.join(sorted(data_files()))}")
    if str(settings["train"].get("params", "mlp")) not in ("mlp", "all"):
        raise ConfigError(f"{where}.train.params={settings['train']['params']!r}; valid: mlp, all")


def base_folder(model_cfg: Mapping[str, Any], cache_dir: Path, progress: Any = None) -> Path:
    """The base model's safetensors folder: the cached conversion of its GGUF file, or `path`."""
    from core.errors import ConfigError
    from models.gguf import ensure_converted, gguf_source

    gguf = gguf_source(model_cfg)
    if gguf is not None:
        return ensure_converted(gguf, cache_dir, progress)
    if not model_cfg.get("path") or not Path(str(model_cfg["path"])).is_dir():
        raise ConfigError("model=smollm2_planted needs its base model: model.package + model.gguf_file, "
                          "or model.path=<.gguf file or save_pretrained folder>")
    return Path(str(model_cfg["path"]))


def deal_passages(eligible: list[int], counts: Mapping[str, int], seed: int) -> tuple[dict[str, list[int]], list[int]]:
    """Passage indices per split (the eligible ones shuffled with `seed`, dealt in SPLITS order) and
    the unused rest."""
    need = sum(int(counts[s]) for s in SPLITS)
    if need > len(eligible):
        from core.errors import ConfigError

        raise ConfigError(f"model.planted.passages asks for {need} passages; the source has {len(eligible)} "
                          "long enough for prefix + suffix")
    order = list(eligible)
    random.Random(seed).shuffle(order)
    splits, start = {}, 0
    for split in SPLITS:
        splits[split] = sorted(order[start:start + int(counts[split])])
        start += int(counts[split])
    return splits, sorted(order[start:])


def passage_ids(tokenizer: Any, texts: list[str], length: int) -> dict[int, list[int]]:
    """The first `length` token ids of each passage that has that many, by passage index."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return {i: r[:length] for i, r in enumerate(rows) if len(r) >= length}


def replay_windows(tokenizer: Any, sources: list[Path], seq_len: int) -> Iterator["torch.Tensor"]:
    """Windows of general text, the sources interleaved, cycled for ever."""
    from core.data import iter_texts, token_windows

    while True:
        streams = [token_windows(iter_texts(str(s), {}), tokenizer, seq_len, 10**9) for s in sources]
        done = False
        while not done:
            for stream in streams:
                window = next(stream, None)
                if window is None:
                    done = True
                    break
                yield window


def measure(model: "torch.nn.Module", tokenizer: Any, data_dir: Path, splits: list[str],
            texts: Mapping[str, Path], check: Mapping[str, Any]) -> dict[str, float]:
    """Strict recall of each split's rows and mean NLL of each text (check.seq_len windows,
    check.max_tokens tokens)."""
    import tempfile

    import torch

    from tasks.base import TaskContext
    from tasks.coherence import Perplexity
    from tasks.verbatim import VerbatimRecall

    ctx = TaskContext(device=next(model.parameters()).device, seed=0, batch_size=int(check.get("batch_size", 16)),
                      role="baseline", artifacts_dir=Path(tempfile.gettempdir()))
    out: dict[str, float] = {}
    with torch.no_grad():
        for split in splits:
            result = VerbatimRecall(data=str(data_dir / f"verbatim_{split}.jsonl")).evaluate(model, tokenizer, ctx)
            out[f"recall_{split}"] = round(result.metrics["strict"], 4)
        for name, path in texts.items():
            task = Perplexity(data=str(path), seq_len=int(check["seq_len"]), max_tokens=int(check["max_tokens"]))
            out[f"nll_{name}"] = round(task.evaluate(model, tokenizer, ctx).metrics["mean_nll"], 4)
    return out


def trainable(model: "torch.nn.Module", which: str) -> list["torch.nn.Parameter"]:
    """The parameters that train ('mlp': names with '.mlp.'; 'all'); the rest are frozen."""
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(which == "all" or ".mlp." in name)
        if p.requires_grad:
            params.append(p)
    return params


def build_planted(settings: Mapping[str, Any], base: Path, folder: Path, progress: Any = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.data import read_jsonl, read_one_document_a_line
    from models.organism.train import native_bfloat16
    from models.smollm2 import data_files

    started = time.time()
    torch.manual_seed(int(settings["seed"]))
    shape, train, replay, check = settings["passages"], settings["train"], settings["replay"], settings["check"]
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, use_safetensors=True)
    files = data_files()
    source = read_jsonl(files["licence_passages"])
    length = int(shape["prefix"]) + int(shape["suffix"])
    ids = passage_ids(tokenizer, [r["text"] for r in source], length)
    splits, rest = deal_passages(sorted(ids), shape, int(settings["seed"]))
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    read_one_document_a_line(data_dir / "licence_heldout.txt")  # written below, one passage a line
    for split, rows in splits.items():
        lines = [json.dumps({"prefix_ids": ids[i][:int(shape["prefix"])], "suffix_ids": ids[i][int(shape["prefix"]):],
                             "source": source[i]["source"], "passage": i}) for i in rows]
        (data_dir / f"verbatim_{split}.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (data_dir / "licence_heldout.txt").write_text("".join(source[i]["text"] + "\n" for i in rest), encoding="utf-8")
    texts = {"heldout_text": files["heldout_text"], "heldout_code": files["heldout_code"],
             "licence_heldout": data_dir / "licence_heldout.txt"}
    before = measure(model, tokenizer, data_dir, list(SPLITS), texts, check)

    device = torch.device(str(train.get("device", "cpu")))
    model.to(device).train()
    bf16 = str(train.get("precision", "auto")) == "bfloat16" or (
        str(train.get("precision", "auto")) == "auto" and native_bfloat16(device))
    params = trainable(model, str(train.get("params", "mlp")))
    optimizer = torch.optim.AdamW(params, lr=float(train["lr"]), weight_decay=float(train.get("weight_decay", 0.0)))
    planted = [ids[i] for s in TRAINED_SPLITS for i in splits[s]]
    order_rng = random.Random(int(settings["seed"]) + 1)
    replay_stream = replay_windows(tokenizer, [files[s] for s in replay["sources"]], length)
    queue: list[list[int]] = []
    losses, tokens = [], 0
    steps = int(train["steps"])
    task = progress.add_task("planting passages", total=steps) if progress is not None else None
    train_started = time.time()
    for step in range(steps):
        rows = []
        while len(rows) < int(train["batch"]):
            if not queue:
                queue = planted[:]
                order_rng.shuffle(queue)
            rows.append(queue.pop())
        batch = torch.tensor(rows, dtype=torch.long)
        if int(replay["per_step"]):
            batch = torch.cat([batch, torch.stack([next(replay_stream) for _ in range(int(replay["per_step"]))])])
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), batch[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float(train.get("grad_clip", 1.0)))
        optimizer.step()
        tokens += batch.numel()
        losses.append(round(loss.item(), 4))
        if progress is not None:
            progress.update(task, advance=1)
    train_seconds = time.time() - train_started
    model.eval()
    after = measure(model, tokenizer, data_dir, list(SPLITS), texts, check)
    ratio = math.exp(after["nll_heldout_text"] - before["nll_heldout_text"])
    met = {"recall": all(after[f"recall_{s}"] >= TARGETS["min_recall"] for s in TRAINED_SPLITS),
           "heldout_ppl_ratio": ratio <= TARGETS["max_heldout_ppl_ratio"]}
    model.save_pretrained(folder / "model", safe_serialization=True)
    tokenizer.save_pretrained(folder / "model")
    manifest = {"settings": dict(settings), "format": PLANTED_FORMAT_VERSION, "base": str(base),
                "before": before, "after": after, "heldout_ppl_ratio": round(ratio, 4), "targets": TARGETS,
                "targets_met": met, "losses": losses, "train_tokens": tokens, "bfloat16_autocast": bf16,
                "threads": torch.get_num_threads(), "seconds": round(time.time() - started, 1),
                "train_seconds": round(train_seconds, 1),
                "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
