"""Loading a local save_pretrained folder, devices and dtypes."""

from pathlib import Path

import pytest
import torch

from conftest import make_tiny_olmo2
from core.errors import ConfigError, ModelLoadError
from models import load_model, model_name
from models.base import parse_dtype, pick_device


def test_local_folder_loads_the_same_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    loaded = load_model({"kind": "hf", "path": str(tiny_model_dir / "model"), "dtype": "float32"}, "cpu", tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, make_tiny_olmo2()(ids).logits)
    assert loaded.tokenizer.pad_token_id is not None and loaded.kind == "causal_lm"
    assert loaded.key.startswith(model_name({"path": str(tiny_model_dir / "model")}))


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
