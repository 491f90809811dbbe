"""Models whose greedy output is known exactly, for task tests."""

import torch


class NextIdModel(torch.nn.Module):
    """Predicts token (previous + 1) mod vocab, or a forced id after given ids."""

    def __init__(self, vocab: int = 124, forced: dict[int, int] | None = None):
        super().__init__()
        self.vocab, self.forced = vocab, forced or {}

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        nxt = (input_ids + 1) % self.vocab
        for src, dst in self.forced.items():
            nxt = torch.where(input_ids == src, torch.full_like(nxt, dst), nxt)
        logits = torch.nn.functional.one_hot(nxt, self.vocab).float()
        return type("Out", (), {"logits": logits, "past_key_values": None})()
