"""Three causal attention heads built from explicit query and key projections.

Every head reads the same residual stream, one row per position ``j`` of a token sequence
``x_0 .. x_{n-1}``::

    h_j = [ e(x_j) | e(x_{j-1}) | cos(w j), sin(w j) | 1 | [j == 0] ]

- ``e(x)`` is the one-hot embedding of token ``x`` (``vocab_size`` entries; any orthonormal
  embedding gives the same scores).
- ``e(x_{j-1})`` is the embedding of the previous token, zero at ``j = 0``: what a sharp
  previous-token head writes into position ``j`` for a later induction head to read.
- ``(cos(w j), sin(w j))`` is a rotary-style positional encoding with angular step
  ``w = pi / (2 max_len)``, so every angle ``w (i - j)`` between two positions stays in
  ``[0, pi/2)`` and the cosine falls strictly with distance.
- a constant 1, and a flag that marks position 0 (the attention sink, where a real model
  usually has its beginning-of-sequence token).

A head is a pair of matrices ``W_Q, W_K``: ``q = h W_Q``, ``k = h W_K``. The scores
``q_i . k_j`` are the logits themselves, so the weights are the causal softmax with
``scale = 1`` (:func:`head_weights`).
"""

from __future__ import annotations

import math
from numbers import Integral

import torch

from ._validation import as_token_ids, check_float_dtype, check_positive
from .attention import softmax_attention

__all__ = [
    "head_weights",
    "induction_head",
    "positional_head",
    "previous_token_head",
    "residual_stream",
]




def _omega(n: int, max_len) -> float:
    if max_len is None:
        max_len = n
    if isinstance(max_len, bool) or not isinstance(max_len, Integral):
        raise TypeError(f"max_len must be an integer, got {type(max_len).__name__}")
    if max_len < n:
        raise ValueError(f"max_len must be an integer >= the sequence length {n}, "
                         f"got {max_len!r}")
    return math.pi / (2 * max_len)


def residual_stream(tokens, vocab_size: int, max_len: int | None = None,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """The features every head reads: ``(..., n, 2 vocab_size + 4)``, laid out as above.

    Parameters
    ----------
    tokens : integer ids ``(..., n)`` in ``[0, vocab_size)``.
    vocab_size : number of distinct tokens.
    max_len : longest sequence the positional encoding is laid out for; defaults to n.
    dtype : floating dtype of the result; defaults to torch's default dtype.
    """
    tokens, vocab_size = as_token_ids(tokens, vocab_size)
    n = tokens.shape[-1]
    omega = _omega(n, max_len)
    dtype = check_float_dtype(dtype)
    embed = torch.nn.functional.one_hot(tokens, vocab_size).to(dtype)
    previous = torch.zeros_like(embed)
    previous[..., 1:, :] = embed[..., :-1, :]
    angle = omega * torch.arange(n, dtype=dtype, device=tokens.device)
    position = torch.stack([angle.cos(), angle.sin()], dim=-1)
    constant = torch.ones(n, 1, dtype=dtype, device=tokens.device)
    sink = (torch.arange(n, device=tokens.device) == 0).to(dtype)[:, None]
    rest = torch.cat([position, constant, sink], dim=-1).expand(*embed.shape[:-1], 4)
    return torch.cat([embed, previous, rest], dim=-1)


def _slots(vocab_size: int) -> dict[str, slice]:
    """Where each group of features sits in the residual stream."""
    v = vocab_size
    return {"token": slice(0, v), "previous": slice(v, 2 * v),
            "position": slice(2 * v, 2 * v + 2), "constant": slice(2 * v + 2, 2 * v + 3),
            "sink": slice(2 * v + 3, 2 * v + 4)}


def _project(stream: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor):
    return stream @ w_q.to(stream), stream @ w_k.to(stream)


def positional_head(tokens, vocab_size: int, decay: float = 0.25, max_len: int | None = None,
                    dtype: torch.dtype | None = None):
    """A head whose weights fall off with distance ``i - j``, whatever the tokens.

    ``W_Q`` and ``W_K`` both copy the positional encoding, scaled by ``sqrt(beta)``, so
    ``q_i . k_j = beta cos(w (i - j))``: largest on the diagonal and strictly decreasing
    with distance. ``beta`` makes the logit drop from distance 0 to distance 1 equal
    ``decay``; further out the drop grows about like ``decay * distance^2``, so the weights
    follow roughly a Gaussian in ``i - j`` (a Gaussian kernel on the circle of encodings).

    Returns ``(q, k)``, each ``(..., n, 2)``.
    """
    stream = residual_stream(tokens, vocab_size, max_len, dtype)
    decay = check_positive(decay, "decay")
    omega = _omega(stream.shape[-2], max_len)
    root_beta = math.sqrt(decay / (1 - math.cos(omega)))
    slot = _slots(int(vocab_size))["position"]
    w = torch.zeros(stream.shape[-1], 2, dtype=torch.float64)
    w[slot] = root_beta * torch.eye(2, dtype=torch.float64)
    return _project(stream, w, w)


def previous_token_head(tokens, vocab_size: int, sharpness: float = 6.0,
                        max_len: int | None = None, dtype: torch.dtype | None = None):
    """A head in which token ``i`` attends to position ``i - 1`` (position 0 to itself).

    ``W_K`` rotates the positional encoding of key ``j`` forward by one step, to that of
    ``j + 1`` (the relative-position property of sinusoidal encodings), so
    ``q_i . k_j = beta cos(w (i - 1 - j))``, largest at ``j = i - 1``. ``beta`` makes the
    logit gap between ``i - 1`` and its nearest rivals ``i`` and ``i - 2`` equal
    ``sharpness``. Row 0 sees only key 0 under the causal mask and puts all its weight there.

    Returns ``(q, k)``, each ``(..., n, 2)``.
    """
    stream = residual_stream(tokens, vocab_size, max_len, dtype)
    sharpness = check_positive(sharpness, "sharpness")
    omega = _omega(stream.shape[-2], max_len)
    root_beta = math.sqrt(sharpness / (1 - math.cos(omega)))
    c, s = math.cos(omega), math.sin(omega)
    rotate = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)  # p_{j+1} = rotate @ p_j
    slot = _slots(int(vocab_size))["position"]
    w_q = torch.zeros(stream.shape[-1], 2, dtype=torch.float64)
    w_k = torch.zeros_like(w_q)
    w_q[slot] = root_beta * torch.eye(2, dtype=torch.float64)
    w_k[slot] = root_beta * rotate.T  # row-vector convention: k_j = p_j @ rotate^T
    return _project(stream, w_q, w_k)


def induction_head(tokens, vocab_size: int, sharpness: float = 16.0,
                   max_len: int | None = None, dtype: torch.dtype | None = None):
    """A head in which token ``i`` attends to the position right after an earlier copy of itself.

    The rule: query ``i`` attends to ``j = p + 1`` where ``p < i`` and ``x_p = x_i``, so
    that the value it reads is the token that followed the earlier occurrence (the token
    an induction circuit predicts next). The query carries ``e(x_i)``, the key carries
    ``e(x_{j-1})`` (the previous-token feature), and with ``beta = sharpness``::

        q_i . k_j = beta [x_{j-1} == x_i]  +  (beta/4) cos(w (i - j))  +  (beta/2) [j == 0]

    - match term: keys whose previous token equals the current token win;
    - recency term: among several earlier occurrences the most recent one wins (the others
      still get weight);
    - sink term: with no earlier occurrence every other key scores at most ``beta/4``, so
      the mass goes to position 0, the attention sink.

    A match beats the sink, and the sink beats every non-match, by at least ``beta/4``.

    Returns ``(q, k)``, each ``(..., n, vocab_size + 3)``.
    """
    stream = residual_stream(tokens, vocab_size, max_len, dtype)
    beta = check_positive(sharpness, "sharpness")
    slots = _slots(int(vocab_size))
    v = int(vocab_size)
    eye_v, eye_2 = torch.eye(v, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    # head dimensions: [match (v) | recency (2) | sink (1)]
    w_q = torch.zeros(stream.shape[-1], v + 3, dtype=torch.float64)
    w_k = torch.zeros_like(w_q)
    w_q[slots["token"], :v] = beta * eye_v
    w_k[slots["previous"], :v] = eye_v
    w_q[slots["position"], v:v + 2] = math.sqrt(beta / 4) * eye_2
    w_k[slots["position"], v:v + 2] = math.sqrt(beta / 4) * eye_2
    w_q[slots["constant"], v + 2] = beta / 2
    w_k[slots["sink"], v + 2] = 1.0
    return _project(stream, w_q, w_k)


def head_weights(q, k) -> torch.Tensor:
    """Causal attention weights ``softmax(q k^T)`` of a head built above (logits at scale 1)."""
    return softmax_attention(q, k, k, causal=True, scale=1.0)[1]
