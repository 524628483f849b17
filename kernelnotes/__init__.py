"""kernelnotes: the companion package of the book *Attention is a Kernel*."""

from .attention import attention_as_nadaraya_watson, causal_mask, softmax_attention
from .kernels import exp_dot, gaussian, imq, polynomial, squared_distances
from .rkhs import (
    KernelRidge,
    gram,
    is_psd,
    kernel_ridge,
    loewner_gap,
    min_eigenvalue,
    psd_tolerance,
    rkhs_norm,
)
from .smoothing import nadaraya_watson
from .yat import YatLayer

# The Yat kernel function stays at kernelnotes.kernels.yat / kernelnotes.yat.yat: the
# name kernelnotes.yat is the submodule, and exporting the function here would shadow it.

__version__ = "0.1.0"

__all__ = [
    "KernelRidge",
    "YatLayer",
    "__version__",
    "attention_as_nadaraya_watson",
    "causal_mask",
    "exp_dot",
    "gaussian",
    "gram",
    "imq",
    "is_psd",
    "kernel_ridge",
    "loewner_gap",
    "min_eigenvalue",
    "nadaraya_watson",
    "polynomial",
    "psd_tolerance",
    "rkhs_norm",
    "softmax_attention",
    "squared_distances",
]
