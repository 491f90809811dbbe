"""Mine memorized sequences from a text corpus: `python -m studies.mine model=... corpus=...`.

Slides windows of `prefix_len + suffix_len` tokens (64 + 48 as in the paper) with `stride` over
each document of the corpus (a .txt / .jsonl file or folder, a `model:` file, or `hf:<dataset>`),
and keeps a window when the model's teacher-forced argmax reproduces ALL its suffix tokens.
Windows are deduplicated on their suffix (overlapping windows of one memorized passage that share a
suffix count once), shuffled with `seed`, and split into `verbatim_forget.jsonl` (the share
`forget_fraction`, for methods that need memorized examples) and `verbatim_validation.jsonl`, in
the format the verbatim task reads: `{"id", "prefix_ids", "suffix_ids", "prefix_text", "suffix_text"}`.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from core.buildcache import CONF_DIR
from core.errors import ConfigError, DataError, HarnessError
from core.io import check_writable_dir



def document_windows(texts: Iterable[str], tokenizer: Any, length: int, stride: int,
                     max_windows: int | None = None, counts: dict[str, int] | None = None) -> Iterator[list[int]]:
    """Token windows of `length` starting every `stride` tokens within each document. `counts`, if
    given, receives counts ('windows', 'longest' document in tokens) for messages about why
    nothing was found."""
    produced = 0
    counts = {} if counts is None else counts
    counts.setdefault("windows", 0)
    counts.setdefault("longest", 0)
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        counts["longest"] = max(counts["longest"], len(ids))
        for start in range(0, len(ids) - length + 1, stride):
            if max_windows is not None and produced >= max_windows:
                return
            yield ids[start : start + length]
            produced += 1
            counts["windows"] += 1


@torch.no_grad()
def suffix_fully_predicted(model: torch.nn.Module, windows: list[list[int]], prefix_len: int,
                           device: torch.device | str) -> list[bool]:
    """For each window (all the same length), whether the teacher-forced argmax at every suffix
    position equals the next token."""
    batch = torch.tensor(windows, dtype=torch.long, device=device)
    logits = model(input_ids=batch[:, :-1]).logits
    predicted = logits[:, prefix_len - 1 :].argmax(-1)
    return (predicted == batch[:, prefix_len:]).all(dim=1).tolist()


def mine(model: torch.nn.Module, tokenizer: Any, texts: Iterable[str], prefix_len: int = 64,
         suffix_len: int = 48, stride: int = 16, batch_size: int = 32, device: torch.device | str = "cpu",
         max_windows: int | None = None, counts: dict[str, int] | None = None) -> list[list[int]]:
    """Memorized windows (prefix + suffix ids), deduplicated on the suffix, in corpus order."""
    model.eval()
    found: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    batch: list[list[int]] = []

    def flush() -> None:
        for window, memorized in zip(batch, suffix_fully_predicted(model, batch, prefix_len, device)):
            suffix = tuple(window[prefix_len:])
            if memorized and suffix not in seen:
                seen.add(suffix)
                found.append(window)
        batch.clear()

    for window in document_windows(texts, tokenizer, prefix_len + suffix_len, stride, max_windows, counts):
        batch.append(window)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return found


def split_rows(windows: list[list[int]], tokenizer: Any, prefix_len: int, forget_fraction: float,
               seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded shuffle, then (forget, validation) rows in the verbatim task's format."""
    order = list(range(len(windows)))
    random.Random(seed).shuffle(order)
    rows = []
    for i in order:
        prefix, suffix = windows[i][:prefix_len], windows[i][prefix_len:]
        rows.append({"id": f"mined-{i}", "prefix_ids": prefix, "suffix_ids": suffix,
                     "prefix_text": tokenizer.decode(prefix), "suffix_text": tokenizer.decode(suffix)})
    cut = round(forget_fraction * len(rows))
    return rows[:cut], rows[cut:]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def run_mining(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Load the model, mine the corpus, write the two JSONL files; returns a summary."""
    from omegaconf import OmegaConf

    from core.data import iter_texts
    from models import load_model
    from harness.config import resolve_config

    config = resolve_config(cfg) if isinstance(cfg, DictConfig) else OmegaConf.to_container(OmegaConf.create(cfg))
    for key in ("prefix_len", "suffix_len", "stride", "batch_size"):
        if int(config[key]) < 1:
            raise ConfigError(f"mine: {key} must be >= 1, got {config[key]}")
    if not 0 <= float(config["forget_fraction"]) <= 1:
        raise ConfigError(f"mine: forget_fraction must be in [0, 1], got {config['forget_fraction']}")
    out = check_writable_dir(Path(config["out_dir"]), "out_dir")  # before the model and the corpus
    loaded = load_model(config["model"], config["device"], Path(config["cache_dir"]))
    seen = {"documents": 0}

    def counted(texts: Iterable[str]) -> Iterator[str]:
        for text in texts:
            seen["documents"] += 1
            yield text

    texts = counted(iter_texts(str(config["corpus"]), loaded.data, config["text_field"], config["split"]))
    windows = mine(loaded.model, loaded.tokenizer, texts, config["prefix_len"], config["suffix_len"],
                   config["stride"], config["batch_size"], loaded.device, config["max_windows"], seen)
    length = config["prefix_len"] + config["suffix_len"]
    if seen["documents"] == 0:
        raise DataError(f"mine: the corpus {config['corpus']} is empty (no documents); pass a corpus with text")
    if seen["windows"] == 0:
        raise DataError(f"mine: no document of {config['corpus']} is {length} tokens long (prefix_len + "
                        f"suffix_len); the longest has {seen['longest']}: lower prefix_len/suffix_len")
    if not windows:
        raise DataError(f"mine: none of the {seen['windows']} windows of {config['corpus']} has all "
                        f"{config['suffix_len']} suffix tokens predicted; nothing memorized at this length "
                        "(try a smaller stride or a shorter suffix_len)")
    forget, validation = split_rows(windows, loaded.tokenizer, config["prefix_len"],
                                    config["forget_fraction"], config["seed"])
    write_jsonl(out / "verbatim_forget.jsonl", forget)
    write_jsonl(out / "verbatim_validation.jsonl", validation)
    return {"found": len(windows), "forget": len(forget), "validation": len(validation), "out_dir": str(out)}


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="mine")
def _hydra_main(cfg: DictConfig) -> None:
    from harness.app import offline_unless_hub

    offline_unless_hub(cfg)
    try:
        summary = run_mining(cfg)
    except HarnessError as e:
        if cfg.get("debug"):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if cfg.get("debug"):
            raise
        print("interrupted: nothing was written (mining writes its files at the end)", file=sys.stderr)
        sys.exit(130)
    print(f"mined {summary['found']} memorized windows: {summary['forget']} forget, "
          f"{summary['validation']} validation -> {summary['out_dir']}")


def help_text() -> str:
    """`--help`: mine's own settings and the one group it uses (model), not the harness's groups."""
    from omegaconf import OmegaConf

    from harness.config import group_options

    settings = OmegaConf.load(CONF_DIR / "mine.yaml")
    for key in ("defaults", "hydra"):
        settings.pop(key, None)
    first = (__doc__ or "").strip().splitlines()[0]
    return (f"{first}\n\nmodel: choose with model=<name>, one of: {', '.join(group_options('model'))}\n\n"
            f"Settings (key=value; see conf/mine.yaml):\n{OmegaConf.to_yaml(settings)}")


def main() -> None:
    argv = sys.argv[1:]
    if "--help" in argv or "-h" in argv:
        print(help_text())
        return
    from harness.config import check_group_choices, check_override_keys, parse_overrides

    if "debug=true" not in argv:
        try:
            check_group_choices(argv)
            choices, keys = parse_overrides(argv, groups=("model",))
            if all(len(options) == 1 for options in choices.values()):
                check_override_keys({g: o[0] for g, o in choices.items()}, keys, config_name="mine")
        except HarnessError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
