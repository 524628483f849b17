"""The references (kernelnotes.linear.reference): the quadratic form is the definition, the
recurrent loop agrees with it, and both are Nadaraya-Watson with a factored kernel."""

import pytest
import torch
from helpers import explicit, random_qkv, rel_err

from kernelnotes import linear_attention, nadaraya_watson
from kernelnotes.linear import elu_plus_one
from kernelnotes.linear.reference import quadratic, recurrent


@pytest.mark.parametrize("causal", [False, True])
def test_quadratic_backend_is_the_definition(causal):
    q, k, v = random_qkv(0, 37, 5, 3)
    out = linear_attention(q, k, v, causal=causal, backend="quadratic")
    assert rel_err(out, explicit(q, k, v, causal=causal)) < 1e-13


def test_linear_attention_is_nadaraya_watson_with_a_factored_kernel():
    q, k, v = random_qkv(1, 20, 4, 2)

    def kernel(x, y):
        return elu_plus_one(x) @ elu_plus_one(y).mT

    mask = torch.ones(20, 20, dtype=torch.bool).tril()
    expected, _ = nadaraya_watson(q, k, v, kernel, mask=mask)
    out = linear_attention(q, k, v, causal=True, eps=1e-300, backend="quadratic")
    assert rel_err(out, expected) < 1e-13


@pytest.mark.parametrize("causal", [False, True])
def test_references_carry_a_state(causal):
    # the state of the first 13 keys, then the last 24: one pass, to float64 rounding
    q, k, v = random_qkv(44, 37, 5, 3)
    fq, fk = elu_plus_one(q), elu_plus_one(k)
    for algorithm in (quadratic, recurrent):
        out, S, z = algorithm(fq, fk, v, causal, 1e-6, None)
        torch.testing.assert_close(S, fk.mT @ v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(z, fk.sum(-2), rtol=1e-12, atol=1e-12)
        head, S1, z1 = algorithm(fq[..., :13, :], fk[..., :13, :], v[..., :13, :], causal,
                                 1e-6, None)
        tail, S2, z2 = algorithm(fq[..., 13:, :], fk[..., 13:, :], v[..., 13:, :], causal,
                                 1e-6, (S1, z1))
        torch.testing.assert_close((S2, z2), (S, z), rtol=1e-12, atol=1e-12)
        if causal:
            assert rel_err(torch.cat([head, tail], -2), out) < 1e-13
        else:  # the last queries attend over every key
            assert rel_err(tail, explicit(q[..., 13:, :], k, v)) < 1e-13
