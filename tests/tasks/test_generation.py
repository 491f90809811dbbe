"""Batched, left-padded, KV-cached greedy decoding equals decoding each prompt alone without a
cache (the slow obvious reference)."""

import torch

from tasks.generation import greedy_generate


def naive_greedy(model, prompt: list[int], steps: int) -> list[int]:
    ids = list(prompt)
    for _ in range(steps):
        logits = model(input_ids=torch.tensor([ids])).logits
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


def test_batched_cached_generation_equals_naive(tiny_olmo2) -> None:
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(4, 120, (n,), generator=g).tolist() for n in (3, 9, 5, 12, 1)]
    got = greedy_generate(tiny_olmo2, prompts, max_new_tokens=6, batch_size=3, pad_token_id=0, device="cpu")
    with torch.no_grad():
        want = [naive_greedy(tiny_olmo2, p, 6) for p in prompts]
    assert got == want
    assert all(len(g) == 6 for g in got)


class PassKwargsOn(torch.nn.Module):
    """A wrapper whose forward only passes **kwargs on, as a PEFT model's does."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_a_wrapped_model_gets_the_cache_under_the_name_its_model_takes(tiny_olmo2) -> None:
    """transformers 5 takes the KV cache as `cache`; `past_key_values` warns and goes in 5.40, after
    which a wrapped model's cache would be dropped. The wrapper is asked through its output."""
    import warnings

    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(4, 120, (n,), generator=g).tolist() for n in (4, 7)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*past_key_values.*deprecated", category=FutureWarning)
        got = greedy_generate(PassKwargsOn(tiny_olmo2), prompts, max_new_tokens=5, batch_size=2, pad_token_id=0,
                              device="cpu")
    with torch.no_grad():
        assert got == [naive_greedy(tiny_olmo2, p, 5) for p in prompts]
