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
