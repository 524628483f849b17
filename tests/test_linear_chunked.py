"""The chunked torch algorithm (kernelnotes.linear.chunked) against the reference, and its
memory, linear in the sequence."""

import pytest
import torch
from helpers import F64, explicit, random_qkv, rel_err

from kernelnotes import linear_attention
from kernelnotes.linear import chunked as chunked_module
from kernelnotes.measure import peak_memory

VALUE_DIM = {16: 24, 60: 33, 64: 64, 128: 40}


@pytest.mark.parametrize("backend", ["recurrent", "torch"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [16, 60, 64, 128])
@pytest.mark.parametrize("seq", [1, 63, 500, 1000])
def test_backends_match_the_reference(seq, d, causal, backend):
    q, k, v = random_qkv(seq + d, seq, d, VALUE_DIM[d])
    ref = linear_attention(q, k, v, causal=causal, backend="quadratic")
    out = linear_attention(q, k, v, causal=causal, backend=backend)
    assert out.shape == (2, 3, seq, VALUE_DIM[d]) and out.dtype == F64
    assert rel_err(out, ref) < 1e-12
    # float32 inputs, compared with the float64 reference of the same (rounded) inputs
    q32, k32, v32 = (x.float() for x in (q, k, v))
    out32 = linear_attention(q32, k32, v32, causal=causal, backend=backend)
    assert out32.dtype == torch.float32
    assert rel_err(out32, explicit(q32, k32, v32, causal=causal)) < 1e-5


def test_causal_torch_backend_memory_is_linear_in_seq():
    d = dv = 64
    peaks = {}
    for seq in (2048, 4096):
        q, k, v = random_qkv(22, seq, d, dv, lead=(1, 1), dtype=torch.float32)
        with torch.no_grad():
            _, peaks[seq] = peak_memory(linear_attention, q, k, v, causal=True, backend="torch")
    assert 1.8 < peaks[4096] / peaks[2048] < 2.2  # doubles with seq: linear
    # and stays far below one seq x dk x dv float32 tensor (what a naive cumsum would build)
    assert peaks[4096] < 4096 * d * dv * 4 / 4
    with torch.no_grad():  # while the quadratic reference needs seq^2
        _, quadratic = peak_memory(linear_attention, q, k, v, causal=True, backend="quadratic")
    assert quadratic > 4096 ** 2 * 4


@pytest.mark.parametrize("causal", [False, True])
def test_blocks_carry_the_state_between_them(monkeypatch, causal):
    # the smallest blocks (4 chunks of 64) on an odd length: 4 blocks and a short one,
    # outputs, final state and gradients against the quadratic reference
    monkeypatch.setattr(chunked_module, "BLOCK_BYTES", 1)
    q, k, v = random_qkv(70, 1001, 16, 24)
    g = torch.Generator().manual_seed(71)
    state = (torch.randn(2, 3, 16, 24, generator=g, dtype=F64),
             torch.rand(2, 3, 16, generator=g, dtype=F64) + 1)
    results, grads = [], []
    for backend in ("torch", "quadratic"):
        leaves = [x.detach().requires_grad_() for x in (q, k, v)]
        out, (S, z) = linear_attention(*leaves, causal=causal, backend=backend,
                                       initial_state=state, output_final_state=True)
        (out.square().sum() + S.sum() + z.sum()).backward()
        results.append((out, S, z))
        grads.append([x.grad for x in leaves])
    for got, ref in zip((*results[0], *grads[0]), (*results[1], *grads[1]), strict=True):
        assert rel_err(got, ref) < 1e-12
