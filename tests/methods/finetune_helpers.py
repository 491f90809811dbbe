"""Shared by the fine-tuning method tests: a tiny OLMo-2 that has memorised its forget set."""

from __future__ import annotations

import torch

from tests.conftest import make_tiny_olmo2

PREFIX = 16  # the fixture's examples are 24 tokens: 16-token prefix + 8-token suffix


def memorized_model(forget: list[list[int]], steps: int = 60):
    """A tiny model trained on the forget examples until it recalls them."""
    model = make_tiny_olmo2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor(forget)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def suffix_nll(model, examples) -> float:
    from methods._finetune import dataset_nll

    return dataset_nll(model, examples, PREFIX, torch.device("cpu"))
