"""Data references and readers shared by the pipeline, tasks and methods.

A data reference in a config is either `model:<name>` (a file the loaded model brought, e.g. the
organism's `model:verbatim_validation`), `hf:<dataset>[:<config>]` (a Hugging Face dataset, for
real models on a machine with the hub), or a local path (file or folder).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.errors import DataError


def resolve_data_ref(ref: str, model_data: Mapping[str, Path]) -> Path:
    """Turn a `model:<name>` reference or a local path into an existing absolute path."""
    ref = str(ref)
    if ref.startswith("model:"):
        name = ref.removeprefix("model:")
        if name not in model_data:
            valid = ", ".join(sorted(model_data)) or "none (this model brings no data; pass a path)"
            raise DataError(f"data '{ref}': the model brings no dataset '{name}'; it brings: {valid}")
        return Path(model_data[name]).resolve()
    path = Path(ref).expanduser()
    if not path.exists():
        raise DataError(f"data file not found: {path} (pass an existing path, or model:<name>)")
    return path.resolve()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a malformed line is a one-line DataError naming the file and line."""
    return [row for _, row in read_jsonl_lines(path)]


def read_jsonl_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of each non-blank line, for errors that point at the line."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{lineno}: each line must be a JSON object, got {type(row).__name__}")
                rows.append((lineno, row))
    except UnicodeDecodeError as e:
        raise DataError(not_utf8(path, e, "a JSONL file is one JSON object a line")) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; pass a .jsonl file") from None
    return rows


def iter_texts(ref: str, model_data: Mapping[str, Path], text_field: str = "text",
               split: str = "train") -> Iterator[str]:
    """Documents of a text source: a .txt file (one document a line), a .jsonl file (`text_field`),
    a folder of those, a `model:` file, or `hf:<dataset>[:<config>]` streamed from the hub."""
    if str(ref).startswith("hf:"):
        yield from _iter_hf_texts(str(ref).removeprefix("hf:"), text_field, split)
        return
    path = resolve_data_ref(ref, model_data)
    files = sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".jsonl"}) if path.is_dir() else [path]
    if not files:
        raise DataError(f"no .txt or .jsonl files under {path}")
    for file in files:
        if file.suffix == ".jsonl":
            for lineno, row in read_jsonl_lines(file):
                if not isinstance(row.get(text_field), str):
                    fields = ", ".join(map(str, row)) or "none"
                    raise DataError(f"{file}:{lineno}: no '{text_field}' text field (its fields: {fields}); "
                                    "name the field that holds the text with text_field=<field>")
                yield row[text_field]
        else:
            try:
                with open(file, encoding="utf-8") as f:
                    yield from (line.rstrip("\n") for line in f if line.strip())
            except UnicodeDecodeError as e:
                raise DataError(not_utf8(file, e, "a .txt file is text, one document a line")) from None


def not_utf8(path: Path, error: UnicodeDecodeError, what: str) -> str:
    """The one line for a file that is not UTF-8 (binary, or saved as latin-1)."""
    return (f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} is not valid UTF-8; binary, or saved "
            f"as latin-1?); the harness reads text files as UTF-8 ({what}): re-save it as UTF-8")


def _iter_hf_texts(spec: str, text_field: str, split: str) -> Iterator[str]:
    import datasets

    name, _, config = spec.partition(":")
    try:
        stream = datasets.load_dataset(name, config or None, split=split, streaming=True)
    except Exception as e:  # the hub raises many types; all mean "cannot get it"
        raise DataError(
            f"cannot load dataset '{name}' ({type(e).__name__}); no network? pass local files instead"
        ) from None
    for row in stream:
        yield row[text_field]


def token_windows(texts: Iterator[str], tokenizer: Any, seq_len: int, max_tokens: int,
                  add_eos: bool = True) -> Iterator["torch.Tensor"]:
    """Pack documents (separated by EOS) into consecutive windows of `seq_len` token ids, stopping
    once `max_tokens` tokens have been yielded."""
    import torch

    buffer: list[int] = []
    produced = 0
    eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []
    for text in texts:
        buffer.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + eos)
        while len(buffer) >= seq_len:
            if produced + seq_len > max_tokens:
                return
            yield torch.tensor(buffer[:seq_len], dtype=torch.long)
            buffer = buffer[seq_len:]
            produced += seq_len


def example_ids(row: dict[str, Any], key: str, tokenizer: Any, path: Path, lineno: int | None = None) -> list[int]:
    """Token ids of a row's `key` part ('prefix' or 'suffix'), from `<key>_ids` or by tokenizing
    `<key>_text`; ids that are not integers, or an empty part, are a DataError naming the line."""
    where = f"{path}:{lineno}" if lineno is not None else str(path)
    if f"{key}_ids" in row:
        ids = row[f"{key}_ids"]
        if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
            raise DataError(f"{where}: {key}_ids must be a list of integer token ids, got {str(ids)[:60]}")
    elif f"{key}_text" in row:
        if not isinstance(row[f"{key}_text"], str):
            raise DataError(f"{where}: {key}_text must be a string")
        ids = tokenizer(row[f"{key}_text"], add_special_tokens=False)["input_ids"]
    else:
        raise DataError(f"{where}: each row needs '{key}_ids' or '{key}_text'")
    if not ids:
        raise DataError(f"{where}: empty {key} (a {key} needs at least one token)")
    return ids


def check_token_ids(where: str, ids: list[int], vocab_size: int | None, max_positions: int | None,
                    what: str = "prefix + suffix") -> None:
    """One example's ids fit the model: each in [0, vocab_size), and no longer than the model's
    positions (a longer one is silently scored on garbage positions by some models)."""
    if vocab_size is not None:
        bad = next((t for t in ids if not 0 <= t < vocab_size), None)
        if bad is not None:
            raise DataError(f"{where}: token id {bad} is outside the model's vocabulary (valid: 0..{vocab_size - 1})")
    if max_positions is not None and len(ids) > max_positions:
        raise DataError(f"{where}: {what} is {len(ids)} tokens, longer than the model's "
                        f"{max_positions} positions")
