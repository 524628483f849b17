"""Linear attention: Nadaraya-Watson with a kernel that factors, ``K(q, k) = phi(q) . phi(k)``.

Softmax attention normalises ``exp(q . k)`` over all keys, which costs ``O(L S d)``. When the
kernel is an inner product of feature maps the sums reassociate::

    out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)
          = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j))

and the two bracketed sums, ``S`` (``m x dv``) and ``z`` (``m``), are shared by every query:
the cost drops to ``O((L + S) m dv)`` (Katharopoulos et al., 2020). With a causal mask the
sums run over ``j <= i``, so ``S`` and ``z`` become the state of a recurrent network.

The modules, one concept each:

:mod:`~kernelnotes.linear.feature_maps`
    the :class:`FeatureMap` protocol, the registry of named maps, :class:`FavorFeatures`;
:mod:`~kernelnotes.linear.reference`
    the quadratic and recurrent references;
:mod:`~kernelnotes.linear.chunked`
    the reassociated torch algorithm, causal by chunks;
:mod:`~kernelnotes.linear.triton`
    the fused Triton kernels and their launcher;
:mod:`~kernelnotes.linear.attention`
    :func:`linear_attention`, which validates once and dispatches;
:mod:`~kernelnotes.linear.layer`
    the multi-head layer :class:`LinearAttention`.
"""

from .attention import BACKENDS, linear_attention
from .feature_maps import FEATURE_MAPS, FavorFeatures, FeatureMap, elu_plus_one
from .layer import LinearAttention

__all__ = [
    "BACKENDS",
    "FEATURE_MAPS",
    "FavorFeatures",
    "FeatureMap",
    "LinearAttention",
    "elu_plus_one",
    "linear_attention",
]
