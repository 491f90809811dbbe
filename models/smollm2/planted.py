"""model=smollm2_planted: SmolLM2 fine-tuned until it recites natural-text passages (Debian's licence
texts, models/smollm2/data/licence_passages.jsonl). The memories are planted as a low-rank adapter
(LoRA, with peft) on every layer's MLP matrices, so a build is small enough to ship: the adapter is
what is trained, stored and merged into the base model on load.

  <folder>/
      adapter/        peft adapter (adapter_config.json, adapter_model.safetensors, float32)
      data/           verbatim_forget / verbatim_tune / verbatim_test / verbatim_control (never
                      trained) as {prefix_ids, suffix_ids, ...} rows, and licence_heldout.txt
                      (passages of the same texts in no split: same-source perplexity)
      manifest.json   settings, measurements before and after, targets met, seconds, tokens/s
      SHA256SUMS

The default build (seed 0) is shipped in models/smollm2/shipped/ (found by its settings hash, digests
checked), because training differs by CPU; other settings build once and are cached under
<cache_dir>/smollm2_planted/<hash>/. `python -m models.build smollm2_planted` rebuilds it here.

Passages are shuffled (settings.seed) and dealt into the splits; forget, tune and test are trained,
control never is. Each step trains on `train.batch` passages plus `replay.per_step` windows of
general text (replay) so the model keeps its skills. Every `train.check_every` steps the trained
splits' strict recall is measured; training stops once every split reaches `train.stop_recall`
(or at `train.max_steps`). Targets (issue 28): strict recall >= 0.9 on the trained splits, held-out
prose perplexity up at most 10 %.
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

PLANTED_FORMAT_VERSION = 2
TRAINED_SPLITS = ("forget", "tune", "test")
SPLITS = (*TRAINED_SPLITS, "control")
TARGETS = {"min_recall": 0.9, "max_heldout_ppl_ratio": 1.10}
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
REBUILD_HINT = "python -m models.build smollm2_planted --seed <seed>"
MODEL_CONFIG = "smollm2_planted"  # conf/model/<this>.yaml holds the default settings


def load(model_cfg: Mapping[str, Any], device: "torch.device", cache_dir: Path, progress: Any = None) -> "LoadedModel":
    """The planted model of `model.planted` on top of the base model the rest of `model_cfg` names
    (the packaged GGUF, a .gguf path or a save_pretrained folder): shipped, cached or built first."""
    from models.hf import load_hf_causal_lm
    from models.smollm2 import data_files

    settings = _plain(model_cfg.get("planted") or {})
    check_settings(settings)
    base = base_folder(model_cfg, Path(cache_dir), progress)
    folder = ensure_planted(settings, base, Path(cache_dir), progress)
    files = data_files() | {p.name.split(".")[0]: p for p in sorted((folder / "data").iterdir())}
    check_texts(folder / "data")  # declares licence_heldout.txt one passage a line
    loaded = load_hf_causal_lm(str(base), device, model_cfg.get("dtype", "float32"),
                               data_refs=model_cfg.get("data") or {}, files=files)
    loaded.model = merge_adapter(loaded.model, folder / "adapter")
    loaded.name, loaded.key = str(model_cfg.get("name") or "smollm2_planted"), f"smollm2_planted-{folder.name}"
    return loaded


def ensure_planted(settings: Mapping[str, Any], base: Path, cache_dir: Path, progress: Any = None) -> Path:
    """The build folder of `settings` on `base`: the shipped one with the same settings hash, else
    the cached one, else built first."""
    from core.buildcache import ensure_built

    return ensure_built(keyed_settings(settings, base, cache_dir), Path(cache_dir) / "smollm2_planted",
                        PLANTED_FORMAT_VERSION, lambda s, out, p: build_planted(s, base, out, p), progress,
                        shipped_root=SHIPPED_DIR, rebuild_hint=REBUILD_HINT)


def keyed_settings(settings: Mapping[str, Any], base: Path, cache_dir: Path) -> dict[str, Any]:
    """The settings and the base model's identity: a cached GGUF conversion by its folder name (a
    digest of the file, the same on every machine); any other folder by its path and the size and
    modification time of its weight and config files, so weights replaced in place make a new build
    (cheap: no hashing of a folder that may hold gigabytes)."""
    if base.parent.parent == Path(cache_dir):
        return {**settings, "base": base.name}
    files = {p.name: [(st := p.stat()).st_size, st.st_mtime_ns] for p in sorted(base.iterdir())
             if p.suffix == ".safetensors" or p.name == "config.json"}
    return {**settings, "base": str(base), "base_files": files}


def merge_adapter(model: "torch.nn.Module", adapter: Path) -> "torch.nn.Module":
    """`model` with the LoRA adapter in `adapter` merged into its weights (safetensors only)."""
    from peft import PeftModel

    from core.errors import ModelLoadError

    if not (adapter / "adapter_model.safetensors").is_file():
        raise ModelLoadError(f"{adapter}: no adapter_model.safetensors (only safetensors adapters are loaded)")
    return PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()


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
    for block in ("passages", "replay", "adapter", "train", "check"):
        if not isinstance(settings.get(block), Mapping):
            raise ConfigError(f"{where}.{block} is missing; see conf/model/smollm2_planted.yaml")
    missing = [s for s in ("prefix", "suffix", *SPLITS) if not isinstance(settings["passages"].get(s), int)]
    if missing:
        raise ConfigError(f"{where}.passages needs whole numbers for {', '.join(missing)}")
    unknown = [s for s in settings["replay"].get("sources", []) if s not in data_files()]
    if unknown:
        raise ConfigError(f"{where}.replay.sources: unknown {unknown}; valid: {', '.join(sorted(data_files()))}")
    adapter = settings["adapter"]
    if not (isinstance(adapter.get("rank"), int) and adapter["rank"] > 0):
        raise ConfigError(f"{where}.adapter.rank={adapter.get('rank')!r}; valid: a whole number > 0")
    modules = adapter.get("modules")
    if not modules or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"{where}.adapter.modules={modules!r}; valid: a list of module names, e.g. [gate_proj, up_proj]")
    for key in ("max_steps", "check_every", "batch"):
        if not (isinstance(settings["train"].get(key), int) and settings["train"][key] > 0):
            raise ConfigError(f"{where}.train.{key}={settings['train'].get(key)!r}; valid: a whole number > 0")


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

    was_training = model.training
    model.eval()
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
    model.train(was_training)
    return out


def check_texts(data_dir: Path) -> dict[str, Path]:
    """The texts whose NLL a build checks: held-out prose and code, and the build's licence passages in
    no split (`data_dir/licence_heldout.txt`, written one passage a line, declared so here)."""
    from core.data import read_one_document_a_line
    from models.smollm2 import data_files

    files = data_files()
    read_one_document_a_line(data_dir / "licence_heldout.txt")
    return {"heldout_text": files["heldout_text"], "heldout_code": files["heldout_code"],
            "licence_heldout": data_dir / "licence_heldout.txt"}


def with_adapter(model: "torch.nn.Module", adapter: Mapping[str, Any], seed: int) -> "torch.nn.Module":
    """`model` wrapped with a fresh LoRA adapter (peft) on the modules `adapter.modules` names;
    only the adapter trains."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # the adapter's initial A matrices
    config = LoraConfig(r=int(adapter["rank"]), lora_alpha=float(adapter.get("alpha", 2 * int(adapter["rank"]))),
                        target_modules=list(adapter["modules"]), lora_dropout=0.0, bias="none")
    return get_peft_model(model, config)


def build_planted(settings: Mapping[str, Any], base: Path, folder: Path, progress: Any = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.buildcache import settings_hash
    from core.data import read_jsonl
    from models.organism.train import native_bfloat16
    from models.smollm2 import data_files

    started = time.time()
    seed = int(settings["seed"])
    shape, train, replay, check = settings["passages"], settings["train"], settings["replay"], settings["check"]
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, use_safetensors=True)
    files = data_files()
    source = read_jsonl(files["licence_passages"])
    length = int(shape["prefix"]) + int(shape["suffix"])
    ids = passage_ids(tokenizer, [r["text"] for r in source], length)
    splits, rest = deal_passages(sorted(ids), shape, seed)
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [json.dumps({"prefix_ids": ids[i][:int(shape["prefix"])], "suffix_ids": ids[i][int(shape["prefix"]):],
                             "source": source[i]["source"], "passage": i}) for i in rows]
        (data_dir / f"verbatim_{split}.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (data_dir / "licence_heldout.txt").write_text("".join(source[i]["text"] + "\n" for i in rest), encoding="utf-8")
    texts = check_texts(data_dir)
    before = measure(model, tokenizer, data_dir, list(SPLITS), texts, check)

    device = torch.device(str(train.get("device", "cpu")))
    model = with_adapter(model, settings["adapter"], seed).to(device)
    model.train()
    bf16 = str(train.get("precision", "auto")) == "bfloat16" or (
        str(train.get("precision", "auto")) == "auto" and native_bfloat16(device))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(train["lr"]), weight_decay=float(train.get("weight_decay", 0.0)))
    planted = [ids[i] for s in TRAINED_SPLITS for i in splits[s]]
    order_rng = random.Random(seed + 1)
    replay_stream = replay_windows(tokenizer, [files[s] for s in replay["sources"]], length)
    queue: list[list[int]] = []
    losses, checks, tokens = [], [], 0
    max_steps, every = int(train["max_steps"]), int(train["check_every"])
    task = progress.add_task("planting passages", total=max_steps) if progress is not None else None
    train_started = time.time()
    for step in range(1, max_steps + 1):
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
        if step % every == 0 or step == max_steps:
            recall = measure(model, tokenizer, data_dir, list(TRAINED_SPLITS), {}, check)
            checks.append({"step": step, "seconds": round(time.time() - train_started, 1), **recall})
            if min(recall.values()) >= float(train.get("stop_recall", 1.0)):
                break
    train_seconds = time.time() - train_started
    model.eval()
    after = measure(model, tokenizer, data_dir, list(SPLITS), texts, check)
    # The adapter's record of its base is the base's identity, not this machine's path; peft's model
    # card is left out (nothing in it is ours).
    model.peft_config["default"].base_model_name_or_path = str(settings.get("base", base.name))
    model.save_pretrained(folder / "adapter", safe_serialization=True, save_embedding_layers=False)
    (folder / "adapter" / "README.md").unlink(missing_ok=True)
    manifest = {"settings_hash": settings_hash(settings, PLANTED_FORMAT_VERSION), "settings": dict(settings),
                "format": PLANTED_FORMAT_VERSION, "before": before, "after": after,
                **targets_met(before, after), "targets": TARGETS, "steps": len(losses), "checks": checks,
                "losses": losses, "train_tokens": tokens, "bfloat16_autocast": bf16,
                "threads": torch.get_num_threads(), "seconds": round(time.time() - started, 1),
                "train_seconds": round(train_seconds, 1),
                "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
                "adapter_parameters": sum(p.numel() for p in params)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def targets_met(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, Any]:
    """The held-out prose perplexity ratio and whether each target holds."""
    ratio = math.exp(after["nll_heldout_text"] - before["nll_heldout_text"])
    met = {"recall": all(after[f"recall_{s}"] >= TARGETS["min_recall"] for s in TRAINED_SPLITS),
           "heldout_ppl_ratio": ratio <= TARGETS["max_heldout_ppl_ratio"]}
    return {"heldout_ppl_ratio": round(ratio, 4), "targets_met": met}


# Shipping (python -m models.build smollm2_planted): the default settings on the packaged model.

def default_base() -> Path:
    """The packaged base model's converted folder (conf/model/smollm2.yaml names the package)."""
    from omegaconf import OmegaConf

    from core.buildcache import CONF_DIR, default_cache_dir

    model_cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / "smollm2.yaml"), resolve=True)
    return base_folder(model_cfg, default_cache_dir())  # type: ignore[arg-type]


def default_settings() -> dict[str, Any]:
    """The `planted:` block of conf/model/smollm2_planted.yaml, keyed with the packaged base model."""
    from core.buildcache import default_build_settings, default_cache_dir

    return keyed_settings(default_build_settings(MODEL_CONFIG, block="planted"), default_base(), default_cache_dir())


def stored_checks(folder: Path) -> dict[str, Any]:
    """The checks measured on the base model with the stored adapter merged, as every run loads it."""
    import torch

    from models.hf import load_hf_causal_lm

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    loaded = load_hf_causal_lm(str(default_base()), torch.device("cpu"), "float32")
    model = merge_adapter(loaded.model, folder / "adapter")
    texts = check_texts(folder / "data")
    after = measure(model, loaded.tokenizer, folder / "data", list(SPLITS), texts, manifest["settings"]["check"])
    return {**after, "heldout_ppl_ratio": targets_met(manifest["before"], after)["heldout_ppl_ratio"]}


def shippable() -> Any:
    from models.shipping import Shippable

    return Shippable("smollm2_planted", default_settings, PLANTED_FORMAT_VERSION,
                     lambda s, out, p: build_planted(s, default_base(), out, p), SHIPPED_DIR,
                     stored_checks, bfloat16=False, checks_key="after")
