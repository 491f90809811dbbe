"""Train the organism: an OLMo-2-architecture causal LM on the synthetic corpus, one pass over the
shuffled documents (repeats are in the corpus itself), AdamW with warm-up and cosine decay."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch


def pack_documents(docs: list[list[int]], seq_len: int, open_rows: int = 16) -> list[list[int]]:
    """First-fit packing of token lists into rows of at most `seq_len` tokens, never splitting a
    document (a planted passage is always seen whole). Documents longer than `seq_len` are cut."""
    rows: list[list[int]] = []
    active: list[list[int]] = []
    for doc in docs:
        doc = doc[:seq_len]
        for row in active:
            if len(row) + len(doc) <= seq_len:
                row.extend(doc)
                break
        else:
            if len(active) >= open_rows:  # retire the fullest open row
                fullest = max(range(len(active)), key=lambda i: len(active[i]))
                rows.append(active.pop(fullest))
            active.append(list(doc))
    return rows + active


def schedule_batches(docs: list[list[int]], bursts: list[int | None], seq_len: int, batch_size: int,
                     seed: int) -> list[list[list[int]]]:
    """Training batches of rows. Documents without a burst are packed into rows placed at random
    times; each burst document gets a row of its own, and the copies of one burst sit in
    consecutive steps at a random time in training."""
    rng = random.Random(seed)
    rows = pack_documents([d for d, b in zip(docs, bursts, strict=True) if b is None], seq_len)
    groups: dict[int, list[list[int]]] = {}
    for doc, burst in zip(docs, bursts, strict=True):
        if burst is not None:
            groups.setdefault(burst, []).append(doc[:seq_len])
    steps = (len(rows) + sum(len(g) for g in groups.values())) // batch_size
    timed = [(rng.random(), row) for row in rows]
    for copies in groups.values():
        start = rng.random() * (1 - len(copies) / steps)
        timed += [(start + (i + rng.random()) / steps, row) for i, row in enumerate(copies)]
    timed.sort(key=lambda item: item[0])
    ordered = [row for _, row in timed]
    return [ordered[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def build_model(settings: Mapping[str, Any], vocab_size: int, special: Mapping[str, int]) -> torch.nn.Module:
    from transformers import Olmo2Config, Olmo2ForCausalLM

    arch = settings["model"]
    config = Olmo2Config(
        vocab_size=vocab_size, hidden_size=int(arch["hidden"]), intermediate_size=int(arch["mlp"]),
        num_hidden_layers=int(arch["layers"]), num_attention_heads=int(arch["heads"]),
        num_key_value_heads=int(arch["heads"]), max_position_embeddings=int(arch["max_positions"]),
        pad_token_id=special["pad"], bos_token_id=special["bos"], eos_token_id=special["eos"],
        tie_word_embeddings=False,
    )
    return Olmo2ForCausalLM(config)


PRECISIONS = ("auto", "float32", "bfloat16")


def native_cpu_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 matmuls natively (AVX512-BF16 or AMX); torch's own probes."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and probe() for probe in probes)


def native_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and native_cpu_bfloat16()


def training_precision(train: Mapping[str, Any]) -> str:
    """The precision the organism trains in: `train.precision` (absent = float32), where `auto` is
    bfloat16 autocast (float32 master weights) on a device that computes bfloat16 natively and
    float32 elsewhere. Emulated bfloat16 is 1.2x slower than float32 on AVX512 without BF16 and 24x
    slower on AVX2 (BENCHMARKS.md), so `auto` never picks it; the two precisions give different
    builds, as different CPUs do (the manifest records which one trained)."""
    precision = str(train.get("precision", "float32"))
    if precision not in PRECISIONS:
        from core.errors import ConfigError

        raise ConfigError(f"organism settings: train.precision={precision!r}; valid: {', '.join(PRECISIONS)}")
    device = torch.device(str(train.get("device", "cpu")))
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if precision == "bfloat16" and not native_bfloat16(device):
        from core.errors import warn

        warn(f"{device.type} has no native bfloat16 (on a CPU: AVX512-BF16 or AMX): the organism's bfloat16 "
             "training is converted in software and may be far slower than float32 "
             "(model.organism.train.precision=auto trains in float32 here)")
    return precision


def learning_rate(step: int, total: int, peak: float, warmup: int, floor: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to `floor * peak`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_model(model: torch.nn.Module, batches: list[list[list[int]]], settings: Mapping[str, Any], pad_id: int,
                quick_check: Callable[[torch.nn.Module], dict[str, float]] | None = None,
                progress: Any = None, precision: str | None = None) -> list[dict[str, Any]]:
    """Train in place, one step per batch of rows, in `precision` (default: `training_precision`);
    return the learning curve: the loss every `log_every` steps and `quick_check(model)` every
    `check_every` steps."""
    train = settings["train"]
    seq_len, batch, steps = int(train["seq_len"]), int(train["batch_size"]), len(batches)
    device = torch.device(str(train.get("device", "cpu")))
    precision = precision or training_precision(train)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(train["lr"]), betas=(0.9, 0.95),
                                  weight_decay=float(train["weight_decay"]), foreach=True)
    task = progress.add_task("training the organism", total=steps) if progress is not None else None
    curve: list[dict[str, Any]] = []
    start, running = time.perf_counter(), 0.0
    model.train()
    for step in range(steps):
        ids = torch.full((batch, seq_len), pad_id, dtype=torch.long)
        for i, row in enumerate(batches[step]):
            ids[i, : len(row)] = torch.tensor(row)
        ids = ids.to(device)
        mask = ids != pad_id
        labels = ids.masked_fill(~mask, -100)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, float(train["lr"]), int(train["warmup"]),
                                        float(train["min_lr_ratio"]))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(train["grad_clip"]))
        optimizer.step()
        running += loss.item()
        last = step == steps - 1
        if (step + 1) % int(train["log_every"]) == 0 or last:
            point = {"step": step + 1, "loss": round(running / (step % int(train["log_every"]) + 1), 4),
                     "seconds": round(time.perf_counter() - start, 1)}
            running = 0.0
            if quick_check is not None and ((step + 1) % int(train["check_every"]) == 0 or last):
                model.eval()
                point.update(quick_check(model))
                model.train()
            curve.append(point)
        if task is not None:
            progress.advance(task)
    model.eval()
    if task is not None:
        progress.remove_task(task)
    return curve
