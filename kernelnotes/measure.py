"""Measuring what a computation costs: wall time and the peak memory of its tensors.

:func:`peak_memory` works on any device, the CPU included (where PyTorch keeps no
allocator statistics): it watches every tensor operation through a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` and tracks the storages the
operations create while some tensor still refers to them.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ._validation import check_positive_int

__all__ = ["best_time", "peak_memory"]


class _LiveStorages(TorchDispatchMode):
    """Bytes held by storages created inside the mode, and their running maximum."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, tuple[int, list[weakref.ref]]] = {}
        self.current = 0
        self.peak = 0

    def _forget_dead(self) -> None:
        for key in [key for key, (_, refs) in self.live.items()
                    if all(ref() is None for ref in refs)]:
            self.current -= self.live.pop(key)[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._forget_dead()
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self.live:  # a view, or an in-place result: same memory
                self.live[key][1].append(weakref.ref(t))
            elif key in inputs:  # a view of memory from before the call: not new
                continue
            else:
                self.live[key] = (storage.nbytes(), [weakref.ref(t)])
                self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def peak_memory(fn: Callable, *args, **kwargs) -> tuple[object, int]:
    """Call ``fn(*args, **kwargs)``; return its result and the peak bytes of new tensors.

    The peak counts the storages that tensor operations inside the call allocate, at the
    moment of their largest total: the extra memory the call needs on top of its inputs.
    A storage counts until the last tensor that refers to it is gone. Memory that a
    library allocates outside tensors (workspace of a BLAS call, caches) is not seen.
    """
    tracker = _LiveStorages()
    with tracker:
        result = fn(*args, **kwargs)
    return result, tracker.peak


def best_time(fn: Callable, *args, repeat: int = 5, **kwargs) -> float:
    """Smallest wall time in seconds of ``repeat`` calls of ``fn(*args, **kwargs)``.

    The minimum is the least noisy estimate of the cost on a shared machine; CUDA work is
    synchronised before the clock stops.
    """
    repeat = check_positive_int(repeat, "repeat")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    cuda = torch.cuda.is_available()
    times = []
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)
