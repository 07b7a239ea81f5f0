"""crnn from Python: the Convolutional Recurrent layers (CRNN, CLSTM, Extended
CLSTM, CBLSTM) and trained crnn models as PyTorch modules.

    import torch, crnn
    layer = crnn.nn.ConvRecurrent(26, 100, kind="lstm", source="cell", pool=2, pool_shift=2)
    y, y_lengths = layer(torch.randn(8, 300, 26), torch.full((8,), 300))

    model = crnn.load("runs/clstm/best.pt")          # torch.nn.Module, eval mode
    preds = crnn.Classifier("runs/clstm").predict(["a.wav"])
    summary = crnn.train("my.toml", "runs/mine")     # the paper's protocol, as `crnn train`

The layers run crnn's C++ implementation (fused CPU kernels) through the
operators in OPS_LIBRARY (`torch.ops.crnn.*`), which this import loads. A model
exported with `crnn export` runs in plain PyTorch after
`torch.ops.load_library(crnn.OPS_LIBRARY)`. See docs/python.md.
"""

import contextlib as _contextlib
import os as _os
import sys as _sys

if "torch" not in _sys.modules:
    # Idle OpenMP and OpenBLAS workers sleep instead of spinning, as the `crnn`
    # command arranges (docs/performance.md): both libraries read this once, when
    # torch loads, so it only helps when crnn is imported first. Settings of
    # yours win.
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import torch as _torch  # noqa: E402

#: The shared library with the crnn operators and classes.
OPS_LIBRARY = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "libcrnn_torch.so")
if not _os.path.exists(OPS_LIBRARY):
    raise ImportError(f"crnn: {OPS_LIBRARY} is missing; build crnn (scripts/setup) and import the built package")
_torch.ops.load_library(OPS_LIBRARY)

from . import _args, features, nn  # noqa: E402


def set_num_threads(n=0):
    """Sets torch's intra-op threads and OpenBLAS's threads together (0 = all
    cores), as `crnn --threads` does; returns the count set. A count n > 0 stays
    when crnn.train runs a config with train.threads (n = 0 lets the config set
    it). torch.set_num_threads alone leaves OpenBLAS at its own count."""
    return torch_ops.set_num_threads(_args.integer(n, "crnn.set_num_threads: n"))


def bf16_available():
    """(True, "") where crnn can run its matrix products in bf16 (a CPU with
    AVX512-BF16), else (False, the reason)."""
    return tuple(torch_ops.bf16_available())


def set_precision(precision):
    """Sets this thread's matrix-product precision for crnn's layers: "fp32"
    (default) or "bf16" (bf16 operands, fp32 accumulation; state, nonlinearities,
    parameters and their gradients stay fp32; docs/performance.md), as
    `train.precision` does for `crnn train`. Returns the previous one. bf16
    where it is unavailable raises RuntimeError with the reason."""
    return torch_ops.set_precision(str(precision))


@_contextlib.contextmanager
def precision(precision):
    """`with crnn.precision("bf16"): ...` — set_precision for a block."""
    before = set_precision(precision)
    try:
        yield
    finally:
        set_precision(before)


torch_ops = _torch.ops.crnn

from .model import Classifier, Model, Prediction, load  # noqa: E402
from .run import config, evaluate, experiment, extract_features, presets, repeat, train  # noqa: E402

__all__ = [
    "OPS_LIBRARY",
    "Classifier",
    "Model",
    "Prediction",
    "bf16_available",
    "config",
    "evaluate",
    "experiment",
    "extract_features",
    "features",
    "load",
    "nn",
    "precision",
    "presets",
    "repeat",
    "set_num_threads",
    "set_precision",
    "train",
]
