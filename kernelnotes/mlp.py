"""The position-wise MLP, read the way attention is read, and the superposition toy model.

:class:`MLP` is ``W2 s(W1 x + b1) + b2``. The only decomposition of its output that the layer
itself offers is by hidden unit: ``out_o = sum_j W2[o, j] s(w_j . x + b1_j) + b2_o``
(:meth:`MLP.contributions`). Those shares are signed and unbounded and do not sum to 1,
unlike attention weights.

:class:`ToyModel` is the superposition toy model of Elhage et al. (2022): ``n`` sparse
features squeezed through ``m < n`` hidden dimensions, ``x' = ReLU(W^T W x + b)``, trained by
:func:`train_toy_model` on fresh synthetic batches. :func:`train_regression` is a small,
seeded, full- or mini-batch trainer for any module on a fixed regression data set.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import as_tensor, check_positive, check_same_dtype

__all__ = [
    "MLP",
    "ToyModel",
    "angular_gaps",
    "feature_importance",
    "sparse_features",
    "superposition_geometry",
    "train_regression",
    "train_toy_model",
]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(value).__name__}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return float(value)


def _generator(seed, generator) -> torch.Generator:
    """A CPU generator from ``generator`` or, failing that, from the integer ``seed``."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got "
                            f"{type(generator).__name__}")
        return generator
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _module_input(x, module: nn.Module, features: int, name: str = "x") -> torch.Tensor:
    """``x`` as a tensor ``(..., features)`` on the module's device and of its dtype."""
    param = next(module.parameters())
    x = as_tensor(x, name, like=param)
    if x.dim() < 1 or x.shape[-1] != features:
        raise ValueError(f"{name} must have shape (..., {features}), got {tuple(x.shape)}")
    check_same_dtype((x, name), (param, "the model's parameters"))
    return x


class MLP(nn.Module):
    """Two-layer perceptron ``W2 s(W1 x + b1) + b2`` acting on the last axis of its input.

    Parameters
    ----------
    in_features, hidden_features, out_features : layer widths.
    activation : ``"relu"`` (default), ``"gelu"`` or ``"tanh"``, applied elementwise.
    generator : optional ``torch.Generator`` for the initial weights (PyTorch's default
        ``nn.Linear`` scheme, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``).
    dtype : of the parameters (default: torch's default dtype).

    Attributes
    ----------
    hidden, readout : the two ``nn.Linear`` maps, ``(W1, b1)`` and ``(W2, b2)``.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int = 1, *,
                 activation: str = "relu", generator: torch.Generator | None = None,
                 dtype=None):
        super().__init__()
        for value, name in ((in_features, "in_features"), (hidden_features, "hidden_features"),
                            (out_features, "out_features")):
            _check_count(value, name)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.in_features, self.hidden_features = in_features, hidden_features
        self.out_features, self.activation = out_features, activation
        self.hidden = nn.Linear(in_features, hidden_features, dtype=dtype)
        self.readout = nn.Linear(hidden_features, out_features, dtype=dtype)
        if generator is not None:
            # Same distribution as nn.Linear's own initialisation, drawn from `generator`.
            with torch.no_grad():
                for layer in (self.hidden, self.readout):
                    bound = 1 / math.sqrt(layer.in_features)
                    for p in (layer.weight, layer.bias):
                        p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype)
                                * 2 * bound - bound)

    def hidden_activations(self, x) -> torch.Tensor:
        """``s(W1 x + b1)``: ``(..., hidden_features)`` for ``x`` of ``(..., in_features)``."""
        x = _module_input(x, self, self.in_features)
        return _ACTIVATIONS[self.activation](self.hidden(x))

    def forward(self, x) -> torch.Tensor:
        """``W2 s(W1 x + b1) + b2``: shape ``(..., out_features)``."""
        return self.readout(self.hidden_activations(x))

    def contributions(self, x) -> torch.Tensor:
        """Each hidden unit's signed share ``W2[o, j] s(w_j . x + b1_j)`` of each output.

        Returns ``(..., out_features, hidden_features)`` for ``x`` of ``(..., in_features)``;
        summing over the last axis and adding ``readout.bias`` gives ``self(x)``.
        The same layout as :meth:`kernelnotes.YatLayer.contributions`.
        """
        h = self.hidden_activations(x)
        return h[..., None, :] * self.readout.weight

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


def feature_importance(n_features: int, decay: float = 0.9, *, dtype=None) -> torch.Tensor:
    """Importances ``decay**i`` for ``i = 0..n_features-1``, the toy model's loss weights."""
    _check_count(n_features, "n_features")
    decay = check_positive(decay, "decay")
    return decay ** torch.arange(n_features, dtype=dtype or torch.get_default_dtype())


def sparse_features(batch_size: int, n_features: int, sparsity: float, *,
                    generator: torch.Generator | None = None, dtype=None) -> torch.Tensor:
    """Synthetic toy-model inputs ``(batch_size, n_features)``.

    Each entry is independently 0 with probability ``sparsity`` and otherwise drawn from
    ``U[0, 1]`` (Elhage et al., 2022). ``sparsity = 0`` gives dense features.
    """
    _check_count(batch_size, "batch_size")
    _check_count(n_features, "n_features")
    sparsity = _check_probability(sparsity, "sparsity")
    dtype = dtype or torch.get_default_dtype()
    values = torch.rand(batch_size, n_features, generator=generator, dtype=dtype)
    present = torch.rand(batch_size, n_features, generator=generator, dtype=dtype) >= sparsity
    return values * present


class ToyModel(nn.Module):
    """Superposition toy model ``x' = ReLU(W^T W x + b)`` with ``W`` of shape ``(m, n)``.

    ``h = W x`` squeezes ``n_features`` into ``n_hidden`` dimensions; column ``W[:, i]`` is
    the direction in which feature ``i`` is stored. ``W`` starts Xavier-normal and ``b`` at
    zero, as in the paper's code.
    """

    def __init__(self, n_features: int = 5, n_hidden: int = 2, *,
                 generator: torch.Generator | None = None, dtype=None):
        super().__init__()
        _check_count(n_features, "n_features")
        _check_count(n_hidden, "n_hidden")
        self.n_features, self.n_hidden = n_features, n_hidden
        dtype = dtype or torch.get_default_dtype()
        std = math.sqrt(2 / (n_features + n_hidden))
        self.W = nn.Parameter(torch.randn(n_hidden, n_features, generator=generator,
                                          dtype=dtype) * std)
        self.b = nn.Parameter(torch.zeros(n_features, dtype=dtype))

    def hidden(self, x) -> torch.Tensor:
        """The compressed representation ``h = W x``: ``(..., n_hidden)``."""
        return _module_input(x, self, self.n_features) @ self.W.mT

    def forward(self, x) -> torch.Tensor:
        """The reconstruction ``ReLU(W^T W x + b)``: ``(..., n_features)``."""
        return F.relu(self.hidden(x) @ self.W + self.b)


def superposition_geometry(W) -> tuple[torch.Tensor, torch.Tensor]:
    """How the features sit in the hidden space of a toy model with weights ``W`` ``(m, n)``.

    Returns
    -------
    norms : ``(n,)``, ``|W_i|``; near 1 when feature ``i`` is represented, near 0 when dropped.
    interference : ``(n,)``, ``sum_{j != i} (W_i/|W_i| . W_j)^2``, how much the other features
        overlap feature ``i``'s direction (0 when it has a dimension of its own).
    """
    W = as_tensor(W, "W")
    if W.dim() != 2:
        raise ValueError(f"W must have shape (n_hidden, n_features), got {tuple(W.shape)}")
    norms = W.norm(dim=0)
    unit = W / norms.clamp_min(torch.finfo(W.dtype).tiny)
    overlap = (unit.mT @ W) ** 2
    own = torch.eye(W.shape[1], dtype=torch.bool, device=W.device)
    return norms, overlap.masked_fill(own, 0).sum(-1)


def angular_gaps(W) -> torch.Tensor:
    """Angles between neighbouring feature directions of a toy model with 2 hidden dims.

    ``W`` is ``(2, n)``; its columns are sorted by angle around the origin and the ``n``
    gaps between consecutive ones (wrapping around, summing to ``2 pi``) are returned in
    radians. A regular pentagon has five gaps of ``2 pi / 5``; two orthogonal features plus
    three dropped ones do not.
    """
    W = as_tensor(W, "W")
    if W.dim() != 2 or W.shape[0] != 2:
        raise ValueError(f"W must have shape (2, n_features), got {tuple(W.shape)}")
    angles = torch.atan2(W[1], W[0]).sort().values
    return torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))


def _optimise(parameters, loss_at: Callable[[int], torch.Tensor], steps: int, lr: float,
              weight_decay: float) -> torch.Tensor:
    """Run AdamW on ``loss_at(step)`` for ``steps`` steps; the loss at each step, float64."""
    optimiser = torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay)
    losses = torch.empty(steps, dtype=torch.float64)
    for step in range(steps):
        loss = loss_at(step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses[step] = loss.detach().double()
    return losses


def _check_training(steps, lr, weight_decay) -> tuple[int, float, float]:
    steps = _check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) \
            or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    return steps, lr, float(weight_decay)


def train_toy_model(sparsity: float, *, n_features: int = 5, n_hidden: int = 2,
                    importance_decay: float = 0.9, steps: int = 10000, batch_size: int = 1024,
                    lr: float = 1e-3, weight_decay: float = 0.01, seed: int = 0,
                    generator: torch.Generator | None = None,
                    dtype=None) -> tuple[ToyModel, torch.Tensor]:
    """Train a :class:`ToyModel` on fresh batches of :func:`sparse_features`.

    The loss is the importance-weighted squared error ``sum_i I_i (x_i - x'_i)^2`` with
    ``I_i = importance_decay**i``, averaged over the batch and features; the optimiser is
    AdamW (``lr = 1e-3``, PyTorch's default weight decay 0.01, batches of 1024), as in
    Elhage et al. (2022). Initial weights and every batch come from one generator, so the
    same ``seed`` gives the same model, bit for bit, on the same machine.

    Parameters
    ----------
    sparsity : probability ``S`` that a feature is 0 in an example, in ``[0, 1)``.
    seed, generator : the source of randomness (``generator`` wins when given).
    dtype : of the model and the data (default: torch's default dtype); float32 is about
        twice as fast as float64 here.

    Returns
    -------
    model : the trained :class:`ToyModel`.
    losses : ``(steps,)`` float64, the training loss at every step.
    """
    sparsity = _check_probability(sparsity, "sparsity")
    steps, lr, weight_decay = _check_training(steps, lr, weight_decay)
    _check_count(batch_size, "batch_size")
    g = _generator(seed, generator)
    model = ToyModel(n_features, n_hidden, generator=g, dtype=dtype)
    importance = feature_importance(n_features, importance_decay, dtype=dtype)

    def loss_at(step: int) -> torch.Tensor:
        x = sparse_features(batch_size, n_features, sparsity, generator=g, dtype=dtype)
        return (importance * (x - model(x)) ** 2).mean()

    return model, _optimise(model.parameters(), loss_at, steps, lr, weight_decay)


def train_regression(model: nn.Module, x, y, *, steps: int = 1000, lr: float = 1e-2,
                     batch_size: int | None = None, weight_decay: float = 0.0,
                     seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fit ``model`` to ``(x, y)`` by minimising the mean squared error with AdamW.

    Parameters
    ----------
    model : any module mapping ``(n, ...)`` inputs to ``(n, p)`` outputs, trained in place.
    x : ``(n, ...)`` inputs, in the dtype of the model's parameters.
    y : ``(n, p)`` targets, or ``(n,)`` for a single output (``p = 1``).
    steps, lr, weight_decay : optimiser settings.
    batch_size : ``None`` (default) for full-batch steps; otherwise each step draws a random
        mini-batch of this size, without replacement, from ``seed`` or ``generator``.

    Returns
    -------
    losses : ``(steps,)`` float64, the training loss at every step. With full batches the
        run is deterministic: the same model and data give the same weights.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    steps, lr, weight_decay = _check_training(steps, lr, weight_decay)
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("model has no parameters to train")
    x = as_tensor(x, "x", like=param)
    y = as_tensor(y, "y", like=param)
    check_same_dtype((x, "x"), (y, "y"), (param, "the model's parameters"))
    if x.dim() < 1 or y.dim() < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of examples (first axis), got "
                         f"shapes {tuple(x.shape)} and {tuple(y.shape)}")
    targets = y[:, None] if y.dim() == 1 else y
    with torch.no_grad():
        out_shape = model(x[:1]).shape
    if out_shape[1:] != targets.shape[1:]:
        raise ValueError(f"y must have shape (n, {', '.join(map(str, out_shape[1:]))}) to "
                         f"match the model's output, got {tuple(y.shape)}")
    n = x.shape[0]
    if batch_size is not None:
        batch_size = min(_check_count(batch_size, "batch_size"), n)
    g = _generator(seed, generator)

    def loss_at(step: int) -> torch.Tensor:
        if batch_size is None:
            return F.mse_loss(model(x), targets)
        idx = torch.randperm(n, generator=g)[:batch_size].to(x.device)
        return F.mse_loss(model(x[idx]), targets[idx])

    return _optimise(model.parameters(), loss_at, steps, lr, weight_decay)
