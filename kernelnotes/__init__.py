"""kernelnotes: the companion package of the book *Attention is a Kernel*."""

from .attention import attention_as_nadaraya_watson, causal_mask, softmax_attention
from .kernels import exp_dot, gaussian, imq, polynomial, squared_distances
from .smoothing import nadaraya_watson

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "attention_as_nadaraya_watson",
    "causal_mask",
    "exp_dot",
    "gaussian",
    "imq",
    "nadaraya_watson",
    "polynomial",
    "softmax_attention",
    "squared_distances",
]
