"""Small, seeded trainers: AdamW on a fixed regression set, and the superposition toy model.

Both train in float32 or float64 and refuse 16-bit dtypes (a float16 run would end in NaN
without float32 master weights, which these few-line loops do not keep). One generator
drives every random draw, so the same seed gives the same weights, bit for bit, on the same
machine.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import (
    as_generator,
    as_tensor,
    check_float_dtype,
    check_positive_int,
    check_probability,
    check_same_dtype,
    check_training_dtype,
    check_training_settings,
)
from .superposition import ToyModel, feature_importance, sparse_features

__all__ = ["ModelStack", "adamw", "train_regression", "train_toy_model"]








def adamw(parameters, loss_at: Callable[[int], torch.Tensor], steps: int, lr: float,
          weight_decay: float) -> torch.Tensor:
    """Run AdamW on ``loss_at(step)`` for ``steps`` steps; the loss at each step, float64.

    The loop both trainers share, on already checked settings. A loss that stops being
    finite (a learning rate far too large) ends the run with a ValueError naming ``lr``,
    instead of returning NaN weights.
    """
    optimiser = torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay)
    losses = torch.empty(steps, dtype=torch.float64)
    for step in range(steps):
        loss = loss_at(step)
        losses[step] = loss.detach().double()  # the copy to the host reads the loss anyway
        if not math.isfinite(losses[step]):
            raise ValueError(f"training diverged: the loss is {losses[step].item()} at step "
                             f"{step}; lower lr (now {lr:g}) or weight_decay")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return losses


def train_toy_model(sparsity: float, *, n_features: int = 5, n_hidden: int = 2,
                    importance_decay: float = 0.9, steps: int = 10000, batch_size: int = 1024,
                    lr: float = 1e-3, weight_decay: float = 0.01, seed: int = 0,
                    generator: torch.Generator | None = None,
                    dtype=None) -> tuple[ToyModel, torch.Tensor]:
    """Train a :class:`~kernelnotes.superposition.ToyModel` on fresh batches of
    :func:`~kernelnotes.superposition.sparse_features`.

    The loss is the importance-weighted squared error ``sum_i I_i (x_i - x'_i)^2`` with
    ``I_i = importance_decay**i``, averaged over the batch and features; the optimiser is
    AdamW (``lr = 1e-3``, PyTorch's default weight decay 0.01, batches of 1024), as in
    Elhage et al. (2022). Initial weights and every batch come from one generator, so the
    same ``seed`` gives the same model, bit for bit, on the same machine.

    Parameters
    ----------
    sparsity : probability ``S`` that a feature is 0 in an example, in ``[0, 1)``.
    seed, generator : the source of randomness (``generator`` wins when given).
    dtype : of the model and the data, float32 or float64 (default: torch's default dtype);
        float32 is about twice as fast as float64 here.

    Returns
    -------
    model : the trained toy model.
    losses : ``(steps,)`` float64, the training loss at every step.
    """
    sparsity = check_probability(sparsity, "sparsity")
    steps, lr, weight_decay = check_training_settings(steps, lr, weight_decay)
    batch_size = check_positive_int(batch_size, "batch_size")
    dtype = check_float_dtype(dtype)
    check_training_dtype(dtype, "dtype")
    g = as_generator(seed, generator)
    model = ToyModel(n_features, n_hidden, generator=g, dtype=dtype)
    importance = feature_importance(n_features, importance_decay, dtype=dtype)

    def loss_at(step: int) -> torch.Tensor:
        x = sparse_features(batch_size, n_features, sparsity, generator=g, dtype=dtype)
        return (importance * (x - model(x)) ** 2).mean()

    return model, adamw(model.parameters(), loss_at, steps, lr, weight_decay)


def train_regression(model: nn.Module, x, y, *, steps: int = 1000, lr: float = 1e-2,
                     batch_size: int | None = None, weight_decay: float = 0.0,
                     seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fit ``model`` to ``(x, y)`` by minimising the mean squared error with AdamW.

    Parameters
    ----------
    model : any module mapping ``(n, ...)`` inputs to ``(n, p)`` outputs, trained in place;
        its parameters float32 or float64.
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
    steps, lr, weight_decay = check_training_settings(steps, lr, weight_decay)
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("model has no parameters to train")
    check_training_dtype(param.dtype, "the model's parameter dtype")
    x = as_tensor(x, "x", like=param)
    y = as_tensor(y, "y", like=param)
    check_same_dtype((x, "x"), (y, "y"), (param, "the model's parameters"))
    for tensor, name in ((x, "x"), (y, "y")):
        if not torch.isfinite(tensor).all():  # the loss would be NaN from the first step
            raise ValueError(f"{name} has non-finite entries")
    if x.dim() < 1 or y.dim() < 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must hold the same number (>= 1) of examples (first axis), "
                         f"got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    targets = y[:, None] if y.dim() == 1 else y
    with torch.no_grad():
        out_shape = model(x[:1]).shape
    if out_shape[1:] != targets.shape[1:]:
        raise ValueError(f"y must have shape (n, {', '.join(map(str, out_shape[1:]))}) to "
                         f"match the model's output on x {tuple(x.shape)}, got "
                         f"{tuple(y.shape)}")
    n = x.shape[0]
    if batch_size is not None:
        batch_size = min(check_positive_int(batch_size, "batch_size"), n)
    g = as_generator(seed, generator)

    def loss_at(step: int) -> torch.Tensor:
        if batch_size is None:
            return F.mse_loss(model(x), targets)
        idx = torch.randperm(n, generator=g)[:batch_size].to(x.device)
        return F.mse_loss(model(x[idx]), targets[idx])

    return adamw(model.parameters(), loss_at, steps, lr, weight_decay)


class ModelStack(nn.Module):
    """Independent copies of one architecture, run side by side so they train at once.

    ``ModelStack(models)(x)`` evaluates every model on the same ``x`` (vectorised with
    ``torch.func``) and puts their outputs next to each other on the last axis: models with
    ``(n, p)`` outputs give ``(n, len(models) * p)``. Trained by :func:`train_regression` on
    the targets repeated ``len(models)`` times, each copy takes the same path as when trained
    alone: Adam(W) updates every parameter from its own gradient, and the shared mean only
    scales each copy's gradient by ``1 / len(models)``, which Adam's update ignores (up to
    its ``eps``). Five seeds then cost about one run.

    Parameters
    ----------
    models : non-empty sequence of modules with the same parameter names, shapes and dtypes
        (for example one constructor called with different seeds) and no buffers.
    """

    def __init__(self, models):
        super().__init__()
        if not isinstance(models, (list, tuple)):
            raise TypeError(f"models must be a list or tuple of torch.nn.Module, got "
                            f"{type(models).__name__}")
        if not models:
            raise ValueError("models must hold at least one module, got an empty sequence")
        models = list(models)
        for i, model in enumerate(models):
            if not isinstance(model, nn.Module):
                raise TypeError(f"models[{i}] must be a torch.nn.Module, got "
                                f"{type(model).__name__}")
            if next(model.buffers(), None) is not None:
                raise ValueError(f"models[{i}] has buffers; ModelStack stacks parameters only")
        shapes = [{n: (p.shape, p.dtype) for n, p in m.named_parameters()} for m in models]
        for i, layout in enumerate(shapes[1:], start=1):
            if layout != shapes[0]:
                raise ValueError(f"models[{i}] differs from models[0] in parameter names, "
                                 f"shapes or dtypes")
        if not shapes[0]:
            raise ValueError("models have no parameters to stack")
        stacked, _ = torch.func.stack_module_state(models)
        self._names = list(stacked)
        self.stacked = nn.ParameterList(stacked.values())
        self._models = models
        self._template = copy.deepcopy(models[0]).to("meta")

    def forward(self, x) -> torch.Tensor:
        """Outputs of all copies on ``x``, concatenated on the last axis.

        ``x`` is a tensor (or array) of the models' dtype, on their device; a shape the
        models cannot take is a ValueError naming ``x``.
        """
        param = self.stacked[0]
        x = as_tensor(x, "x", like=param)
        check_same_dtype((x, "x"), (param, "the models' parameters"))

        def one(*params):
            return torch.func.functional_call(self._template,
                                              dict(zip(self._names, params, strict=True)),
                                              (x,))
        try:
            out = torch.vmap(one)(*self.stacked)          # (copies, n, ..., p)
        except RuntimeError as error:  # torch reports a shape mismatch as a RuntimeError
            raise ValueError(f"x of shape {tuple(x.shape)} does not fit the stacked models: "
                             f"{error}") from error
        return out.movedim(0, -2).flatten(-2)

    def unstack(self) -> list[nn.Module]:
        """The original modules, with the stack's current parameters copied into them."""
        with torch.no_grad():
            for i, model in enumerate(self._models):
                params = dict(model.named_parameters())
                for name, stacked in zip(self._names, self.stacked, strict=True):
                    params[name].copy_(stacked[i])
        return self._models
