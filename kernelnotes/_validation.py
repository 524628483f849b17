"""Input checks shared by the public functions: clear errors that name the argument.

The error policy of the whole package: a TypeError when an argument has the wrong type, a
ValueError when it has the right type but a wrong value or shape; every message names the
argument and says what was expected. Public functions run these checks once, at their entry,
and then call the bare cores of :mod:`kernelnotes._cores`, which check nothing.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "as_generator",
    "as_module_input",
    "as_qkv",
    "as_tensor",
    "as_token_ids",
    "broadcast_batch",
    "check_bool",
    "check_finite",
    "check_float_dtype",
    "check_generator",
    "check_index",
    "check_int_at_least",
    "check_min_dims",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_probability",
    "check_same_dtype",
    "check_same_last_dim",
    "check_training_dtype",
    "check_training_settings",
]


def as_tensor(value, name: str, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``value`` as a floating-point torch tensor, accepting numpy arrays and lists.

    With ``like``, a numpy or list input is placed on that tensor's device, and a tensor on
    another device is an error (moving it silently would hide a copy across devices). The
    dtype is never changed: mixing dtypes is rejected by :func:`check_same_dtype`. Meta
    tensors (shapes without data) are refused: nothing here can compute on them.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
        if tensor.is_meta:
            raise ValueError(f"{name} is a meta tensor (a shape without data); pass a tensor "
                             f"that holds values")
        if like is not None and tensor.device != like.device:
            raise ValueError(f"{name} is on {tensor.device}, but the first input is on "
                             f"{like.device}: put every input on one device")
    elif isinstance(value, (np.ndarray, list, tuple, Real)) and not isinstance(value, bool):
        try:
            array = np.asarray(value)
        except ValueError:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular array of numbers") from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got an array of {array.dtype}")
        tensor = torch.as_tensor(array)
        if like is not None:
            tensor = tensor.to(like.device)
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}"
        )
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {tensor.dtype}")
    return tensor


def check_bool(value, name: str) -> bool:
    """``value`` if it is True or False (numpy's bool too), else a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_int_at_least(value, name: str, minimum: int) -> int:
    """``value`` as an int: a TypeError unless it is an integer (bools are not), a
    ValueError unless it is at least ``minimum``."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_positive_int(value, name: str) -> int:
    """``value`` as an int: a TypeError unless it is an integer (bools are not), a
    ValueError unless it is at least 1."""
    return check_int_at_least(value, name, 1)


def check_index(value, name: str, size: int) -> int:
    """``value`` as an int: a TypeError unless it is an integer (bools are not), a
    ValueError unless it is a position in ``range(size)``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{name} must lie in [0, {size - 1}], got {value!r}")
    return int(value)


def check_finite(value, name: str) -> float:
    """``value`` as a float, or a ValueError if it is not a finite real scalar.

    Accepts a number or a one-element tensor (which may require grad: only its value is read,
    which synchronises with the tensor's device: keep this off training paths).
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape "
                             f"{tuple(value.shape)}")
        if value.is_meta:
            raise ValueError(f"{name} is a meta tensor (a shape without data)")
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


def check_nonnegative(value, name: str) -> float:
    """``value`` as a float, or a ValueError if it is not a finite number ``>= 0``."""
    value = check_finite(value, name)
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_min_dims(tensor: torch.Tensor, name: str, ndim: int, layout: str) -> None:
    """A ValueError unless ``tensor`` has at least ``ndim`` axes, quoting its ``layout``."""
    if tensor.dim() < ndim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(tensor.shape)}")


def check_same_last_dim(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """A ValueError unless ``a`` and ``b`` have the same, non-zero, last axis."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same feature dimension (last axis), "
            f"got {a.shape[-1]} and {b.shape[-1]}"
        )
    if a.shape[-1] == 0:
        raise ValueError(f"{names[0]} and {names[1]} must have at least one feature (last "
                         f"axis), got 0")


def check_same_dtype(*pairs: tuple[torch.Tensor, str]) -> None:
    """A TypeError unless every ``(tensor, name)`` pair shares one dtype."""
    dtypes = {t.dtype for t, _ in pairs}
    if len(dtypes) > 1:
        described = ", ".join(f"{name}={t.dtype}" for t, name in pairs)
        raise TypeError(f"inputs must share one dtype, got {described}")


def broadcast_batch(shapes: dict[str, torch.Size], trailing: int) -> torch.Size:
    """Broadcast the leading (batch) dims of several tensors, naming them on a mismatch.

    ``trailing`` is how many trailing axes belong to each tensor itself (2 for ``(n, d)``).
    """
    leading = {name: shape[:-trailing] for name, shape in shapes.items()}
    first, *others = leading.values()
    if all(shape == first for shape in others):  # the common case, without torch's
        return first                             # pure-Python broadcast (tens of us)
    try:
        return torch.broadcast_shapes(*leading.values())
    except RuntimeError:
        described = ", ".join(f"{name} {tuple(s)}" for name, s in leading.items())
        raise ValueError(f"batch dimensions do not broadcast: {described}") from None


def as_qkv(q, k, v) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries ``(..., L, E)``, keys ``(..., S, E)`` and values ``(..., S, Ev)``, checked.

    One device, one dtype, ``E >= 1``, batch dimensions that broadcast. ``L`` or ``S`` may
    be 0 (with no keys, attention returns zeros, as SDPA does).
    """
    q = as_tensor(q, "q")
    k = as_tensor(k, "k", like=q)
    v = as_tensor(v, "v", like=q)
    for t, name, layout in ((q, "q", "(..., L, E)"), (k, "k", "(..., S, E)"),
                            (v, "v", "(..., S, Ev)")):
        check_min_dims(t, name, 2, layout)
    check_same_last_dim(q, k, ("q", "k"))
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same sequence length, got "
                         f"{k.shape[-2]} and {v.shape[-2]}")
    check_same_dtype((q, "q"), (k, "k"), (v, "v"))
    broadcast_batch({"q": q.shape, "k": k.shape, "v": v.shape}, trailing=2)
    return q, k, v


def check_probability(value, name: str) -> float:
    """``value`` as a float in ``[0, 1)``, checked like :func:`check_finite` first."""
    value = check_finite(value, name)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """``dtype`` if it is a floating-point torch dtype, torch's default for None; else a
    TypeError."""
    if dtype is None:
        return torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch dtype, got {dtype!r}")
    return dtype


def check_generator(generator, name: str = "generator") -> torch.Generator | None:
    """``generator`` unchanged if it is None or a ``torch.Generator``, else a TypeError."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def as_module_input(x, module: torch.nn.Module, features: int, name: str = "x") -> torch.Tensor:
    """``x`` as a tensor ``(..., features)`` on ``module``'s device and of its dtype."""
    param = next(module.parameters())
    x = as_tensor(x, name, like=param)
    if x.dim() < 1 or x.shape[-1] != features:
        raise ValueError(f"{name} must have shape (..., {features}), got {tuple(x.shape)}")
    check_same_dtype((x, name), (param, "the model's parameters"))
    return x

def as_token_ids(tokens, vocab_size) -> tuple[torch.Tensor, int]:
    """Integer token ids ``(..., n)`` in ``[0, vocab_size)`` as a long tensor, and the vocabulary
    size as an int."""
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    if not isinstance(tokens, torch.Tensor):
        if not isinstance(tokens, (np.ndarray, list, tuple)):
            raise TypeError(f"tokens must be a torch.Tensor or numpy array of integer ids, "
                            f"got {type(tokens).__name__}")
        try:
            tokens = torch.as_tensor(np.asarray(tokens))
        except ValueError as error:  # ragged nested lists
            raise ValueError(f"tokens must be a rectangular array of token ids: "
                             f"{error}") from None
    if tokens.is_meta:
        raise ValueError("tokens is a meta tensor (a shape without data); pass token ids")
    if tokens.dim() < 1 or tokens.numel() == 0:
        raise ValueError(f"tokens must have shape (..., n) with n >= 1, got "
                         f"{tuple(tokens.shape)}")
    if tokens.dtype == torch.bool or tokens.is_floating_point() or tokens.is_complex():
        raise TypeError(f"tokens must hold integer token ids, got {tokens.dtype}")
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        raise ValueError(f"tokens must lie in [0, vocab_size) = [0, {vocab_size}), got "
                         f"values from {tokens.min().item()} to {tokens.max().item()}")
    return tokens.long(), vocab_size

def as_generator(seed, generator) -> torch.Generator:
    """A CPU generator from ``generator`` or, failing that, from the integer ``seed``.

    ``seed`` is checked even when ``generator`` wins: a bad seed is a mistake either way.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if check_generator(generator) is not None:
        return generator
    return torch.Generator().manual_seed(seed)

def check_training_dtype(dtype, name: str) -> None:
    """Refuse 16-bit training: the trainers keep no float32 master weights."""
    if dtype in (torch.float16, torch.bfloat16):
        raise TypeError(f"{name} is {dtype}: the trainers train in float32 or float64 only "
                        f"(16-bit weights would need float32 master copies); cast the model "
                        f"and data to float32")

def check_training_settings(steps, lr, weight_decay) -> tuple[int, float, float]:
    """``steps`` a positive count, ``lr`` positive, ``weight_decay`` non-negative."""
    return (check_positive_int(steps, "steps"), check_positive(lr, "lr"),
            check_nonnegative(weight_decay, "weight_decay"))
