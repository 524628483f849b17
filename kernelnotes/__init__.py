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
from .explorers import KernelSectionsExplorer, NadarayaWatsonExplorer, TrainingReplayExplorer
from .heads import (
    head_weights,
    induction_head,
    positional_head,
    previous_token_head,
    residual_stream,
)
from .kernels import exp_dot, gaussian, imq, polynomial, squared_distances
from .linear import FavorFeatures, LinearAttention, linear_attention
from .mlp import MLP
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
from .superposition import (
    ToyModel,
    angular_gaps,
    feature_importance,
    sparse_features,
    superposition_geometry,
)
from .toy import (
    AssociativeRecall,
    AttentionOnlyTransformer,
    RepeatedBlocks,
    TrainingHistory,
    head_scores,
    induction_targets,
    next_token_accuracy,
    prefix_matching_score,
    previous_token_score,
    score_decomposition,
    train_transformer,
)
from .training import ModelStack, train_regression, train_toy_model
from .yat import YatLayer

# The Yat kernel function stays at kernelnotes.kernels.yat / kernelnotes.yat.yat: the
# name kernelnotes.yat is the submodule, and exporting the function here would shadow it.

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "AssociativeRecall",
    "AttentionOnlyTransformer",
    "FavorFeatures",
    "KernelRidge",
    "KernelSectionsExplorer",
    "LinearAttention",
    "ModelStack",
    "NadarayaWatsonExplorer",
    "RepeatedBlocks",
    "ToyModel",
    "TrainingHistory",
    "TrainingReplayExplorer",
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
    "head_scores",
    "head_weights",
    "imq",
    "induction_head",
    "induction_targets",
    "is_psd",
    "kernel_ridge",
    "l2_normalize",
    "linear_attention",
    "loewner_gap",
    "min_eigenvalue",
    "nadaraya_watson",
    "next_token_accuracy",
    "polynomial",
    "positional_head",
    "prefix_matching_score",
    "previous_token_head",
    "previous_token_score",
    "psd_tolerance",
    "qk_normalize",
    "residual_stream",
    "rkhs_norm",
    "score_decomposition",
    "softmax_attention",
    "sparse_features",
    "squared_distances",
    "superposition_geometry",
    "train_regression",
    "train_toy_model",
    "train_transformer",
]
