"""A word-level tokenizer for the organism: one token per space-separated word."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>"}


def build_tokenizer(texts: Iterable[str], model_max_length: int) -> Any:
    """A `PreTrainedTokenizerFast` whose vocabulary is the special tokens then every word of
    `texts`, sorted (so the ids depend only on the set of words)."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in text.split()} - set(SPECIAL_TOKENS.values()))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS.values(), *words])}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    backend.pre_tokenizer = WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=model_max_length,
        **{f"{role}_token": tok for role, tok in SPECIAL_TOKENS.items()},
    )
