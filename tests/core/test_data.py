"""core.data's readers: a file that is not UTF-8 is one DataError line naming the file and the
encoding expected, raised where the file is first read (issue 29: it was a UnicodeDecodeError
traceback from mining, the statistics stream and retain text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import iter_texts, read_jsonl
from core.errors import DataError

LATIN1 = "caf\u00e9 cr\u00e8me\n".encode("latin-1")
BINARY = bytes(range(256)) * 4


@pytest.mark.parametrize("name,content,read", [
    ("latin1.txt", b"plain first line\n" + LATIN1, lambda p: list(iter_texts(str(p), {}))),
    ("binary.txt", BINARY, lambda p: list(iter_texts(str(p), {}))),
    ("latin1.jsonl", b'{"text": "ok"}\n{"text": "' + LATIN1.strip() + b'"}\n', lambda p: list(iter_texts(str(p), {}))),
    ("binary.jsonl", BINARY, read_jsonl),
    ("folder/inside.txt", LATIN1, lambda p: list(iter_texts(str(p.parent), {}))),
], ids=["latin1-txt", "binary-txt", "latin1-jsonl", "binary-jsonl", "folder"])
def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path, name: str, content: bytes, read) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: not UTF-8 text")
    assert "reads text files as UTF-8" in message and "re-save it as UTF-8" in message


def test_utf8_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_text("caf\u00e9\n\nw1 w2\n", encoding="utf-8")
    assert list(iter_texts(str(path), {})) == ["caf\u00e9", "w1 w2"]


def test_txt_is_documents_separated_by_blank_lines(tmp_path: Path) -> None:
    """Issue 29: a .txt file was read one document a line, so every line break became an EOS in
    mining, the statistics stream, retain text and perplexity. One rule now: blank lines separate
    documents, a document keeps its line breaks; `.lines.txt` is one document a line."""
    text = "first line\nof one document\n\n\n  \nsecond document\r\nstill second\n\nthird\n"
    (tmp_path / "docs.txt").write_bytes(text.encode())
    assert list(iter_texts(str(tmp_path / "docs.txt"), {})) == [
        "first line\nof one document", "second document\nstill second", "third"]
    (tmp_path / "docs.lines.txt").write_bytes(text.encode())
    assert list(iter_texts(str(tmp_path / "docs.lines.txt"), {})) == [
        "first line", "of one document", "second document", "still second", "third"]


def test_a_model_declares_its_own_files_one_document_a_line(tmp_path: Path) -> None:
    """The organism's and SmolLM2's side texts were written one document a line as `.txt`: their
    loaders declare them, so their numbers stay as they were."""
    from core.data import one_document_a_line, read_one_document_a_line

    path = tmp_path / "heldout.txt"
    path.write_text("a b\nc d\n")
    assert list(iter_texts(str(path), {})) == ["a b\nc d"]
    read_one_document_a_line(path)
    assert one_document_a_line(path) and list(iter_texts("model:heldout", {"heldout": path})) == ["a b", "c d"]


def test_smollm2s_side_texts_are_paragraphs_whichever_rule_reads_them() -> None:
    """SmolLM2's prose files put a blank line between paragraphs: read by the blank-line rule or one
    document a line, they are the same documents, so its numbers do not depend on the rule."""
    from core.data import one_document_a_line, txt_documents
    from models.smollm2 import data_files

    for name in ("heldout_text", "stats_text"):
        path = data_files()[name]
        assert not one_document_a_line(path)
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert list(txt_documents(path)) == lines and len(lines) > 100


@pytest.mark.parametrize("content,needle", [
    (None, "data file not found"), ("", "holds no text (an empty file)"), ("\n\n  \n", "holds no text"),
    (LATIN1, "not UTF-8 text"),
], ids=["missing", "empty", "blank", "latin1"])
def test_check_texts_is_one_line_naming_the_key(tmp_path: Path, content, needle: str) -> None:
    from core.data import check_texts

    path = tmp_path / "stats.txt"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as info:
        check_texts(str(path), {}, "model.data.stats")
    assert str(info.value).startswith("model.data.stats: ") and needle in str(info.value)
    assert "\n" not in str(info.value)
