"""crnn.set_precision / crnn.precision: bf16 matrix products from Python."""

import threading

import pytest
import torch

import crnn

torch.set_num_threads(2)

AVAILABLE, REASON = crnn.bf16_available()
needs_bf16 = pytest.mark.skipif(not AVAILABLE, reason=f"bf16 unavailable here: {REASON}")


def layer_and_input():
    torch.manual_seed(3)
    layer = crnn.nn.ConvRecurrent(6, 8, kind="lstm", source="cell", reduce="mean", window=5, shift=2, pool=1)
    x = torch.randn(5, 260, 6)  # hundreds of windows: the scan's parallel row blocks
    lengths = torch.tensor([260, 199, 37, 5, 5])
    return layer, x, lengths


def forward_backward(layer, x, lengths):
    layer.zero_grad()
    x = x.clone().requires_grad_(True)
    y, _ = layer(x, lengths)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(9))
    (y * w).sum().backward()
    return [y.detach(), x.grad] + [p.grad.clone() for p in layer.parameters()]


def test_bad_precision_is_a_value_error():
    with pytest.raises(ValueError, match="fp16"):
        crnn.set_precision("fp16")


def test_default_is_fp32_and_availability_has_a_reason():
    assert crnn.set_precision("fp32") == "fp32"
    assert isinstance(AVAILABLE, bool)
    assert AVAILABLE == (REASON == "")


@needs_bf16
def test_bf16_is_close_to_fp32_but_not_fp32_and_the_block_restores_the_mode():
    layer, x, lengths = layer_and_input()
    fp32 = forward_backward(layer, x, lengths)
    with crnn.precision("bf16"):
        bf16 = forward_backward(layer, x, lengths)
        seen = []
        t = threading.Thread(target=lambda: seen.append(crnn.set_precision("fp32")))
        t.start()
        t.join()
        assert seen == ["fp32"], "the mode is per thread"
    assert crnn.set_precision("fp32") == "fp32", "the block restored fp32"
    assert not torch.equal(bf16[0], fp32[0]), "bf16 output identical to fp32: bf16 not used"
    for a, b in zip(bf16, fp32):
        assert a.dtype == torch.float32
        # Relative L2 error; 4 % as tests/kernels/precision_test.cpp states for
        # one layer without max reduction or pooling.
        assert (a - b).norm() <= 0.04 * b.norm()


@needs_bf16
def test_bf16_is_deterministic():
    layer, x, lengths = layer_and_input()
    with crnn.precision("bf16"):
        a = forward_backward(layer, x, lengths)
        b = forward_backward(layer, x, lengths)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
