"""Data references and readers shared by the pipeline, tasks and methods.

A data reference in a config is either `model:<name>` (a file the loaded model brought, e.g. the
organism's `model:verbatim_validation`), `hf:<dataset>[:<config>]` (a Hugging Face dataset, for
real models on a machine with the hub), or a local path (file or folder).

Text files, one rule everywhere (mining, the statistics stream, retain text, perplexity, nDCG):
  `.txt`        whole documents separated by blank lines; a document keeps its line breaks.
  `.lines.txt`  one document a line (the old reading), only where a file is named so.
  `.jsonl`      one JSON object a line, its `text_field` (default `text`) a document.
Files a model brings that its loader wrote one document a line (the organism's and SmolLM2's
side texts, named `.txt` before this rule) are read one document a line because the loader says so
(`read_one_document_a_line`), not by guessing from their content. Documents are separated by the
end-of-sequence token when packed into windows (`token_windows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.errors import DataError

LINES_SUFFIX = ".lines.txt"  # a .txt file read one document a line
_ONE_DOCUMENT_A_LINE: set[Path] = set()  # files a model's loader declares one document a line


def read_one_document_a_line(*paths: Path) -> None:
    """A model's loader declares `.txt` files it wrote one document a line (before the blank-line
    rule); `iter_texts` reads those so. Other `.txt` files are documents separated by blank lines."""
    _ONE_DOCUMENT_A_LINE.update(Path(p).resolve() for p in paths if Path(p).suffix == ".txt")


def one_document_a_line(path: Path) -> bool:
    """Whether the `.txt` file `path` is read one document a line (see the module's rule)."""
    return path.name.endswith(LINES_SUFFIX) or path.resolve() in _ONE_DOCUMENT_A_LINE


def txt_documents(path: Path) -> Iterator[str]:
    """The documents of a `.txt` file: separated by blank lines (a document keeps its line
    breaks), or one a line for a `.lines.txt` file or one its model declares so. Not UTF-8: one
    DataError line."""
    per_line = one_document_a_line(path)
    rule = "one document a line" if per_line else "documents separated by blank lines"
    try:
        with open(path, encoding="utf-8") as f:
            if per_line:
                yield from (line.rstrip("\n") for line in f if line.strip())
                return
            lines: list[str] = []
            for line in f:
                if line.strip():
                    lines.append(line.rstrip("\n"))
                elif lines:
                    yield "\n".join(lines)
                    lines = []
            if lines:
                yield "\n".join(lines)
    except UnicodeDecodeError as e:
        raise DataError(not_utf8(path, e, f"a .txt file is text, {rule}")) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; pass a .txt or .jsonl file") from None


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
    """Documents of a text source: a .txt file (documents separated by blank lines; `.lines.txt`:
    one a line), a .jsonl file (`text_field`), a folder of those, a `model:` file, or
    `hf:<dataset>[:<config>]` streamed from the hub (the module's docstring has the rule)."""
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
            yield from txt_documents(file)


def check_texts(ref: str, model_data: Mapping[str, Path], what: str, text_field: str = "text") -> None:
    """Read a local text source through (not tokenized) so that a missing, empty, undecodable or
    malformed one is a one-line DataError naming `what` (e.g. `model.data.stats`) before any slow
    step. An `hf:` source (streamed when used, perhaps long) is opened and its first row read."""
    try:
        if str(ref).startswith("hf:"):
            if next(iter_texts(ref, model_data, text_field), None) is None:
                raise DataError(f"dataset '{str(ref).removeprefix('hf:')}' holds no rows")
            return
        documents = sum(1 for text in iter_texts(ref, model_data, text_field) if text.strip())
    except DataError as e:
        raise DataError(f"{what}: {e}") from None
    if documents == 0:
        path = resolve_data_ref(ref, model_data)
        raise DataError(f"{what}: {path} holds no text (an empty file); pass a .txt (documents separated "
                        "by blank lines) or .jsonl file with text")


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
        if text_field not in row:
            raise DataError(f"dataset '{name}' has no '{text_field}' text field (its fields: {', '.join(map(str, row))}); "
                            "name the field that holds the text with text_field=<field>")
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
