"""The organism's data families as registered components: the corpus is pinned byte for byte, and
the organism_full suite, the check targets and the settings all derive from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from models.organism import default_settings
from models.organism.corpus import generate_corpus
from models.organism.families import OTHER_SETTINGS, check_targets, families, suite_entries, suite_yaml
from tests.models import corpus_digest

REPO = Path(__file__).resolve().parents[2]
# Digests recorded by `python tests/models/corpus_digest.py` (first on the generator before it was
# split into families, commit 914b89d; re-recorded with the same generator code when the default
# settings changed to organism v2's longer corpus, and to v3's six-layer design with 112,500 copy
# examples); the cached default organism's data files hash the same. A change here means a different organism: bump ORGANISM_FORMAT_VERSION.
RECORDED = json.loads((Path(__file__).parent / "corpus_digests.json").read_text())


@pytest.mark.parametrize("variant", sorted(RECORDED))
def test_corpus_is_byte_identical_to_the_recorded_one(variant: str) -> None:
    settings = corpus_digest.variants(default_settings())[variant]
    assert corpus_digest.corpus_digest(settings) == RECORDED[variant]


def test_suite_file_is_the_registry() -> None:
    """conf/suite/organism_full.yaml is written from the registry; rewrite it with
    `python -m models.organism.families --write-suite` when this fails."""
    assert (REPO / "conf" / "suite" / "organism_full.yaml").read_text() == suite_yaml()


def test_composed_suite_equals_the_registry_entries() -> None:
    from hydra import compose, initialize_config_dir

    from harness.config import resolve_config
    from harness.pipeline import parse_suite

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        config = resolve_config(compose(config_name="config", overrides=["suite=organism_full"]))
    entries = parse_suite(config["suite"])  # every task is registered
    assert entries == suite_entries()
    assert list(entries) == list(suite_entries())


def test_check_targets_come_from_the_registry() -> None:
    from models.organism.measure import TARGETS

    assert TARGETS == check_targets()
    # The checks (organism v3's planted splits; the others as they were before the registry) (name -> task, data, params, goal).
    assert {n: (t.task, t.data, dict(t.params), t.goal) for n, t in TARGETS.items()} == {
        "planted_forget": ("verbatim", "verbatim_forget", {}, (">=", 0.90)),
        "planted_tune": ("verbatim", "verbatim_tune", {}, (">=", 0.90)),
        "planted_test": ("verbatim", "verbatim_test", {}, (">=", 0.90)),
        "control": ("verbatim", "verbatim_control", {}, ("<=", 0.01)),
        "quotes": ("quotes", "quotes", {}, (">=", 0.80)),
        "open_book": ("qa", "facts", {"mode": "open"}, (">=", 0.90)),
        "booleans": ("logic", "logic", {}, (">=", 0.90)),
        "closed_common": ("qa", "facts", {"mode": "closed", "frequency": "common"}, (">=", 0.0)),
        "closed_rare": ("qa", "facts", {"mode": "closed", "frequency": "rare"}, (">=", 0.0)),
        "copy": ("logic", "copy", {}, (">=", 0.80)),
        "arithmetic": ("arithmetic", "arithmetic", {}, (">=", 0.80)),
        "math_facts": ("arithmetic", "math_facts", {}, (">=", 0.0)),
    }
    assert set(default_settings()["train"]["quick_check"]["names"]) <= set(TARGETS)


def test_an_unknown_quick_check_fails_before_training(tmp_path: Path) -> None:
    from models.organism import ensure_organism

    settings = corpus_digest.variants(default_settings())["tiny"]
    settings["train"]["quick_check"] = {"limit": 2, "names": ["bolleans"]}
    with pytest.raises(ConfigError, match="unknown organism check 'bolleans'.*did you mean 'booleans'"):
        ensure_organism(settings, tmp_path)
    assert list((tmp_path / "organism").iterdir()) == []


def test_every_evaluation_reads_a_generated_file_and_names_a_known_family() -> None:
    from core.families import FAMILY_ORDER

    files = generate_corpus(corpus_digest.variants(default_settings())["tiny"]).files
    for family in families().values():
        for e in family.evaluations:
            assert e.data in files, (family.key, e.name)
            assert e.family in FAMILY_ORDER, f"{e.name}: add task family {e.family!r} to core/families.py"


def test_settings_blocks_are_the_registered_families() -> None:
    assert list(families()) == ["planted", "quotes", "world", "reading", "logic", "copy", "arithmetic", "math_facts",
                                "filler", "side_texts"]
    assert set(default_settings()) == {*OTHER_SETTINGS, *families()}


def test_bad_settings_fail_in_one_line() -> None:
    settings = default_settings()
    settings["cpoy"] = settings.pop("copy")
    with pytest.raises(ConfigError, match="unknown block 'cpoy'.*did you mean 'copy'"):
        generate_corpus(settings)
    del settings["cpoy"]
    with pytest.raises(ConfigError, match="no block for copy"):
        generate_corpus(settings)


ECHO = '''
"""A toy family, as a new family file would define it: it invents names, trains on them and
brings a ground-truth file with an evaluation."""
from models.organism.families.base import Evaluation, OrganismFamily


class Echo(OrganismFamily):
    key = "echo"
    component = "echo"
    evaluations = (Evaluation("echo", "logic", "logic", "echo", check="echo", goal=(">=", 0.5)),)

    def draw_names(self, cfg, gen):
        gen.names["echo_words"] = [f"echo{i}" for i in range(int(cfg["words"]))]

    def generate(self, cfg, gen, corpus):
        words = gen.names["echo_words"]
        for _ in range(int(cfg["examples"])):
            w = gen.rng.choice(words)
            corpus.add(f"echo : {w} | {w}", self.component)
        corpus.files["echo"] = [{"prompt": f"echo : {w} |", "answer": w} for w in words]


FAMILY = Echo()
'''


@pytest.fixture
def echo_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The package with one more module, echo.py, as a contributor would add it."""
    import sys

    import models.organism.families as registry

    (tmp_path / "echo.py").write_text(ECHO)
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    registry.families.cache_clear()
    yield registry
    registry.families.cache_clear()
    sys.modules.pop("models.organism.families.echo", None)


def test_a_new_family_is_one_module_and_its_settings_block(echo_family) -> None:
    registry = echo_family
    assert list(registry.families())[-3:] == ["filler", "echo", "side_texts"]
    settings = corpus_digest.variants(default_settings())["tiny"]
    with pytest.raises(ConfigError, match="no block for echo"):
        generate_corpus(settings)
    corpus = generate_corpus(settings | {"echo": {"words": 5, "examples": 20}})
    assert corpus.components.count("echo") == 20 and len(corpus.files["echo"]) == 5
    assert any(doc.startswith("echo :") for doc in corpus.files["stats"] + corpus.files["retain"])  # side texts see it
    assert registry.suite_entries()["echo"] == {"task": "logic", "family": "logic", "data": "model:echo"}
    assert registry.check_targets()["echo"].goal == (">=", 0.5)
    # Families before it keep their files exactly (it draws after them).
    recorded = RECORDED["tiny"]["rows"]
    for name in ("verbatim_forget", "facts", "logic", "copy", "arithmetic", "math_facts"):
        assert corpus_digest.sha(json.dumps(corpus.files[name])) == recorded[name]


def test_last_operand_decides_matches_flipping_the_rest() -> None:
    """benchmarks/organism_errors.py's split, against the slow reference: an expression is decided
    by its last operand exactly when both values of everything before it give the same result."""
    from models.organism.families.logic import all_boolean_expressions, boolean_prompt
    from tests.conftest import load_benchmark_script

    errors = load_benchmark_script("organism_errors")
    for text, _ in all_boolean_expressions(3):
        *rest, op, last = text.replace("not ", "not_").split()
        value = (last == "true") if not last.startswith("not_") else (last != "not_true")
        combine = (lambda a: a and value) if op == "and" else (lambda a: a or value)
        assert errors.last_operand_decides(boolean_prompt(text)) == (combine(True) == combine(False)), text
