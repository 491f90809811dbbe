"""NPO-specific tests; the tests it shares with the other fine-tuning methods are in
test_finetune_methods.py."""

from __future__ import annotations

import torch

from tests.conftest import make_tiny_olmo2
from tests.methods.finetune_helpers import PREFIX


def test_retain_weight_adds_retain_to_needs_and_report(method_context):
    from methods.npo import NPO

    method = NPO(retain_weight=1.0, lr=1e-3, epochs=1, batch_size=8, prefix_len=PREFIX)
    assert method.needs == ("forget", "retain")
    report = method.apply(make_tiny_olmo2(), method_context)
    assert "final_retain_nll" in report


def test_npo_loss_matches_its_formula():
    # (2/beta) log(1 + (pi/pi_ref)^beta) written directly, against the softplus form used
    beta, logp, ref = 0.1, torch.tensor([-3.0, -10.0]), torch.tensor([-2.0, -12.0])
    direct = (2 / beta) * torch.log1p(torch.exp(logp - ref) ** beta).mean()
    used = (2 / beta) * torch.nn.functional.softplus(beta * (logp - ref)).mean()
    assert torch.allclose(direct, used)
