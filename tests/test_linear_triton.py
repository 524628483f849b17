"""The Triton backend of linear_attention against the float64 quadratic reference.

Without CUDA these run the kernels through the Triton interpreter on CPU tensors
(tests/conftest.py sets TRITON_INTERPRET=1 before triton is imported) in float32 and
float16, on a representative subset of shapes: the interpreter is slow. With CUDA the
same tests run on the GPU, and the CUDA-only tests below add the full grid of lengths and
head dims in float32, float16 and bfloat16. Command: see benchmarks/README.md.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton", reason="the triton package cannot be imported here")

from helpers import rel_err

from kernelnotes import FavorFeatures, linear_attention
from kernelnotes.linear import triton as lt
from kernelnotes.measure import peak_memory

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA and not lt.INTERPRET else "cpu"
if DEVICE == "cpu" and not lt.INTERPRET:
    pytest.skip("no CUDA device, and TRITON_INTERPRET=1 was not set before triton was "
                "imported", allow_module_level=True)

F64 = torch.float64
# relative-error bounds: float32 is exact up to summation order; half-precision inputs
# also round the output (2^-11 for float16, 2^-8 for bfloat16) and, on a GPU, use TF32 dots
TOL = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}
on_cuda = pytest.mark.skipif(DEVICE != "cuda", reason="needs a CUDA GPU")


def random_qkv(seed, seq, d, dv, *, lead=(2, 3), lk=None, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    lk = seq if lk is None else lk
    q = torch.randn(*lead, seq, d, generator=g)
    k = torch.randn(*lead, lk, d, generator=g)
    v = torch.randn(*lead, lk, dv, generator=g)
    return tuple(x.to(DEVICE, dtype) for x in (q, k, v))


def reference(q, k, v, **kwargs):
    """The quadratic backend in float64 on the same (already rounded) inputs."""
    return linear_attention(q.double(), k.double(), v.double(), backend="quadratic", **kwargs)


def check(q, k, v, tol=None, **kwargs):
    out = linear_attention(q, k, v, backend="triton", **kwargs)
    assert out.shape == (*q.shape[:-1], v.shape[-1]) and out.dtype == q.dtype
    assert out.device == q.device
    err = rel_err(out, reference(q, k, v, **kwargs))
    assert err < (tol or TOL[q.dtype]), err
    return out


# a representative subset for the interpreter: every length, every head dim, dv != dk,
# both masks and both interpreter dtypes appear at least once
SUBSET = [
    (1, 16, 16, True, torch.float32),
    (1, 64, 40, False, torch.float16),
    (63, 60, 33, True, torch.float32),
    (63, 128, 64, False, torch.float32),
    (500, 64, 64, True, torch.float16),
    (500, 16, 24, False, torch.float32),
    (1000, 128, 40, True, torch.float32),
    (1000, 60, 33, False, torch.float16),
]


@pytest.mark.parametrize("seq, d, dv, causal, dtype", SUBSET)
def test_triton_matches_the_reference(seq, d, dv, causal, dtype):
    check(*random_qkv(seq + d, seq, d, dv, dtype=dtype), causal=causal)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("feature_map", ["relu", "identity", "favor", "callable"])
def test_triton_feature_maps(feature_map, causal):
    q, k, v = random_qkv(1, 130, 32, 20)
    if feature_map == "identity":
        q, k = q.abs(), k.abs()
    elif feature_map == "favor":  # precomputed features of another width, through the kernel
        feature_map = FavorFeatures(32, 48, generator=torch.Generator().manual_seed(2))
        feature_map = feature_map.to(DEVICE)
        q, k = q / 4, k / 4
    elif feature_map == "callable":
        feature_map = torch.sigmoid
    check(q, k, v, feature_map=feature_map, causal=causal)


def test_triton_strided_broadcast_and_other_layouts():
    g = torch.Generator().manual_seed(3)
    # (batch, seq, heads, dim) storage seen as (batch, heads, seq, dim): read in place
    q = torch.randn(2, 70, 3, 16, generator=g).to(DEVICE).transpose(1, 2)
    k = torch.randn(2, 70, 3, 16, generator=g).to(DEVICE).transpose(1, 2)
    v = torch.randn(1, 1, 70, 8, generator=g).to(DEVICE)  # broadcast over batch and heads
    for causal in (False, True):
        check(q, k, v, causal=causal)
    q3, k3, v3 = random_qkv(4, 77, 16, 16, lead=(5,))  # one leading dim
    check(q3, k3, v3, causal=True)
    q5, k5, v5 = random_qkv(5, 20, 16, 16, lead=(2, 2, 2))  # three leading dims
    check(q5, k5, v5)


def test_triton_different_query_and_key_lengths():
    q, k, v = random_qkv(6, 45, 16, 12, lk=130)
    check(q, k, v)


def test_kernel_launcher_rejects_what_would_read_out_of_bounds():
    # linear_attention broadcasts and checks first; the launcher is public, so it checks too
    q, k, v = random_qkv(6, 10, 16, 8)
    call = lt.linear_attention_triton
    with pytest.raises(ValueError, match="leading dims"):
        call(q, k[:1, :1], v[:1, :1], feature="elu+1", causal=False, eps=1e-6)
    with pytest.raises(ValueError, match="causal"):
        call(q[..., :5, :], k, v, feature="elu+1", causal=True, eps=1e-6)
    with pytest.raises(ValueError, match=r"\(\.\.\., S, dv\)"):
        call(q, k, v[..., :7, :], feature="elu+1", causal=False, eps=1e-6)
    with pytest.raises(ValueError, match="feature"):
        call(q, k, v, feature="softmax", causal=False, eps=1e-6)


def grads_against_reference(inputs, **kwargs):
    """Gradients of a weighted sum of the output: Triton backend, and float64 reference."""
    grads = []
    for backend, dtype in (("triton", None), ("quadratic", F64)):
        leaves = [x.detach().to(dtype or x.dtype).requires_grad_() for x in inputs]
        out = linear_attention(*leaves, backend=backend, **kwargs)
        weight = torch.linspace(-1, 1, out.numel(), dtype=F64, device=out.device)
        (out.double() * weight.view(out.shape)).sum().backward()
        grads.append([x.grad for x in leaves])
    return zip(*grads, strict=True)


@pytest.mark.parametrize("feature", ["elu+1", "relu", "identity"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("causal", [False, True])
def test_triton_backward_matches_the_reference(causal, dtype, feature):
    # the native backward kernels against autograd of the float64 reference, at odd sizes,
    # with gradients flowing to the initial state and from the final state as well
    q, k, v = random_qkv(7, 77, 13, 21, dtype=dtype)
    if feature == "identity":
        q, k = q.abs(), k.abs()
    g = torch.Generator().manual_seed(8)
    S0 = torch.randn(2, 3, 13, 21, generator=g).to(DEVICE)
    z0 = (torch.rand(2, 3, 13, generator=g) + 1).to(DEVICE)
    grads = []
    for backend, cast in (("triton", lambda x: x), ("quadratic", lambda x: x.double())):
        leaves = [cast(x).detach().requires_grad_() for x in (q, k, v, S0, z0)]
        out, (S, z) = linear_attention(*leaves[:3], feature_map=feature, causal=causal,
                                       backend=backend, initial_state=leaves[3:],
                                       output_final_state=True)
        weight = torch.linspace(-1, 1, out.numel(), dtype=F64, device=out.device)
        loss = (out.double() * weight.view(out.shape)).sum() + S.double().sum()
        (loss + z.double().square().sum()).backward()
        grads.append([x.grad for x in leaves])
    for x, grad, ref in zip((q, k, v, S0, z0), *grads, strict=True):
        assert grad.dtype == x.dtype
        assert rel_err(grad, ref) < TOL[dtype]


def test_triton_backward_memory_is_linear_in_seq():
    peaks = {}
    for seq in (512, 1024):
        q, k, v = (x.requires_grad_() for x in random_qkv(9, seq, 32, 32, lead=(1, 1)))

        def forward_backward(q=q, k=k, v=v):
            linear_attention(q, k, v, causal=True, backend="triton").sum().backward()

        _, peaks[seq] = peak_memory(forward_backward)
    assert 1.6 < peaks[1024] / peaks[512] < 2.4  # doubles with seq: linear
    assert peaks[1024] < 1024 ** 2 * 4  # far below one seq x seq float32 matrix


def test_triton_gradients_through_favor_features():
    favor = FavorFeatures(16, 32, generator=torch.Generator().manual_seed(8)).to(DEVICE)
    q, k, v = (x.requires_grad_() for x in random_qkv(9, 40, 16, 4))
    out = linear_attention(q / 4, k / 4, v, feature_map=favor, causal=True, backend="triton")
    out.sum().backward()
    ref_inputs = [x.detach().double().requires_grad_() for x in (q, k, v)]
    linear_attention(ref_inputs[0] / 4, ref_inputs[1] / 4, ref_inputs[2], feature_map=favor,
                     causal=True, backend="quadratic").sum().backward()
    for x, ref in zip((q, k, v), ref_inputs, strict=True):
        assert rel_err(x.grad, ref.grad) < 1e-5


def test_triton_float16_long_sequence_sums_stay_finite():
    # phi(k) is 8 to 10 per entry, so the key sum z passes 65504 (float16's largest number)
    # after about 7000 keys: the kernel must accumulate in float32
    seq = 65536 if DEVICE == "cuda" else 8192  # the interpreter is slow
    g = torch.Generator().manual_seed(10)
    k = (7 + 2 * torch.rand(1, 1, seq, 16, generator=g)).half().to(DEVICE)
    q = (1 + torch.rand(1, 1, seq, 16, generator=g)).half().to(DEVICE)
    v = (1 + 0.1 * torch.randn(1, 1, seq, 16, generator=g)).half().to(DEVICE)
    assert not torch.isfinite(torch.nn.functional.elu(k.float()).add(1).half().sum(-2)).all()
    for causal in (False, True):
        out = linear_attention(q, k, v, causal=causal, backend="triton")
        assert torch.isfinite(out).all()
        ref = linear_attention(q.double(), k.double(), v.double(), causal=causal,
                               backend="torch")
        assert rel_err(out, ref) < TOL[torch.float16]


# The interpreter does not compile the kernel. This compiles it for an H100 (sm_90), with
# the installed Triton and its bundled ptxas, in a process without TRITON_INTERPRET: type or
# layout errors that only the compiler sees fail here, in CI, without a GPU.
AHEAD_OF_TIME = textwrap.dedent("""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernelnotes.linear import triton as lt

    FLOAT32_POINTERS = {"S0", "Z0", "SF", "ZF", "DELTA", "DEN", "DQ", "DKEYS", "DVALUES",
                        "DSF", "DZF", "DS0", "DZ0"}
    kernels = (lt._linear_attention_kernel, lt._backward_q_kernel, lt._backward_kv_kernel)
    for dtype, feature, causal, precision, block_d in [
            ("fp16", 1, True, "tf32", 64), ("fp32", 2, True, "ieee", 128),
            ("bf16", 0, False, "tf32", 256)]:
        for kernel in kernels:
            block_t, block_v = lt._blocks(block_d, causal or kernel is not kernels[0],
                                          precision)
            constants = {"FEATURE": feature, "CAUSAL": causal, "HAS_INITIAL": causal,
                         "IS_VARLEN": not causal, "PRECISION": precision,
                         "BT": block_t, "BD": block_d, "BV": block_v}
            constants = {n: c for n, c in constants.items() if n in kernel.arg_names}
            signature = {name: "constexpr" if name in constants
                         else "*" + dtype if name in ("Q", "K", "V", "O", "G")
                         else "*i32" if name == "CU"
                         else "*fp32" if name in FLOAT32_POINTERS
                         else "fp32" if name == "eps"
                         else "i64" if name.startswith("s") else "i32"
                         for name in kernel.arg_names}
            triton.compile(ASTSource(kernel, signature, constants),
                           target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": 8, "num_stages": 2})
    print("compiled")
""")


@pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU the kernels are compiled and run")
def test_kernel_compiles_for_an_h100():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 notice
    result = subprocess.run([sys.executable, "-c", AHEAD_OF_TIME], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "compiled" in result.stdout, result.stderr[-3000:]


# --- CUDA only --------------------------------------------------------------------------------

@on_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [16, 60, 64, 128])
@pytest.mark.parametrize("seq", [1, 63, 500, 1000])
def test_cuda_full_grid(seq, d, causal, dtype):
    check(*random_qkv(seq + d, seq, d, {16: 24, 60: 33, 64: 64, 128: 40}[d], dtype=dtype),
          causal=causal)


@on_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_large_shapes(dtype):
    # the largest shapes of the flash-linear-attention tests: (2, 8 heads, 2048, 256)
    for d in (64, 256):
        for causal in (False, True):
            check(*random_qkv(11, 2048, d, d, lead=(2, 8), dtype=dtype), causal=causal)


@on_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_torch_backend_half_precision(dtype):
    for causal in (False, True):
        q, k, v = random_qkv(12, 700, 60, 33, dtype=dtype)
        out = linear_attention(q, k, v, causal=causal, backend="torch")
        assert rel_err(out, reference(q, k, v, causal=causal)) < 1e-2


@on_cuda
def test_cuda_auto_uses_triton_and_tf32_is_close():
    q, k, v = random_qkv(13, 300, 64, 64)
    auto = linear_attention(q, k, v, causal=True)
    assert torch.equal(auto, linear_attention(q, k, v, causal=True, backend="triton"))
    fast, _ = lt.linear_attention_triton(q, k, v, feature="elu+1", causal=True, eps=1e-6,
                                         precision="tf32")
    assert rel_err(fast, reference(q, k, v, causal=True)) < 3e-3


@on_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_gradients(dtype):
    for causal in (False, True):
        inputs = random_qkv(14, 257, 64, 32, dtype=dtype)
        for grad, ref in grads_against_reference(inputs, causal=causal):
            assert grad.dtype == dtype
            assert rel_err(grad, ref) < 10 * TOL[dtype]
