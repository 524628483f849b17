"""Test-session set-up shared by every test file.

Without a CUDA device the Triton kernels can still be tested: the Triton interpreter runs
them on CPU tensors. It must be switched on before anything imports ``triton`` (Triton
reads the variable when a kernel is decorated), which is why this happens here, at import.
An explicit ``TRITON_INTERPRET`` in the environment wins.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
