"""Input checks shared by the public functions: clear errors that name the argument."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "broadcast_batch",
    "check_finite",
    "check_positive",
    "check_same_last_dim",
]


def as_tensor(value, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``value`` as a floating-point torch tensor, accepting numpy arrays and lists.

    With ``like``, a numpy or list input is placed on that tensor's device, and a tensor on
    another device is an error (moving it silently would hide a copy across devices). The
    dtype is never changed: mixing dtypes is rejected by :func:`check_same_dtype`.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
        if like is not None and tensor.device != like.device:
            raise ValueError(f"{name} is on {tensor.device}, but the first input is on "
                             f"{like.device}: put every input on one device")
    elif isinstance(value, (np.ndarray, list, tuple, Real)):
        tensor = torch.as_tensor(np.asarray(value))
        if like is not None:
            tensor = tensor.to(like.device)
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}"
        )
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {tensor.dtype}")
    return tensor


def check_finite(value, name: str) -> float:
    """``value`` as a float, or a ValueError if it is not a finite real scalar.

    Accepts a number or a one-element tensor (which may require grad: only its value is read).
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape "
                             f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_positive(value, name: str) -> float:
    """``value`` as a float, or a ValueError if it is not a finite positive number."""
    value = check_finite(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value}")
    return value


def check_min_dims(tensor: torch.Tensor, name: str, ndim: int, layout: str) -> None:
    if tensor.dim() < ndim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(tensor.shape)}")


def check_same_last_dim(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same feature dimension (last axis), "
            f"got {a.shape[-1]} and {b.shape[-1]}"
        )


def check_same_dtype(*pairs: tuple[torch.Tensor, str]) -> None:
    dtypes = {t.dtype for t, _ in pairs}
    if len(dtypes) > 1:
        described = ", ".join(f"{name}={t.dtype}" for t, name in pairs)
        raise TypeError(f"inputs must share one dtype, got {described}")


def broadcast_batch(shapes: dict[str, torch.Size], trailing: int) -> torch.Size:
    """Broadcast the leading (batch) dims of several tensors, naming them on a mismatch.

    ``trailing`` is how many trailing axes belong to each tensor itself (2 for ``(n, d)``).
    """
    leading = {name: shape[:-trailing] for name, shape in shapes.items()}
    try:
        return torch.broadcast_shapes(*leading.values())
    except RuntimeError:
        described = ", ".join(f"{name} {tuple(s)}" for name, s in leading.items())
        raise ValueError(f"batch dimensions do not broadcast: {described}") from None
