"""Time of the `membership` task against the memorization tasks organism_full already runs (verbatim
on every verbatim_* file, perturbed_recall on the held-out memorized file), on one thread
(docs/membership.md, "Cost"). Without a folder: a random model of the organism's shape as
conf/model/organism.yaml had it when that cost was measured (4 layers, hidden 256, MLP 1024, 4
heads; v3 has 6 layers) and random passages of its form (16 forget / 16 held out / 16 control,
32 + 48 tokens).

    python benchmarks/membership_cost.py [.cache/harness/organism/<hash>] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def random_organism(folder: Path) -> tuple[Any, Any, dict[str, Path]]:
    from transformers import Olmo2Config, Olmo2ForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    vocab = 1436
    torch.manual_seed(0)
    model = Olmo2ForCausalLM(Olmo2Config(
        vocab_size=vocab, hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        tie_word_embeddings=False)).eval()
    words = {f"w{i}": i for i in range(vocab)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab=words, unk_token="w1")),
                                        pad_token="w0", eos_token="w3")
    g = torch.Generator().manual_seed(0)
    files = {}
    for name in ("verbatim_forget", "verbatim_test", "verbatim_control"):
        rows = [torch.randint(4, vocab, (80,), generator=g).tolist() for _ in range(16)]
        files[name] = folder / f"{name}.jsonl"
        files[name].write_text("\n".join(json.dumps({"prefix_ids": r[:32], "suffix_ids": r[32:]}) for r in rows))
    return model, tokenizer, files


def best_of(repeats: int, fn: Any) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from tasks.base import TaskContext
    from tasks.membership import MembershipInference
    from tasks.perturbed import PerturbedRecall
    from tasks.verbatim import VerbatimRecall

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", help="a built organism: <cache_dir>/organism/<hash>")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp())
    if args.folder is None:
        model, tokenizer, files = random_organism(scratch)
    else:
        from models.hf import load_hf_causal_lm

        loaded = load_hf_causal_lm(str(args.folder / "model"), torch.device("cpu"))
        model, tokenizer = loaded.model.eval(), loaded.tokenizer
        files = {p.stem: p for p in sorted((args.folder / "data").glob("verbatim_*.jsonl"))}
    ctx = TaskContext(torch.device("cpu"), 0, args.batch_size, "baseline", scratch)
    control = files.pop("verbatim_control")
    held_out = next(p for name, p in files.items() if name != "verbatim_forget")
    seconds = {f"verbatim {name}": best_of(args.repeats, lambda p=p: VerbatimRecall(str(p)).evaluate(model, tokenizer, ctx))
               for name, p in [*files.items(), ("verbatim_control", control)]}
    seconds[f"perturbed {held_out.stem}"] = best_of(
        args.repeats, lambda: PerturbedRecall(str(held_out)).evaluate(model, tokenizer, ctx))
    task = MembershipInference(members=[str(p) for p in files.values()], nonmembers=str(control))
    membership = best_of(args.repeats, lambda: task.evaluate(model, tokenizer, ctx))
    verbatim = sum(v for k, v in seconds.items() if k.startswith("verbatim"))
    print(json.dumps({"seconds": {k: round(v, 3) for k, v in seconds.items()}, "membership": round(membership, 3),
                      "membership / verbatim tasks %": round(100 * membership / verbatim, 1),
                      "membership / (verbatim + perturbed) %": round(100 * membership / sum(seconds.values()), 1)},
                     indent=1))


if __name__ == "__main__":
    main()
