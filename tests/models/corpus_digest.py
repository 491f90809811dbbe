"""Digests of the organism's generated corpus: training documents, their components and bursts,
every ground-truth file's rows and the bytes `write_data_files` writes. Used by
tests/models/test_organism_families.py to pin the corpus, and runnable on any commit to compare
two versions of the generator without training:

    python tests/models/corpus_digest.py > digests.json   # default settings, seeds 0-2, tiny settings
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def corpus_digest(settings: dict[str, Any]) -> dict[str, Any]:
    from models.organism import write_data_files
    from models.organism.corpus import generate_corpus

    corpus = generate_corpus(settings)
    digest: dict[str, Any] = {
        "train": sha("\n".join(corpus.train)),
        "components": sha("\n".join(corpus.components)),
        "bursts": sha(json.dumps(corpus.bursts)),
        "file_order": list(corpus.files),
        "rows": {name: sha(json.dumps(rows)) for name, rows in corpus.files.items()},
    }
    with tempfile.TemporaryDirectory() as folder:
        write_data_files(corpus.files, Path(folder))
        digest["written"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}
    return digest


def tiny_settings(base: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """A small organism (tests/models/test_organism.py's tiny settings)."""
    s = copy.deepcopy(base)
    s["seed"] = seed
    s["model"] = {"layers": 2, "hidden": 32, "mlp": 64, "heads": 2, "max_positions": 128}
    s["planted"].update(forget=4, tune=4, test=4, control=4, repeats=3)
    s["world"].update(entities=8, common_facts=6, common_repeats=6, rare_facts=6, rare_repeats=[2, 4])
    s["reading"].update(examples=60, fresh_entities=20)
    s["logic"].update(examples=60, eval=10)
    s["copy"].update(examples=60, eval=10)
    s["arithmetic"].update(examples=60, eval=10)
    s["math_facts"].update(pairs=20, repeats=6)
    s["filler"].update(documents=150)
    s["side_texts"] = {"stats": 300, "retain": 300, "heldout": 300}
    s["train"].update(batch_size=4, log_every=2, check_every=4, quick_check={"limit": 2, "names": ["booleans"]})
    return s


def variants(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings compared: the defaults, two other seeds, and tiny settings exercising every
    branch of the generator (each planted style, reading distractors, bursts of several copies)."""
    out = {"default": base}
    for seed in (1, 2):
        out[f"default_seed{seed}"] = copy.deepcopy(base) | {"seed": seed}
    out["tiny"] = tiny_settings(base)
    out["tiny_seed1"] = tiny_settings(base, 1)
    for style in ("random_words", "sentences"):
        out[f"tiny_{style}"] = tiny_settings(base)
        out[f"tiny_{style}"]["planted"]["style"] = style
    out["tiny_shared_vocabulary"] = tiny_settings(base)
    out["tiny_shared_vocabulary"]["planted"]["vocabulary"] = "shared"
    out["tiny_distractors_bursts"] = tiny_settings(base, 3)
    out["tiny_distractors_bursts"]["reading"]["distractor_share"] = 0.5
    out["tiny_distractors_bursts"]["planted"].update(repeats=6, burst=3)
    out["tiny_distractors_bursts"]["quotes"].update(count=5, repeats=4, burst=2)
    out["tiny_distractors_bursts"]["arithmetic"]["answer_digits"] = "reversed"
    return out


if __name__ == "__main__":
    from models.organism import default_settings

    names = sys.argv[1:]
    chosen = {k: v for k, v in variants(default_settings()).items() if not names or k in names}
    json.dump({name: corpus_digest(s) for name, s in chosen.items()}, sys.stdout, indent=1)
    print()
