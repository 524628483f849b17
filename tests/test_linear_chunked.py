"""The chunked torch algorithms (kernelnotes.linear.chunked) against the reference: the
autograd one (inputs that require grad) and the streamed one (inference), and their memory,
linear in the sequence."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import F64, explicit, random_qkv, rel_err

from kernelnotes import FavorFeatures, linear_attention
from kernelnotes.linear import attention as attention_module
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
    peaks, graph_peaks = {}, {}
    for seq in (2048, 4096):
        q, k, v = random_qkv(22, seq, d, dv, lead=(1, 1), dtype=torch.float32)
        with torch.no_grad():  # streamed: the output and a working set of fixed size
            _, peaks[seq] = peak_memory(linear_attention, q, k, v, causal=True, backend="torch")
        leaves = [x.requires_grad_() for x in (q, k, v)]  # the autograd algorithm
        _, graph_peaks[seq] = peak_memory(linear_attention, *leaves, causal=True,
                                          backend="torch")
    out_growth = 2048 * dv * 4
    assert abs(peaks[4096] - peaks[2048] - out_growth) < 0.05 * out_growth
    assert peaks[2048] - 2048 * dv * 4 < 4 * chunked_module.STREAM_BYTES
    assert 1.8 < graph_peaks[4096] / graph_peaks[2048] < 2.2  # doubles with seq: linear
    # and stays far below one seq x dk x dv float32 tensor (what a naive cumsum would build)
    assert graph_peaks[4096] < 4096 * d * dv * 4 / 4
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


# --- the streamed (inference) algorithm ------------------------------------------------------

def favor(d):
    return FavorFeatures(d, 2 * d + 3, generator=torch.Generator().manual_seed(d))


def polynomial(x):
    """Degree-2 features (``m = d^2``), a plain callable: applied to the whole inputs."""
    return (x[..., :, None] * x[..., None, :]).flatten(-2)


#: (name, the feature map for head dim d, a transform of the inputs the map needs)
MAPS = [("elu+1", lambda d: "elu+1", None),
        ("relu", lambda d: "relu", None),
        ("identity", lambda d: "identity", F.softplus),
        ("favor", favor, lambda x: x * x.shape[-1] ** -0.25),
        ("polynomial", lambda d: polynomial, lambda x: x / 2)]


@pytest.fixture
def small_blocks(monkeypatch):
    """Small blocks, so that every loop runs several times at float64 and d = 16: long
    sequences in blocks of 4 chunks of 64 rows (non-causal) or 2 (causal), one head each;
    sequences of one chunk in groups of 4 heads (non-causal) or 2 (causal)."""
    monkeypatch.setattr(chunked_module, "STREAM_BYTES", 4 * 64 * 16 * 8)
    monkeypatch.setattr(chunked_module, "CAUSAL_ROWS", 128)


def run_both(q, k, v, **kwargs):
    """The outputs of the streamed algorithm (under no_grad) and the autograd one (leaves)."""
    with torch.no_grad():
        streamed = linear_attention(q, k, v, backend="torch", **kwargs)
    leaves = [x.detach().requires_grad_() for x in (q, k, v)]
    graph = linear_attention(*leaves, backend="torch", **kwargs)
    return streamed, graph


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seq", [1, 63, 64, 129, 300])
@pytest.mark.parametrize("name, feature_map, transform", MAPS)
def test_streamed_matches_the_reference(small_blocks, name, feature_map, transform, seq,
                                        causal):
    # odd lengths (one row, under a chunk, a chunk, over a block, blocks and a partial
    # chunk), five heads, every kind of feature map; float64 to 1e-12
    d, dv = (4, 5) if name == "polynomial" else (16, 7)
    q, k, v = random_qkv(seq + len(name), seq, d, dv, lead=(5, 1))
    if transform is not None:
        q, k = transform(q), transform(k)
    phi = feature_map(d)
    ref = linear_attention(q, k, v, feature_map=phi, causal=causal, backend="quadratic")
    for out in run_both(q, k, v, feature_map=phi, causal=causal):
        assert out.shape == (5, 1, seq, dv) and out.dtype == F64
        assert rel_err(out, ref) < 1e-12


@pytest.mark.parametrize("causal", [False, True])
def test_streamed_on_two_threads_groups_heads_and_matches(small_blocks, causal):
    # two threads: non-causal blocks are two heads of 4 chunks (one head each on one
    # thread); five heads, so the last group is a single head
    q, k, v = random_qkv(91, 300, 16, 7, lead=(5, 1))
    ref = linear_attention(q, k, v, causal=causal, backend="quadratic")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for out in run_both(q, k, v, causal=causal):
            assert rel_err(out, ref) < 1e-12
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("causal", [False, True])
def test_streamed_float32_against_float64_definition(small_blocks, causal):
    q, k, v = random_qkv(80, 517, 16, 9, lead=(2, 3), dtype=torch.float32)
    with torch.no_grad():
        out = linear_attention(q, k, v, causal=causal)
    assert out.dtype == torch.float32
    assert rel_err(out, explicit(q, k, v, causal=causal)) < 1e-5


@pytest.mark.parametrize("lq, lk", [(1, 300), (300, 1), (200, 77)])
def test_streamed_different_query_and_key_lengths(small_blocks, lq, lk):
    q, k, v = random_qkv(81, lq, 16, 5, lk=lk, lead=(3,))
    with torch.no_grad():
        out = linear_attention(q, k, v)
    assert rel_err(out, explicit(q, k, v)) < 1e-12


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seq", [1, 70, 301])
def test_streamed_state_in_and_out(small_blocks, seq, causal):
    # a broadcast initial state (one for all batch entries), outputs and final state
    # against the quadratic reference; the state given is not modified
    q, k, v = random_qkv(82, seq, 16, 6, lead=(2, 3))
    g = torch.Generator().manual_seed(83)
    state = (torch.randn(3, 16, 6, generator=g, dtype=F64),
             torch.rand(3, 16, generator=g, dtype=F64) + 1)
    kept = tuple(x.clone() for x in state)
    ref, (ref_S, ref_z) = linear_attention(q, k, v, causal=causal, backend="quadratic",
                                           initial_state=state, output_final_state=True)
    for out, (S, z) in run_both(q, k, v, causal=causal, initial_state=state,
                                output_final_state=True):
        assert rel_err(out, ref) < 1e-12
        assert rel_err(S, ref_S) < 1e-12 and rel_err(z, ref_z) < 1e-12
    assert all(torch.equal(a, b) for a, b in zip(state, kept, strict=True))


@pytest.mark.parametrize("causal", [False, True])
def test_streamed_packed_sequences(small_blocks, causal):
    lengths = [1, 0, 130, 64, 257]
    bounds = [0, *itertools.accumulate(lengths)]
    q, k, v = random_qkv(84, bounds[-1], 16, 6, lead=(1, 3))
    g = torch.Generator().manual_seed(85)
    state = (torch.randn(len(lengths), 3, 16, 6, generator=g, dtype=F64),
             torch.rand(len(lengths), 3, 16, generator=g, dtype=F64) + 1)
    cu_seqlens = torch.tensor(bounds)
    with torch.no_grad():
        out, (S, z) = linear_attention(q, k, v, causal=causal, initial_state=state,
                                       output_final_state=True, cu_seqlens=cu_seqlens)
    for n, (first, stop) in enumerate(itertools.pairwise(bounds)):
        rows = slice(first, stop)
        ref, (ref_S, ref_z) = linear_attention(
            q[..., rows, :], k[..., rows, :], v[..., rows, :], causal=causal,
            backend="quadratic", initial_state=(state[0][n:n + 1], state[1][n:n + 1]),
            output_final_state=True)
        if stop > first:
            assert rel_err(out[..., rows, :], ref) < 1e-12
        assert rel_err(S[n:n + 1], ref_S) < 1e-12 and rel_err(z[n:n + 1], ref_z) < 1e-12


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("causal", [False, True])
def test_streamed_half_precision(small_blocks, causal, dtype, tol):
    q, k, v = random_qkv(86, 200, 16, 8, lead=(2, 3), dtype=dtype)
    with torch.no_grad():
        out, (S, z) = linear_attention(q, k, v, causal=causal, output_final_state=True)
    assert out.dtype == dtype and S.dtype == z.dtype == torch.float32
    assert rel_err(out, explicit(q, k, v, causal=causal)) < tol


@pytest.mark.parametrize("causal", [False, True])
def test_streamed_runs_for_inference_only(monkeypatch, causal):
    # no_grad, or plain tensors with a map of ours: streamed; inputs that require grad, or
    # a plain callable with grad enabled (it may hold parameters): the autograd algorithm
    calls = []

    def spy(*args):
        calls.append(True)
        return chunked_module.streamed(*args)

    monkeypatch.setattr(attention_module, "streamed", spy)
    q, k, v = random_qkv(87, 70, 8, 5)
    for feature_map, grad, needs_grad, streams in (
            ("elu+1", False, False, True), ("elu+1", True, False, True),
            (favor(8), True, False, True), ("elu+1", True, True, False),
            (torch.relu, True, False, False), (torch.relu, False, False, True)):
        calls.clear()
        with torch.set_grad_enabled(grad):
            out = linear_attention(q, k, v.detach().requires_grad_(needs_grad), causal=causal,
                                   feature_map=feature_map)
        assert bool(calls) == streams and out.requires_grad == (grad and needs_grad)


@pytest.mark.parametrize("causal", [False, True])
def test_torch_compile_under_no_grad(causal):
    # compiling traces the autograd algorithm (no out= writes), inference included
    compiled = torch.compile(linear_attention, fullgraph=True, backend="aot_eager")
    q, k, v = random_qkv(88, 75, 8, 5, dtype=torch.float32)
    with torch.no_grad():
        out = compiled(q, k, v, causal=causal)
    assert rel_err(out, explicit(q, k, v, causal=causal)) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_streamed_strided_and_broadcast_inputs(small_blocks, causal):
    # heads-second views of (B, T, H, d) tensors, and a query batch that broadcasts
    g = torch.Generator().manual_seed(89)
    q, k, v = (torch.randn(2, 150, 3, d, generator=g, dtype=F64).transpose(1, 2)
               for d in (16, 16, 7))
    q_one = q[:1]  # (1, 3, 150, 16) against keys (2, 3, 150, 16)
    for queries in (q, q_one):
        with torch.no_grad():
            out = linear_attention(queries, k, v, causal=causal)
        ref = explicit(queries.expand_as(k), k, v, causal=causal)
        assert out.shape == (2, 3, 150, 7) and rel_err(out, ref) < 1e-12
