"""Round-to-nearest quantization: the half-step bound, grouping, and that the attack never touches
the model it is given."""

import pytest
import torch

from attacks.quantize import Quantize, parse_scheme, quantizable_linears, rtn_quantize
from core.errors import ConfigError
from tests.conftest import make_tiny_olmo2


def slow_rtn(weight: torch.Tensor, bits: int, group: int | None) -> torch.Tensor:
    """The obvious reference: element by element, group by group."""
    qmax = 2 ** (bits - 1) - 1
    out = torch.empty_like(weight)
    size = weight.shape[1] if group is None else group
    for r in range(weight.shape[0]):
        for g0 in range(0, weight.shape[1], size):
            chunk = weight[r, g0:g0 + size]
            scale = chunk.abs().max().item() / qmax or 1.0
            out[r, g0:g0 + size] = torch.tensor([max(-qmax, min(qmax, round(v / scale))) * scale for v in chunk.tolist()])
    return out


@pytest.mark.parametrize("bits,group", [(8, None), (4, None), (4, 4), (8, 5)])
def test_rtn_matches_the_elementwise_reference_and_moves_at_most_half_a_step(bits, group) -> None:
    w = torch.randn(6, 12, generator=torch.Generator().manual_seed(0))
    q = rtn_quantize(w, bits, group)
    assert torch.allclose(q, slow_rtn(w, bits, group), atol=1e-6)
    qmax = 2 ** (bits - 1) - 1
    size = 12 if group is None else group
    for r in range(6):
        for g0 in range(0, 12, size):
            step = w[r, g0:g0 + size].abs().max() / qmax
            assert (q[r, g0:g0 + size] - w[r, g0:g0 + size]).abs().max() <= step / 2 + 1e-7
            levels = q[r, g0:g0 + size] / step  # every value sits on the grid
            assert torch.allclose(levels, levels.round(), atol=1e-4)


def test_int8_of_a_weight_differs_from_it_by_at_most_half_a_step() -> None:
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(1))
    q = rtn_quantize(w, 8)
    step = w.abs().amax(dim=1, keepdim=True) / 127
    assert ((q - w).abs() <= step / 2 + 1e-7).all()
    assert (q != w).any()  # it did round something
    assert len(set((q[0] / step[0]).round().tolist())) <= 255


def test_fewer_bits_move_weights_further_and_groups_help() -> None:
    w = torch.randn(32, 256, generator=torch.Generator().manual_seed(2))
    err = {s: (rtn_quantize(w, *parse_scheme(s)) - w).abs().mean().item() for s in ("int8", "int4", "int4_g128")}
    assert err["int8"] < err["int4_g128"] < err["int4"]


def test_scheme_names_parse_and_bad_ones_say_what_is_valid() -> None:
    assert parse_scheme("int8") == (8, None) and parse_scheme("int4_g128") == (4, 128)
    for bad in ("int1", "fp4", "int4_g0", "int4g128"):
        with pytest.raises(ConfigError, match="int8, int4, int4_g128"):
            parse_scheme(bad)


def test_attack_quantizes_a_copy_and_leaves_the_head_and_the_model_alone() -> None:
    model = make_tiny_olmo2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    linears = quantizable_linears(model)
    assert linears and model.lm_head not in linears.values()
    seen = {}

    def score(clone, names=None):
        seen["clone"] = clone
        return {}

    from attacks.base import AttackContext

    ctx = AttackContext(tokenizer=None, device=torch.device("cpu"), seed=0, batch_size=4, tasks={}, score=score,
                        sources=None, forget_task=None, data={})
    units = []
    Quantize(["int4"]).run(model, ctx, "quantize", set(), units.append)
    assert [u.key for u in units] == ["quantize.int4"] and units[0].info["layers_quantized"] == len(linears)
    clone = seen["clone"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is untouched
    name = next(iter(linears))
    assert not torch.equal(clone.get_submodule(name).weight, model.get_submodule(name).weight)
    assert torch.equal(clone.lm_head.weight, model.lm_head.weight)
    units.clear()
    Quantize(["int4"]).run(model, ctx, "quantize", {"quantize.int4"}, units.append)
    assert units == []  # done units are skipped (resume)
