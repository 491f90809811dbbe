"""Shared fixtures: a tiny randomly initialised OLMo-2 model with a word-level tokenizer, and a
method context over random token windows. Small enough that a unit test runs in well under a
second on 2 cores."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest worker per core (Makefile): a second torch thread per worker would only contend,
    # and the subprocesses tests start inherit the variable.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

WORDS = [f"w{i}" for i in range(120)]


def make_tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
    for w in WORDS:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
        eos_token="<eos>", model_max_length=128,
    )


def make_tiny_olmo2(seed: int = 0, layers: int = 2):
    from transformers import Olmo2Config, Olmo2ForCausalLM

    torch.manual_seed(seed)
    cfg = Olmo2Config(
        vocab_size=len(WORDS) + 4, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=False,
    )
    return Olmo2ForCausalLM(cfg).eval()


@pytest.fixture
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_olmo2():
    return make_tiny_olmo2()


@pytest.fixture
def hub_offline(monkeypatch):
    """The Hugging Face libraries offline. They read HF_HUB_OFFLINE when imported, and in a full
    test run an earlier test has imported them: without the patch, lookups retry the unreachable
    hub for minutes."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


class _TimeWithoutSleep:
    """The time module, except that sleep returns at once."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        return None


@pytest.fixture
def hub_retries_without_waits(monkeypatch):
    """The hub stays as unreachable as it is here and in CI, but huggingface_hub retries a failed
    lookup without its backoff waits (1 + 2 + 4 + 8 + 8 s each time): the tests check what the
    harness says when the hub cannot be reached, not how long the library waits before it says so."""
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http, "time", _TimeWithoutSleep())


def random_windows(vocab_size: int, seq_len: int, max_tokens: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(max(1, max_tokens // seq_len)):
        yield torch.randint(4, vocab_size, (seq_len,), generator=g)


@pytest.fixture
def method_context(tmp_path: Path, tiny_tokenizer):
    """A MethodContext over random token windows, with small forget and retain sets."""
    from methods.base import MethodContext
    from models.hf import TokenStatistics

    vocab = len(tiny_tokenizer)
    g = torch.Generator().manual_seed(1)
    forget = [torch.randint(4, vocab, (24,), generator=g).tolist() for _ in range(8)]
    retain = [torch.randint(4, vocab, (24,), generator=g).tolist() for _ in range(8)]
    return MethodContext(
        tokenizer=tiny_tokenizer, device=torch.device("cpu"), seed=0, cache_dir=tmp_path,
        model_key="tiny-olmo2-seed0",
        stats=TokenStatistics(lambda seq_len, max_tokens: random_windows(vocab, seq_len, max_tokens)),
        forget_set=forget, retain_set=retain,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny OLMo-2 saved with save_pretrained, plus verbatim/quotes JSONL files beside it."""
    import json
    import random

    folder = tmp_path_factory.mktemp("tiny")
    make_tiny_olmo2().save_pretrained(folder / "model")
    make_tiny_tokenizer().save_pretrained(folder / "model")
    rng = random.Random(0)
    words = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    (folder / "verbatim.jsonl").write_text(
        "\n".join(json.dumps({"prefix_text": words(16), "suffix_text": words(8)}) for _ in range(6)) + "\n")
    (folder / "quotes.jsonl").write_text(
        "\n".join(json.dumps({"full_quote": words(14)}) for _ in range(6)) + "\n")
    (folder / "text.txt").write_text("\n\n".join(words(40) for _ in range(50)) + "\n")  # 50 documents
    return folder


def method_config(name: str) -> dict:
    """conf/method/<name>.yaml as the app composes it (a variant merged over its base)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        return OmegaConf.to_container(compose(config_name="config", overrides=[f"method={name}"]).method)


def make_fake_vit_imagenet(root: Path, train_per_class: int, classes: tuple[str, ...] = ("ant", "bee", "cat")) -> Path:
    """<root>/ckpt (a tiny ViT + its image processor, save_pretrained) and
    <root>/imagenet/{train,val}/<class>/*.png (generated 16x16 images, 2 val per class)."""
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    rng = torch.Generator().manual_seed(0)
    for split, per_class in (("train", train_per_class), ("val", 2)):
        for c, name in enumerate(classes):
            folder = root / "imagenet" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = (torch.rand(16, 16, 3, generator=rng) * 80 + 80 * c).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=32, num_labels=len(classes))
    ViTForImageClassification(config).save_pretrained(root / "ckpt")
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(root / "ckpt")
    return root


def harness_args(folder: Path, runs: Path, *extra: str) -> list[str]:
    """Command-line overrides that run the harness on the tiny saved model."""
    return [
        "model=hf", f"model.path={folder / 'model'}", "suite=verbatim_files",
        f"suite.tasks.verbatim.data={folder / 'verbatim.jsonl'}",
        f"suite.tasks.quotes.data={folder / 'quotes.jsonl'}", f"runs_dir={runs}",
        f"cache_dir={runs / 'cache'}", "device=cpu", *extra,
    ]


def load_benchmark_script(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is a folder of scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
