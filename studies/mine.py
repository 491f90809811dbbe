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
from collections.abc import Callable, Iterable, Iterator
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
def matched_suffix_lengths(model: torch.nn.Module, windows: list[list[int]], prefix_len: int,
                           device: torch.device | str) -> list[int]:
    """For each window (all the same length), how many suffix tokens from its start the
    teacher-forced argmax reproduces before the first miss (the suffix length: all of them)."""
    batch = torch.tensor(windows, dtype=torch.long, device=device)
    logits = model(input_ids=batch[:, :-1]).logits
    hits = logits[:, prefix_len - 1 :].argmax(-1) == batch[:, prefix_len:]
    return hits.long().cumprod(dim=1).sum(dim=1).tolist()


def suffix_fully_predicted(model: torch.nn.Module, windows: list[list[int]], prefix_len: int,
                           device: torch.device | str) -> list[bool]:
    """For each window (all the same length), whether the teacher-forced argmax at every suffix
    position equals the next token."""
    suffix_len = len(windows[0]) - prefix_len
    return [n == suffix_len for n in matched_suffix_lengths(model, windows, prefix_len, device)]


def near_misses(matched: list[int], suffix_len: int, bins: int = 6) -> str:
    """One line on the longest matched suffix run of every window: min / median / max and a small
    histogram, for a mining that found nothing (how close the model came)."""
    if not matched:
        return "no windows scored"
    import statistics

    ordered = sorted(matched)
    median = statistics.median(ordered)
    edges = sorted({round(i * suffix_len / bins) for i in range(bins)} | {suffix_len})
    parts = []
    for low, high in zip(edges, edges[1:] + [suffix_len + 1]):
        count = sum(low <= m < high for m in matched)
        label = f"{low}" if high == low + 1 else f"{low}-{high - 1}"
        parts.append(f"{label}: {count}")
    return (f"longest matched suffix (tokens of {suffix_len}) over {len(matched)} windows: min {ordered[0]}, "
            f"median {median:g}, max {ordered[-1]}; histogram {', '.join(parts)}")


def mine(model: torch.nn.Module, tokenizer: Any, texts: Iterable[str], prefix_len: int = 64,
         suffix_len: int = 48, stride: int = 16, batch_size: int = 32, device: torch.device | str = "cpu",
         max_windows: int | None = None, counts: dict[str, int] | None = None,
         matched: list[int] | None = None, on_batch: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """Memorized windows (prefix + suffix ids), deduplicated on the suffix, in corpus order.
    `matched`, if given, receives every window's matched suffix length (near misses); `on_batch`
    is called with (windows scored in the batch, memorized windows found so far)."""
    model.eval()
    found: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    batch: list[list[int]] = []

    def flush() -> None:
        lengths = matched_suffix_lengths(model, batch, prefix_len, device)
        if matched is not None:
            matched.extend(lengths)
        for window, length in zip(batch, lengths):
            suffix = tuple(window[prefix_len:])
            if length == suffix_len and suffix not in seen:
                seen.add(suffix)
                found.append(window)
        if on_batch is not None:
            on_batch(len(batch), len(found))
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
    for key in ("prefix_len", "suffix_len", "stride", "batch_size", "max_windows"):
        value = config[key]
        if key == "max_windows" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"mine: {key} must be an integer >= 1{' or null (the whole corpus)' if key == 'max_windows' else ''}, "
                              f"got {value!r}")
    fraction = config["forget_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"mine: forget_fraction must be a number in (0, 1) (the share of mined windows in "
                          f"verbatim_forget.jsonl; the rest go to verbatim_validation.jsonl, and neither may be "
                          f"empty), got {fraction!r}")
    out = check_writable_dir(Path(config["out_dir"]), "out_dir")  # before the model and the corpus
    corpus = str(config["corpus"])
    if not corpus.startswith("model:"):  # a missing, unreadable or empty corpus: before the model loads
        if next(iter_texts(corpus, {}, config["text_field"], config["split"]), None) is None:
            raise DataError(f"mine: the corpus {corpus} is empty (no documents); pass a corpus with text")
    loaded = load_model(config["model"], config["device"], Path(config["cache_dir"]))
    seen = {"documents": 0}

    def counted(texts: Iterable[str]) -> Iterator[str]:
        for text in texts:
            seen["documents"] += 1
            yield text

    from core.progress import make_progress

    texts = counted(iter_texts(str(config["corpus"]), loaded.data, config["text_field"], config["split"]))
    matched: list[int] = []
    with make_progress() as progress:  # live on a terminal, a plain line every 30 s in a log file
        task = progress.add_task("mining windows (0 memorized)", total=config["max_windows"])

        def step(scored: int, found: int) -> None:
            progress.update(task, advance=scored, description=f"mining windows ({found} memorized)")

        windows = mine(loaded.model, loaded.tokenizer, texts, config["prefix_len"], config["suffix_len"],
                       config["stride"], config["batch_size"], loaded.device, config["max_windows"], seen,
                       matched, step)
    length = config["prefix_len"] + config["suffix_len"]
    if seen["documents"] == 0:
        raise DataError(f"mine: the corpus {config['corpus']} is empty (no documents); pass a corpus with text")
    if seen["windows"] == 0:
        raise DataError(f"mine: no document of {config['corpus']} is {length} tokens long (prefix_len + "
                        f"suffix_len); the longest has {seen['longest']}: lower prefix_len/suffix_len")
    summary = {"found": len(windows), "windows": seen["windows"], "documents": seen["documents"],
               "near_misses": near_misses(matched, config["suffix_len"]), "out_dir": str(out)}
    if not windows:  # a result, not an error: the model recites none of it at this length
        return {**summary, "forget": 0, "validation": 0}
    forget, validation = split_rows(windows, loaded.tokenizer, config["prefix_len"], fraction, config["seed"])
    if not forget or not validation:
        raise DataError(f"mine: {len(windows)} memorized window(s) found; forget_fraction={fraction} leaves "
                        f"{'verbatim_forget' if not forget else 'verbatim_validation'}.jsonl empty, and nothing was "
                        "written; mine more text (a larger corpus or a smaller stride) or change forget_fraction")
    write_jsonl(out / "verbatim_forget.jsonl", forget)
    write_jsonl(out / "verbatim_validation.jsonl", validation)
    return {**summary, "forget": len(forget), "validation": len(validation)}


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
    print(mining_report(summary))


def mining_report(summary: dict[str, Any]) -> str:
    """What a finished mining prints: the files written, or that nothing was found and how close
    the model came (the near misses)."""
    if not summary["found"]:
        return (f"mined 0 memorized windows of {summary['windows']} in {summary['documents']} documents: an "
                f"empty result, nothing written to {summary['out_dir']}\nnear misses: {summary['near_misses']}\n"
                "(a window counts when all its suffix tokens are reproduced; the near misses say how close the "
                "model came; a .txt corpus is read as documents separated by blank lines)")
    return (f"mined {summary['found']} memorized windows of {summary['windows']}: {summary['forget']} forget, "
            f"{summary['validation']} validation -> {summary['out_dir']}\nnear misses: {summary['near_misses']}")


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
