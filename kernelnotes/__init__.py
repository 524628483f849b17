"""kernelnotes: the companion package of the book *Attention is a Kernel*."""

from .attention import (
    attention_as_nadaraya_watson,
    attention_contributions,
    causal_mask,
    gaussian_attention,
    l2_normalize,
    qk_normalize,
    softmax_attention,
)
from .explorers import KernelSectionsExplorer, NadarayaWatsonExplorer
from .heads import (
    head_weights,
    induction_head,
    positional_head,
    previous_token_head,
    residual_stream,
)
from .kernels import exp_dot, gaussian, imq, polynomial, squared_distances
from .linear import FavorFeatures, LinearAttention, linear_attention
from .mlp import (
    MLP,
    ToyModel,
    angular_gaps,
    feature_importance,
    sparse_features,
    superposition_geometry,
    train_regression,
    train_toy_model,
)
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
    "MLP",
    "FavorFeatures",
    "KernelRidge",
    "KernelSectionsExplorer",
    "LinearAttention",
    "NadarayaWatsonExplorer",
    "ToyModel",
    "YatLayer",
    "__version__",
    "angular_gaps",
    "attention_as_nadaraya_watson",
    "attention_contributions",
    "causal_mask",
    "exp_dot",
    "feature_importance",
    "gaussian",
    "gaussian_attention",
    "gram",
    "head_weights",
    "imq",
    "induction_head",
    "is_psd",
    "kernel_ridge",
    "l2_normalize",
    "linear_attention",
    "loewner_gap",
    "min_eigenvalue",
    "nadaraya_watson",
    "polynomial",
    "positional_head",
    "previous_token_head",
    "psd_tolerance",
    "qk_normalize",
    "residual_stream",
    "rkhs_norm",
    "softmax_attention",
    "sparse_features",
    "squared_distances",
    "superposition_geometry",
    "train_regression",
    "train_toy_model",
]
