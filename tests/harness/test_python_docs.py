"""README's "Python" section (and docs/python_api.md, which holds the same block) runs as written,
in a folder that holds the files it names: a tiny saved model and its data."""

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def python_block(markdown: Path, heading: str | None = None) -> str:
    """The first ```python block of `markdown` (under `heading`, when given)."""
    text = markdown.read_text(encoding="utf-8")
    if heading is not None:
        start = text.index(f"\n{heading}\n")
        end = text.find("\n## ", start + 1)
        text = text[start:end if end != -1 else None]
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, f"no python block in {markdown.name}"
    return match.group(1)


def test_readme_and_docs_show_the_same_block() -> None:
    assert python_block(REPO / "README.md", "## Python") == python_block(REPO / "docs" / "python_api.md")


def test_the_python_section_runs_as_written(tiny_model_dir: Path, tmp_path: Path, monkeypatch, hub_offline) -> None:
    shutil.copytree(tiny_model_dir / "model", tmp_path / "my_model")
    for name in ("text.txt", "verbatim.jsonl", "quotes.jsonl"):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    code = python_block(REPO / "README.md", "## Python")
    namespace: dict = {}
    exec(compile(code, "README.md (Python section)", "exec"), namespace)
    assert namespace["run"]["status"] == "complete" and namespace["report"]["changed"]
    assert (tmp_path / "my_model_kfac" / "harness_export.json").is_file()
    frame = namespace["load_runs"]("runs")
    assert set(frame.method) == {"kfac"} and len(frame) > 0
