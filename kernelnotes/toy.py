"""A small attention-only transformer that learns induction, and the tools to read it.

:class:`AttentionOnlyTransformer` is the model of Elhage et al. (2021) without MLPs and
without LayerNorm: token and position embeddings write a residual stream, each layer adds
the outputs of its heads to it, and an unembedding reads the next-token logits. Each head
is a kernel smoother over the positions ``j <= i``; the kernel is pluggable:
``"softmax"`` (``exp(q . k / sqrt(d_head))``, normalised) or any feature map that
:func:`kernelnotes.linear_attention` accepts (``"elu+1"``, ``"relu"``, a
:class:`~kernelnotes.FavorFeatures`, a callable), for which the weights are
``phi(q_i) . phi(k_j)`` normalised.

Two tasks produce ``(tokens, mask)`` batches; ``mask[b, i]`` marks the positions whose next
token ``tokens[b, i + 1]`` is scored (trained on and counted in the accuracy):

- :class:`RepeatedBlocks`: distinct random tokens in which a block of random length is
  copied to a random later offset; the tokens of the copy are predictable by induction
  only (no fixed position solves it, unless ``period`` is fixed: the trap).
- :class:`AssociativeRecall`: ``k1 v1 ... kN vN q a`` where ``q`` is one of the keys and
  ``a`` the value stored with it.

:func:`train_transformer` is a seeded AdamW loop that records checkpoints (loss, accuracy,
head scores, the attention maps of a probe sequence) for the book's replay explorer. The head scores
follow Olsson et al. (2022): :func:`previous_token_score` and :func:`prefix_matching_score`.
Single-threaded on one machine, the same seed gives the same numbers bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import (
    as_generator,
    as_tensor,
    as_token_ids,
    check_finite,
    check_float_dtype,
    check_int_at_least,
    check_positive_int,
    check_training_dtype,
    check_training_settings,
)
from .linear import FEATURE_MAPS, linear_attention

__all__ = [
    "AssociativeRecall",
    "AttentionOnlyTransformer",
    "RepeatedBlocks",
    "TrainingHistory",
    "head_scores",
    "induction_targets",
    "next_token_accuracy",
    "prefix_matching_score",
    "previous_token_score",
    "score_decomposition",
    "train_transformer",
]


def _uniform_int(low: torch.Tensor, high: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One integer uniform in ``[low, high]`` (inclusive) per entry."""
    u = torch.rand(low.shape, generator=g, dtype=torch.float64)
    return low + (u * (high - low + 1)).long().clamp(max=high - low)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class RepeatedBlocks:
    """Random distinct tokens with one block copied to a later, random offset.

    Each sequence draws ``seq_len`` distinct tokens, a block length ``L`` uniform in
    ``block_lengths`` (inclusive), a first start ``s1`` and a second start ``s2 >= s1 + L``
    (both uniform over what fits), and copies ``x[s1 : s1 + L]`` to ``x[s2 : s2 + L]``. The
    scored positions are ``s2 .. s2 + L - 2``: there the next token is the one that
    followed the current token's earlier occurrence, which an induction head retrieves.
    Because ``L``, ``s1`` and the lag ``s2 - s1`` all vary, no fixed position or lag solves
    the task.

    With ``period=P`` the lag is fixed, ``s2 = s1 + P``: then one head that attends to the
    position ``P - 1`` back solves it without induction (the trap a control must avoid).

    Parameters
    ----------
    vocab_size : number of token ids; at least ``seq_len`` (the tokens are distinct).
    seq_len : sequence length.
    block_lengths : ``(shortest, longest)`` block, ``2 <= shortest <= longest``,
        ``2 * longest <= seq_len``.
    period : ``None`` (random lag) or a fixed lag ``longest <= period <= seq_len - longest``.
    """

    vocab_size: int = 32
    seq_len: int = 24
    block_lengths: tuple[int, int] = (4, 8)
    period: int | None = None

    def __post_init__(self):
        check_int_at_least(self.seq_len, "seq_len", 4)
        if check_positive_int(self.vocab_size, "vocab_size") < self.seq_len:
            raise ValueError(f"vocab_size must be >= seq_len = {self.seq_len} (the tokens "
                             f"of a sequence are distinct), got {self.vocab_size}")
        lengths = self.block_lengths
        if not isinstance(lengths, tuple) or len(lengths) != 2:
            raise TypeError(f"block_lengths must be a tuple (shortest, longest), got "
                            f"{lengths!r}")
        low, high = (check_int_at_least(n, "block_lengths", 2) for n in lengths)
        if low > high or 2 * high > self.seq_len:
            raise ValueError(f"block_lengths must satisfy 2 <= shortest <= longest <= "
                             f"seq_len / 2 = {self.seq_len / 2}, got {lengths}")
        if self.period is not None:
            period = check_positive_int(self.period, "period")
            if not high <= period <= self.seq_len - high:
                raise ValueError(f"period must lie in [{high}, {self.seq_len - high}] so that "
                                 f"both copies fit, got {period}")

    def sample(self, batch_size: int, *, seed: int = 0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens, mask)``: ``(batch_size, seq_len)`` int64 ids and bool scored positions."""
        batch_size = check_positive_int(batch_size, "batch_size")
        g = as_generator(seed, generator)
        n = self.seq_len
        distinct = torch.rand(batch_size, self.vocab_size, generator=g).argsort(dim=-1)[:, :n]
        shortest, longest = self.block_lengths
        zeros = torch.zeros(batch_size, dtype=torch.long)
        length = _uniform_int(zeros + shortest, zeros + longest, g)
        if self.period is None:
            first = _uniform_int(zeros, n - 2 * length, g)
            second = _uniform_int(first + length, n - length, g)
        else:
            first = _uniform_int(zeros, n - self.period - length, g)
            second = first + self.period
        position = torch.arange(n)
        offset = position - second[:, None]
        in_copy = (offset >= 0) & (offset < length[:, None])
        source = torch.where(in_copy, first[:, None] + offset, position)
        tokens = distinct.gather(1, source)
        mask = (offset >= 0) & (offset < length[:, None] - 1)
        return tokens, mask


@dataclass(frozen=True)
class AssociativeRecall:
    """Key-value pairs in context, then a query key: ``k1 v1 ... kN vN q a``.

    Keys are distinct ids in ``[0, n_keys)``, values ids in ``[n_keys, n_keys + n_values)``
    drawn independently, the query ``q`` is one of the ``N`` keys, uniformly, and ``a`` is
    its value. The one scored position is the query (position ``2 N``), whose next token is
    ``a``. Sequences have ``2 N + 2`` tokens over ``vocab_size = n_keys + n_values`` ids.
    """

    n_pairs: int = 8
    n_keys: int = 16
    n_values: int = 16

    def __post_init__(self):
        check_positive_int(self.n_pairs, "n_pairs")
        check_positive_int(self.n_values, "n_values")
        if check_positive_int(self.n_keys, "n_keys") < self.n_pairs:
            raise ValueError(f"n_keys must be >= n_pairs = {self.n_pairs} (keys are "
                             f"distinct), got {self.n_keys}")

    @property
    def vocab_size(self) -> int:
        return self.n_keys + self.n_values

    @property
    def seq_len(self) -> int:
        return 2 * self.n_pairs + 2

    def sample(self, batch_size: int, *, seed: int = 0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens, mask)``: ``(batch_size, 2 N + 2)`` int64 ids and bool scored positions."""
        batch_size = check_positive_int(batch_size, "batch_size")
        g = as_generator(seed, generator)
        n = self.n_pairs
        keys = torch.rand(batch_size, self.n_keys, generator=g).argsort(dim=-1)[:, :n]
        values = self.n_keys + torch.randint(self.n_values, (batch_size, n), generator=g)
        asked = torch.randint(n, (batch_size, 1), generator=g)
        pairs = torch.stack([keys, values], dim=-1).reshape(batch_size, 2 * n)
        tokens = torch.cat([pairs, keys.gather(1, asked), values.gather(1, asked)], dim=1)
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, 2 * n] = True
        return tokens, mask


# --------------------------------------------------------------------------- the model


def _check_kernel(kernel):
    if isinstance(kernel, str):
        if kernel != "softmax" and kernel not in FEATURE_MAPS:
            raise ValueError(f"kernel must be 'softmax', one of {sorted(FEATURE_MAPS)}, a "
                             f"FavorFeatures or a callable feature map, got {kernel!r}")
    elif not callable(kernel):
        raise TypeError(f"kernel must be a string, a FavorFeatures or a callable, got "
                        f"{type(kernel).__name__}")
    return kernel


class AttentionOnlyTransformer(nn.Module):
    """Token and position embeddings, ``n_layers`` of attention heads, an unembedding.

    ``r_0 = E[x_i] + P[i]``; layer ``l`` adds ``sum_h A_h(r_l) V_h O_h`` to the stream;
    ``logits = r_L U``. No MLP, no LayerNorm, no biases. A head's weights are the causal
    kernel weights of its queries ``r W_Q`` and keys ``r W_K`` (module docstring).

    Parameters
    ----------
    vocab_size, max_len : token ids and the longest sequence.
    d_model : width of the residual stream.
    n_layers, d_head : layers, and the width of each head.
    n_heads : heads per layer, one count for every layer or a tuple of ``n_layers`` counts
        (one head in the last layer keeps the induction head from being shared between
        two redundant heads, which would hide it from a one-head ablation).
    kernel : ``"softmax"`` or a linear-attention feature map (module docstring).
    seed, generator : source of the initial weights (``generator`` wins when given).
    dtype : of the parameters (default: torch's default dtype).
    """

    def __init__(self, vocab_size: int, max_len: int, *, d_model: int = 32, n_layers: int = 2,
                 n_heads: int | tuple[int, ...] = 2, d_head: int = 16, kernel="softmax",
                 seed: int = 0, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.max_len = check_positive_int(max_len, "max_len")
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        if isinstance(n_heads, tuple):
            if len(n_heads) != self.n_layers:
                raise ValueError(f"n_heads must hold one count per layer ({self.n_layers}), "
                                 f"got {n_heads!r}")
            self.n_heads = tuple(check_positive_int(h, "n_heads") for h in n_heads)
        else:
            self.n_heads = (check_positive_int(n_heads, "n_heads"),) * self.n_layers
        self.d_head = check_positive_int(d_head, "d_head")
        # a FavorFeatures kernel is a module: assigning it registers its projection here
        self.kernel = _check_kernel(kernel)
        g = as_generator(seed, generator)
        dtype = check_float_dtype(dtype)

        def weight(*shape, fan_in):
            return nn.Parameter(torch.randn(*shape, generator=g, dtype=dtype)
                                / math.sqrt(fan_in))

        d, e = self.d_model, self.d_head
        self.embed = weight(self.vocab_size, d, fan_in=1)
        self.position = weight(self.max_len, d, fan_in=1)
        # per layer, one tensor per role with the heads stacked: w_q[layer][head] is (d, e)
        self.w_q = nn.ParameterList(weight(h, d, e, fan_in=d) for h in self.n_heads)
        self.w_k = nn.ParameterList(weight(h, d, e, fan_in=d) for h in self.n_heads)
        self.w_v = nn.ParameterList(weight(h, d, e, fan_in=d) for h in self.n_heads)
        self.w_o = nn.ParameterList(weight(h, e, d, fan_in=h * e) for h in self.n_heads)
        self.unembed = weight(d, self.vocab_size, fan_in=d)

    @property
    def heads(self) -> list[tuple[int, int]]:
        """Every ``(layer, head)``, layer by layer: the order of per-head results."""
        return [(layer, h) for layer, count in enumerate(self.n_heads) for h in range(count)]

    def with_kernel(self, kernel) -> AttentionOnlyTransformer:
        """A copy of this model, same weights, whose heads use ``kernel`` instead.

        For reading a trained head under another kernel, e.g. a softmax-trained induction
        head with linear-attention features; the copy's weights are independent tensors.
        """
        copy = AttentionOnlyTransformer(
            self.vocab_size, self.max_len, d_model=self.d_model, n_layers=self.n_layers,
            n_heads=self.n_heads, d_head=self.d_head, kernel=kernel,
            dtype=self.embed.dtype)
        copy = copy.to(self.embed.device)
        theirs = dict(copy.named_parameters())
        with torch.no_grad():
            for name, value in self.named_parameters():
                if not name.startswith("kernel."):  # a module kernel keeps its own state
                    theirs[name].copy_(value)
        return copy

    def extra_repr(self) -> str:
        kernel = self.kernel if isinstance(self.kernel, str) else type(self.kernel).__name__
        return (f"vocab_size={self.vocab_size}, max_len={self.max_len}, "
                f"d_model={self.d_model}, n_layers={self.n_layers}, n_heads={self.n_heads}, "
                f"d_head={self.d_head}, kernel={kernel}")

    def _check_heads(self, heads, name: str) -> set[tuple[int, int]]:
        try:
            heads = set(heads)
        except TypeError:  # not iterable, or unhashable entries
            raise TypeError(f"{name} must be an iterable of (layer, head) pairs, got "
                            f"{type(heads).__name__}") from None
        for head in heads:
            if (not isinstance(head, tuple) or len(head) != 2
                    or not all(isinstance(i, int) and not isinstance(i, bool) for i in head)):
                raise TypeError(f"{name} must hold (layer, head) pairs of integers, "
                                f"got {head!r}")
            if not (0 <= head[0] < self.n_layers and 0 <= head[1] < self.n_heads[head[0]]):
                raise ValueError(f"{name}: no head {head} in a model with {self.n_heads} "
                                 f"heads per layer")
        return heads

    def _weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Causal kernel weights ``(batch, heads, n, n)`` of queries and keys."""
        n = q.shape[-2]
        if self.kernel == "softmax":
            scores = (q @ k.mT) / math.sqrt(self.d_head)
            causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
            return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        # linear attention with the identity as values returns its own weight matrix
        eye = torch.eye(n, dtype=q.dtype, device=q.device)
        return linear_attention(q, k, eye, feature_map=self.kernel, causal=True,
                                backend="quadratic")

    def run_with_cache(self, tokens, *, ablate: Iterable[tuple[int, int]] = (),
                       score_scale: Mapping[tuple[int, int], float] | None = None):
        """Logits and everything the heads computed on the way.

        Parameters
        ----------
        tokens : ``(batch, n)`` or ``(n,)`` integer ids, ``n <= max_len``.
        ablate : ``(layer, head)`` pairs whose output is replaced by zero.
        score_scale : ``{(layer, head): c}`` multiplies that head's query by ``c``, so its
            scores ``q . k`` by ``c``: ``c = 1/t`` sets a temperature ``t`` (softmax sharpens
            as ``t -> 0``; a homogeneous feature map such as relu is unchanged).

        Returns
        -------
        logits : ``(batch, n, vocab_size)`` (``(n, vocab_size)`` for a 1-d input).
        cache : dict of lists over layers: ``"stream"`` (the residual stream entering each
            layer, ``(batch, n, d_model)``, plus the final one), ``"q"``, ``"k"``, ``"v"``
            ``(batch, heads, n, d_head)``, ``"weights"`` ``(batch, heads, n, n)`` and
            ``"out"`` ``(batch, heads, n, d_model)``, each head's write to the stream.
        """
        tokens, _ = as_token_ids(tokens, self.vocab_size)
        single = tokens.dim() == 1
        tokens = tokens[None] if single else tokens
        if tokens.dim() != 2 or tokens.shape[-1] > self.max_len:
            raise ValueError(f"tokens must have shape (batch, n) with n <= max_len = "
                             f"{self.max_len}, got {tuple(tokens.shape)}")
        ablated = self._check_heads(ablate, "ablate")
        if score_scale is not None and not isinstance(score_scale, Mapping):
            raise TypeError(f"score_scale must be a mapping {{(layer, head): c}} or None, got "
                            f"{type(score_scale).__name__}")
        scales = {} if score_scale is None else dict(score_scale)
        self._check_heads(scales, "score_scale")
        scales = {head: check_finite(c, f"score_scale[{head}]") for head, c in scales.items()}
        largest = torch.finfo(self.embed.dtype).max
        for head, c in scales.items():
            if abs(c) > largest:
                raise ValueError(f"score_scale[{head}] = {c:g} lies beyond the range of the "
                                 f"model's dtype {self.embed.dtype}")
        n = tokens.shape[-1]
        stream = self.embed[tokens] + self.position[:n]
        cache = {name: [] for name in ("stream", "q", "k", "v", "weights", "out")}
        for layer in range(self.n_layers):
            q = torch.einsum("bnd,hde->bhne", stream, self.w_q[layer])
            k = torch.einsum("bnd,hde->bhne", stream, self.w_k[layer])
            v = torch.einsum("bnd,hde->bhne", stream, self.w_v[layer])
            scale = q.new_ones(self.n_heads[layer])
            keep = q.new_ones(self.n_heads[layer])
            for (at, head), c in scales.items():
                if at == layer:
                    scale[head] = c
            for at, head in ablated:
                if at == layer:
                    keep[head] = 0
            q = q * scale[:, None, None]
            weights = self._weights(q, k)
            if any(at == layer for at, _ in scales) and not weights.isfinite().all():
                raise ValueError(f"score_scale {scales} makes the scores of layer {layer} "
                                 f"overflow {q.dtype}: choose scales nearer 1")
            out = torch.einsum("bhnm,bhme,hed->bhnd", weights, v, self.w_o[layer])
            out = out * keep[:, None, None]
            for name, value in zip(("stream", "q", "k", "v", "weights", "out"),
                                   (stream, q, k, v, weights, out), strict=True):
                cache[name].append(value)
            stream = stream + out.sum(dim=1)
        cache["stream"].append(stream)
        logits = stream @ self.unembed
        return (logits[0] if single else logits), cache

    def forward(self, tokens, *, ablate: Iterable[tuple[int, int]] = (),
                score_scale: Mapping[tuple[int, int], float] | None = None) -> torch.Tensor:
        """Next-token logits ``(batch, n, vocab_size)``; options as in :meth:`run_with_cache`."""
        return self.run_with_cache(tokens, ablate=ablate, score_scale=score_scale)[0]


# --------------------------------------------------------------------------- reading heads


def _weights_input(weights, n_min: int = 1) -> torch.Tensor:
    weights = as_tensor(weights, "weights")
    if weights.dim() < 3 or weights.shape[-1] != weights.shape[-2] or weights.shape[-1] < n_min:
        raise ValueError(f"weights must have shape (batch, ..., n, n) with n >= {n_min}, "
                         f"got {tuple(weights.shape)}")
    return weights


def previous_token_score(weights) -> torch.Tensor:
    """Mean attention from each position ``i >= 1`` to ``i - 1``.

    ``weights`` is ``(batch, ..., n, n)``; returns ``(...)``, averaged over the batch and
    the queries: 1 for a perfect previous-token head, ``mean 1/(i+1)`` for a uniform one.
    """
    weights = _weights_input(weights, n_min=2)
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))


def induction_targets(tokens) -> torch.Tensor:
    """Where an induction head should look: ``(batch, n, n)`` bool, True at ``[b, i, j]``
    when the token before key ``j`` is the query's token, ``x_{j-1} = x_i`` with ``j <= i``:
    the key right after an earlier occurrence of ``x_i``, whose token comes next if the
    earlier context repeats. ``tokens`` is ``(batch, n)`` integer ids.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() \
            or tokens.dtype == torch.bool:
        raise TypeError(f"tokens must be an integer torch.Tensor, got "
                        f"{getattr(tokens, 'dtype', type(tokens).__name__)}")
    if tokens.is_meta:
        raise ValueError("tokens is a meta tensor (a shape without data); pass token ids")
    if tokens.dim() != 2 or tokens.numel() == 0:
        raise ValueError(f"tokens must have shape (batch, n) with batch, n >= 1, got "
                         f"{tuple(tokens.shape)}")
    if tokens.min() < 0:
        raise ValueError(f"tokens must be ids >= 0, got {tokens.min().item()}")
    # -1 before position 0: no token there to match
    before = torch.cat([tokens.new_full((tokens.shape[0], 1), -1), tokens[:, :-1]], dim=1)
    return (before[:, None, :] == tokens[:, :, None]).tril()


def prefix_matching_score(weights, tokens) -> torch.Tensor:
    """Mean attention from a token to the positions right after its earlier occurrences.

    For each query ``i`` whose token occurred before (``x_p = x_i``, ``p < i``), the summed
    weight on the keys ``p + 1`` (:func:`induction_targets`), averaged over all such queries
    of the batch (Olsson et al., 2022). ``weights`` is ``(batch, ..., n, n)`` and ``tokens``
    ``(batch, n)``; returns ``(...)``. A ValueError if no token repeats (the score is then
    undefined).
    """
    weights = _weights_input(weights)
    batch, n = weights.shape[0], weights.shape[-1]
    match = induction_targets(tokens)
    if tokens.shape != (batch, n):
        raise ValueError(f"tokens must have shape (batch, n) = {(batch, n)} to match "
                         f"weights, got {tuple(tokens.shape)}")
    queries = match.any(dim=-1)
    if not queries.any():
        raise ValueError("tokens hold no repeated token, so no query has an earlier "
                         "occurrence to match: the prefix-matching score is undefined")
    extra = (1,) * (weights.dim() - 3)
    mass = (weights * match.view(batch, *extra, n, n)).sum(dim=-1)
    chosen = queries.view(batch, *extra, n).expand_as(mass)
    return (mass * chosen).sum(dim=(0, -1)) / chosen.sum(dim=(0, -1))


def head_scores(model: AttentionOnlyTransformer, tokens) -> tuple[torch.Tensor, torch.Tensor]:
    """``(previous_token, prefix_matching)`` on ``tokens`` ``(batch, n)``.

    Each is ``(number of heads,)``, one score per entry of ``model.heads``.
    """
    _check_model(model)
    with torch.no_grad():
        weights = torch.cat(model.run_with_cache(tokens)[1]["weights"], dim=1)
    return previous_token_score(weights), prefix_matching_score(weights, tokens)


def next_token_accuracy(model: AttentionOnlyTransformer, tokens, mask, *,
             ablate: Iterable[tuple[int, int]] = (),
             score_scale: Mapping[tuple[int, int], float] | None = None) -> float:
    """Fraction of the scored positions (``mask``) whose next token is the model's argmax."""
    _check_model(model)
    tokens, _ = as_token_ids(tokens, model.vocab_size)
    tokens, mask = _batch(tokens, mask)
    with torch.no_grad():
        return _accuracy(model(tokens, ablate=ablate, score_scale=score_scale), tokens, mask)


def _accuracy(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> float:
    right = logits[:, :-1].argmax(dim=-1) == tokens[:, 1:]
    return (right & mask[:, :-1]).sum().item() / mask[:, :-1].sum().item()


def score_decomposition(model: AttentionOnlyTransformer, tokens, layer: int,
                        head: int) -> dict[str, torch.Tensor]:
    """A head's scores ``q_i . k_j`` split by what wrote the key's residual stream.

    The key ``k_j = r_j W_K`` is linear in the stream ``r_j``, which is a sum of writes: the
    token embedding, the position embedding and the output of every head of the earlier
    layers. Returns ``{name: (batch, n, n)}`` with names ``"token"``, ``"position"`` and
    ``"L{l}H{h}"``; the parts sum to the head's full (unscaled) scores. K-composition
    (Elhage et al., 2021) is a key part written by an earlier head.
    """
    _check_model(model)
    (layer, head), = model._check_heads([(layer, head)], "(layer, head)")
    tokens, _ = as_token_ids(tokens, model.vocab_size)
    tokens = tokens if tokens.dim() == 2 else tokens[None]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        q = cache["q"][layer][:, head]
        parts = {"token": model.embed[tokens],
                 "position": model.position[:tokens.shape[-1]].expand(len(tokens), -1, -1)}
        for earlier in range(layer):
            for h in range(model.n_heads[earlier]):
                parts[f"L{earlier}H{h}"] = cache["out"][earlier][:, h]
        w_k = model.w_k[layer][head]
        return {name: q @ (part @ w_k).mT for name, part in parts.items()}


def _check_model(model) -> None:
    if not isinstance(model, AttentionOnlyTransformer):
        raise TypeError(f"model must be an AttentionOnlyTransformer, got "
                        f"{type(model).__name__}")


def _batch(tokens, mask) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool torch.Tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.is_meta:
        raise ValueError("mask is a meta tensor (a shape without data); pass a bool mask")
    if not isinstance(tokens, torch.Tensor) or tokens.shape != mask.shape or tokens.dim() != 2:
        raise ValueError(f"tokens and mask must be tensors of one shape (batch, n), got "
                         f"{tuple(getattr(tokens, 'shape', ()))} and {tuple(mask.shape)}")
    if not mask[:, :-1].any():
        raise ValueError("mask marks no position with a next token to predict")
    return tokens, mask


# --------------------------------------------------------------------------- training


@dataclass
class TrainingHistory:
    """What :func:`train_transformer` recorded.

    Attributes
    ----------
    losses : ``(steps,)`` float64, the training loss of every step's batch.
    checkpoints : ``(k,)`` int64, the number of updates done at each checkpoint (0 first).
    eval_loss, eval_accuracy : ``(k,)`` float64, on the fixed evaluation batch.
    heads : the ``(layer, head)`` pairs, in the order of the head axis below.
    previous_token, prefix_matching : ``(k, heads)`` head scores on that batch.
    probe_weights : ``(k, heads, n, n)`` attention weights on the probe sequence.
    probe_tokens : ``(n,)`` the probe sequence, the first of the evaluation batch.
    """

    losses: torch.Tensor
    checkpoints: torch.Tensor
    eval_loss: torch.Tensor
    eval_accuracy: torch.Tensor
    previous_token: torch.Tensor
    prefix_matching: torch.Tensor
    probe_weights: torch.Tensor
    probe_tokens: torch.Tensor
    heads: list[tuple[int, int]]


def _masked_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor):
    scored = mask[:, :-1]
    return F.cross_entropy(logits[:, :-1][scored], tokens[:, 1:][scored])


def train_transformer(model: AttentionOnlyTransformer, task, *, steps: int, batch_size: int = 32,
          lr: float = 1e-2, weight_decay: float = 0.0, seed: int = 0,
          generator: torch.Generator | None = None, eval_size: int = 256,
          record_every: int = 100, lr_schedule: str = "cosine") -> TrainingHistory:
    """Train ``model`` in place with AdamW on fresh batches of ``task`` (next-token loss).

    The loss is the cross-entropy of the next token at the scored positions only (the
    task's ``mask``). Every batch comes from one generator; a fixed evaluation batch of
    ``eval_size`` sequences, drawn first, measures the loss, accuracy and head scores at
    each checkpoint (every ``record_every`` updates, and at 0 and ``steps``); its first
    sequence is the probe whose attention maps are kept.

    Parameters
    ----------
    task : an object with ``sample(batch_size, generator=g) -> (tokens, mask)`` such as
        :class:`RepeatedBlocks` or :class:`AssociativeRecall`.
    steps, batch_size, lr, weight_decay : optimiser settings.
    seed, generator : the data's source of randomness (``generator`` wins when given).
    lr_schedule : ``"cosine"`` (default) lowers the learning rate from ``lr`` to 0 along a
        half cosine over the ``steps``; ``"constant"`` keeps it. The decay makes the end of
        training contract, so that rounding differences (another CPU, another BLAS) do not
        change the outcome: on the book's induction task, weights perturbed by a relative
        1e-5 ended at the same accuracy and head scores to three decimals, while at a
        constant rate a perturbation of 1e-7 moved the accuracy by 0.016.
    """
    _check_model(model)
    check_training_dtype(model.embed.dtype, "the model's parameter dtype")
    if not callable(getattr(task, "sample", None)):
        raise TypeError(f"task must have a sample(batch_size, generator=...) method, got "
                        f"{type(task).__name__}")
    steps, lr, weight_decay = check_training_settings(steps, lr, weight_decay)
    batch_size = check_positive_int(batch_size, "batch_size")
    record_every = check_positive_int(record_every, "record_every")
    if not isinstance(lr_schedule, str):
        raise TypeError(f"lr_schedule must be a string, got {type(lr_schedule).__name__}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    g = as_generator(seed, generator)
    eval_tokens, eval_mask = _batch(*task.sample(check_positive_int(eval_size, "eval_size"),
                                                 generator=g))
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = torch.empty(steps, dtype=torch.float64)
    records = []

    def record(step: int) -> None:
        with torch.no_grad():
            logits, cache = model.run_with_cache(eval_tokens)
            weights = torch.cat(cache["weights"], dim=1)
            loss = _masked_loss(logits, eval_tokens, eval_mask).item()
            if not (math.isfinite(loss) and weights.isfinite().all()):
                raise ValueError(f"training diverged: the evaluation loss is {loss} after "
                                 f"{step} updates; lower lr (now {lr:g}) or weight_decay")
            records.append((step, loss, _accuracy(logits, eval_tokens, eval_mask),
                            previous_token_score(weights),
                            prefix_matching_score(weights, eval_tokens), weights[0]))

    record(0)
    for step in range(steps):
        if lr_schedule == "cosine":
            optimiser.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        tokens, mask = task.sample(batch_size, generator=g)
        loss = _masked_loss(model(tokens), tokens, mask)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses[step] = loss.item()
        if (step + 1) % record_every == 0 or step + 1 == steps:
            record(step + 1)
    step, loss, acc, prev, prefix, probe = zip(*records, strict=True)
    return TrainingHistory(
        losses=losses,
        checkpoints=torch.tensor(step),
        eval_loss=torch.tensor(loss, dtype=torch.float64),
        eval_accuracy=torch.tensor(acc, dtype=torch.float64),
        previous_token=torch.stack(prev).double(),
        prefix_matching=torch.stack(prefix).double(),
        probe_weights=torch.stack(probe).double(),
        probe_tokens=eval_tokens[0],
        heads=model.heads,
    )
