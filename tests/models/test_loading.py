"""Loading a local save_pretrained folder, devices and dtypes."""

from pathlib import Path

import pytest
import torch

from conftest import make_tiny_olmo2
from core.errors import ConfigError, ModelLoadError
from models import load_model, model_name
from models.base import parse_dtype, pick_device
from models.hf import safe_name


def test_local_folder_loads_the_same_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    loaded = load_model({"kind": "hf", "path": str(tiny_model_dir / "model"), "dtype": "float32"}, "cpu", tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, make_tiny_olmo2()(ids).logits)
    assert loaded.tokenizer.pad_token_id is not None and loaded.kind == "causal_lm"
    assert loaded.key.startswith(safe_name(str(tiny_model_dir / "model")))  # the full path: a cache key


def test_run_name_is_the_folder_or_the_recorded_hub_id(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "x" / "models" / "llama"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert model_name({"path": str(folder)}) == "llama"  # not tmp--x--models--llama
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "meta-llama/Llama-3.2-1B"}))
    assert model_name({"path": str(folder)}) == "meta-llama--Llama-3.2-1B"
    (folder / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert model_name({"path": str(folder)}) == "llama"  # a recorded local path is not a name
    snapshot = tmp_path / "hub" / "models--allenai--OLMo-2-0425-1B" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert model_name({"path": str(snapshot)}) == "allenai--OLMo-2-0425-1B"
    assert model_name({"path": "allenai/OLMo-2-0425-1B"}) == "allenai--OLMo-2-0425-1B"  # a hub id
    assert model_name({"path": str(folder), "name": "mine"}) == "mine"


def test_key_changes_when_the_weights_are_resaved(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir / "model", copy)
    first = load_model({"kind": "hf", "path": str(copy)}, "cpu", tmp_path).key
    make_tiny_olmo2(seed=1).save_pretrained(copy)
    assert load_model({"kind": "hf", "path": str(copy)}, "cpu", tmp_path).key != first


def test_bfloat16_dtype(tiny_model_dir: Path, tmp_path: Path) -> None:
    loaded = load_model({"kind": "hf", "path": str(tiny_model_dir / "model"), "dtype": "bfloat16"}, "cpu", tmp_path)
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_folder_without_safetensors_is_refused(tmp_path: Path) -> None:
    """Only safetensors weights load: a pickled checkpoint could run code."""
    folder = tmp_path / "pickled"
    model = make_tiny_olmo2()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    from conftest import make_tiny_tokenizer

    make_tiny_tokenizer().save_pretrained(folder)
    with pytest.raises(ModelLoadError, match="only safetensors weights are loaded"):
        load_model({"kind": "hf", "path": str(folder)}, "cpu", tmp_path)


def test_devices_and_dtypes() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ConfigError, match="use auto, cpu"):
        pick_device("gpu0")
    assert parse_dtype("auto", torch.device("cpu")) == torch.float32
    with pytest.raises(ConfigError, match="float32"):
        parse_dtype("fp8", torch.device("cpu"))


def test_unknown_kind() -> None:
    from core.registry import RegistryError

    with pytest.raises(RegistryError, match="unknown model.kind 'onnx'.*valid: hf, organism"):
        load_model({"kind": "onnx"}, "cpu", Path("."))
