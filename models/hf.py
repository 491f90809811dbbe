"""Hugging Face causal language models (OLMo-2, Llama, Qwen, GPT-2, ... by hub id or local folder),
and what a causal LM brings for methods: a statistics stream of general text, and forget / retain
sets, read from the files `model.data` names.

Weights load from safetensors only, and `trust_remote_code` stays off unless the config sets it:
a run never executes or unpickles code the user did not ask for.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from core.data import check_texts, example_ids, iter_texts, read_jsonl_lines, resolve_data_ref, token_windows
from core.errors import ConfigError, DataError, ModelLoadError
from core.hashing import bytes_hash
from models.base import LoadedModel, ModelData, StatisticsSource, batched, parse_dtype, sample_labels

Windows = Callable[[int, int], Iterator[torch.Tensor]]  # (seq_len, max_tokens) -> LongTensor[seq_len]s


class TokenStatistics(StatisticsSource):
    """Windows of token ids; the loss is mean next-token cross-entropy over every position but the
    last (it has no next token), and those positions are the ones that count."""

    unit = "tokens"

    def __init__(self, windows: Windows | None = None) -> None:
        self.windows = windows

    def batches(self, budget: int, batch_size: int, seq_len: int) -> Iterator[torch.Tensor]:
        if self.windows is None:
            raise DataError("no statistics text: set model.data.stats=<path or model:name>")
        return batched(self.windows(seq_len, budget), batch_size, torch.stack)

    def available(self, budget: int, seq_len: int) -> int:
        if self.windows is None:
            raise DataError("no statistics text: set model.data.stats=<path or model:name>")
        return sum(window.numel() for window in self.windows(seq_len, budget))

    def loss(self, model: torch.nn.Module, batch: torch.Tensor, labels: str,
             generator: torch.Generator) -> tuple[torch.Tensor, int]:
        ids = batch.to(next(model.parameters()).device)
        logits = model(input_ids=ids).logits
        n = ids.shape[0] * (ids.shape[1] - 1)
        total = logits.new_zeros((), dtype=torch.float32)
        # Sequence by sequence: logits[b, :-1] is a view, so no (B, T-1, V) copy is made; the
        # cross-entropy runs in fp32 (log_softmax's dtype argument) without a separate fp32 copy
        # of the logits; sampled labels are drawn row by row from an fp32 softmax.
        for b in range(ids.shape[0]):
            rows = logits[b, :-1]
            targets = sample_labels(rows, generator) if labels == "sampled" else ids[b, 1:]
            log_probs = torch.log_softmax(rows, dim=-1, dtype=torch.float32)
            total = total + torch.nn.functional.nll_loss(log_probs, targets, reduction="sum")
        return total / n, n

    def positions(self, activations: torch.Tensor) -> torch.Tensor:
        return activations[:, :-1].reshape(-1, activations.shape[-1])

    def count(self, batch: torch.Tensor) -> int:
        return batch.numel()

    def fingerprint(self, seq_len: int) -> str | None:
        first = next(iter(self.batches(seq_len, 1, seq_len)), None)
        return None if first is None else bytes_hash(first.numpy().tobytes(), 16)


@dataclasses.dataclass
class CausalLMData(ModelData):
    """The data sets `model.data` names (`stats`, `forget`, `retain`: a path or `model:<name>`),
    read when a method asks for them."""

    refs: Mapping[str, Any]
    files: Mapping[str, Path]
    tokenizer: Any
    # How the user gives a data set that is missing ({kind}: stats, forget, retain).
    missing_hint: ClassVar[str] = "set model.data.{kind}=<path or model:name>"
    data_key: ClassVar[str] = "model.data.{kind}"  # how messages name a data set
    _read: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)  # forget / retain, read once

    def _ref(self, kind: str) -> str:
        ref = self.refs.get(kind)
        if not ref:
            raise ConfigError(f"this method needs {kind} data: {self.missing_hint.format(kind=kind)}")
        return ref

    def statistics(self) -> TokenStatistics:
        def windows(seq_len: int, max_tokens: int) -> Iterator[torch.Tensor]:
            return token_windows(iter_texts(self._ref("stats"), self.files), self.tokenizer, seq_len, max_tokens)

        return TokenStatistics(windows)

    def forget(self) -> list[list[int]]:
        if "forget" not in self._read:
            path = resolve_data_ref(self._ref("forget"), self.files)
            rows = [example_ids(r, "prefix", self.tokenizer, path, n)
                    + example_ids(r, "suffix", self.tokenizer, path, n) for n, r in read_jsonl_lines(path)]
            if not rows:
                raise DataError(f"{self._key('forget')}: {path} holds no examples (an empty forget set: the "
                                "method would run 0 steps); pass a verbatim JSONL file with at least one "
                                "{prefix_ids, suffix_ids} or {prefix_text, suffix_text} row")
            self._read["forget"] = rows
        return [list(r) for r in self._read["forget"]]  # a method may change its copy

    def retain(self) -> list[list[int]]:
        if "retain" not in self._read:
            seq_len = int(self.refs.get("retain_seq_len", 128))
            windows = token_windows(iter_texts(self._ref("retain"), self.files), self.tokenizer,
                                    seq_len, int(self.refs.get("retain_max_tokens", 65536)))
            rows = [w.tolist() for w in windows]
            if not rows:
                raise DataError(f"{self._key('retain')}: {self._ref('retain')} holds fewer than {seq_len} tokens "
                                f"of text (one retain window of retain_seq_len={seq_len}); pass a longer .txt "
                                "(documents separated by blank lines) or .jsonl file")
            self._read["retain"] = rows
        return [list(r) for r in self._read["retain"]]

    def check(self, kinds: Iterable[str]) -> None:
        """The statistics text is read through (not tokenized: a stream may be long) and must hold
        text; the forget and retain sets are read (and kept for the method)."""
        for kind in kinds:
            if kind == "stats" and not isinstance(self.refs.get("stats"), (list, tuple)):
                check_texts(self._ref("stats"), self.files, self._key("stats"))
            elif kind in ("forget", "retain"):
                getattr(self, kind)()

    def _key(self, kind: str) -> str:
        """How the user names the data set `kind` in messages (model.data.<kind> on the command line)."""
        return self.data_key.format(kind=kind)


def load(model_cfg: Mapping[str, Any], device: torch.device, cache_dir: Path, progress: Any = None,
         files: Mapping[str, Path] | None = None) -> LoadedModel:
    """`model=hf`: `model.path` is a hub id, a local save_pretrained folder or a GGUF file (also
    `gguf_file=<name>` in `path`, or in an installed `package`; models/gguf.py converts it once).
    `files`: data files the model brings (`model:<name>` references), for loaders built on this one."""
    from models.gguf import ensure_converted, gguf_name, gguf_source

    gguf = gguf_source(model_cfg)
    if gguf is not None:
        folder = ensure_converted(gguf, cache_dir, progress)
        loaded = load_hf_causal_lm(str(folder), device, model_cfg.get("dtype", "auto"),
                                   data_refs=model_cfg.get("data") or {}, files=files)
        loaded.name = str(model_cfg.get("name") or safe_name(gguf_name(model_cfg) or gguf.stem))
        loaded.key = f"gguf-{folder.name}"
        return loaded
    path = model_cfg.get("path")
    if not path:
        raise ConfigError("model=hf needs model.path=<hub id, local folder or .gguf file>")
    trust = model_cfg.get("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise ConfigError(f"model.trust_remote_code must be true or false, got {trust!r}")
    return load_hf_causal_lm(str(path), device, model_cfg.get("dtype", "auto"), revision=model_cfg.get("revision"),
                             trust_remote_code=trust,
                             data_refs=model_cfg.get("data") or {}, files=files)


def load_hf_causal_lm(path: str, device: torch.device, dtype: str = "auto", revision: str | None = None,
                      trust_remote_code: bool = False, data_refs: Mapping[str, Any] | None = None,
                      files: Mapping[str, Path] | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer from a local folder or a hub id (safetensors only)."""
    import transformers
    from safetensors import SafetensorError
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
    except SafetensorError as e:  # truncated or corrupt weight file
        raise ModelLoadError(f"cannot read the weights in {source}: the safetensors file is truncated or "
                             f"corrupt ({_first_line(e)}); re-save or re-download it") from e
    except (OSError, ValueError) as e:
        if looks_local:
            raise ModelLoadError(f"cannot load model from {local}: {_first_line(e)}") from e
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
        hint = " (the hub is off by default: hub=true allows downloads)" if offline else ""
        raise ModelLoadError(
            f"cannot load '{path}' from the hub ({_first_line(e)[:160]}){hint}; no network: pass a local "
            "path with model.path=..."
        ) from e
    model.to(device).eval()
    if tokenizer.pad_token_id is None:  # batched generation needs a pad id; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    commit = getattr(model.config, "_commit_hash", None) or _folder_fingerprint(local if looks_local else None)
    key = f"{safe_name(path)}@{revision or 'main'}:{commit}"
    files = dict(files or {})
    return LoadedModel(model, tokenizer, safe_name(path), key, files, device,
                       sources=CausalLMData(dict(data_refs or {}), files, tokenizer))


def _folder_fingerprint(folder: Path | None) -> str:
    """Names, sizes and mtimes of the weight files: changes whenever the weights are re-saved."""
    if folder is None:
        return "unknown"
    return bytes_hash("".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                              for f in sorted(folder.glob("*.safetensors"))).encode(), 16)


def safe_name(path: str) -> str:
    return path.rstrip("/").replace("/", "--").lstrip(".-~") or "model"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
