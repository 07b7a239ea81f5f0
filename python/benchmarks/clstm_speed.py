#!/usr/bin/env python3
"""Training speed (forward + backward) of the paper's emotion CLSTM layer from
Python: crnn.nn.ConvRecurrent (fused C++ kernels) against the same layer written
in plain PyTorch — windows unfolded, the peephole LSTM (eqs. 3–7) stepped over
the r1 window positions for all windows of the batch at once, which is how one
would write it without crnn. Both get the same parameters and must agree.

    PYTHONPATH=build/python /usr/bin/python3 python/benchmarks/clstm_speed.py [--threads 2] [--batch 32] [--frames 300]

Prints one JSON line per implementation and the speed-up (docs/performance.md)."""

import argparse
import json
import time

import crnn  # first: it sets the idle-thread policy torch reads when it loads

import torch


def pytorch_clstm(x, lengths, p, r1=5, r2=2, pool=2, pool_shift=2):
    """The emotion CLSTM (source = c, reduce = last) in plain PyTorch."""
    b, t, k = x.shape
    mask = (torch.arange(t)[None, :] < lengths[:, None]).unsqueeze(2)
    x = x * mask
    windows = x.unfold(1, r1, r2)  # B × W × k × r1
    w = windows.shape[1]
    win = windows.permute(3, 0, 1, 2).reshape(r1, b * w, k)  # r1 × N × k
    m = p["lstm_weight_hh"].shape[1]
    proj = win @ p["lstm_weight_ih"].t() + p["lstm_bias"]
    h = x.new_zeros(b * w, m)
    c = x.new_zeros(b * w, m)
    for s in range(r1):
        g = proj[s] + h @ p["lstm_weight_hh"].t()
        i, f, cc, o = g.chunk(4, 1)
        i = i + p["lstm_peephole_i"] * c
        f = f + p["lstm_peephole_f"] * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cc)
        o = o + p["lstm_peephole_o"] * c
        h = torch.sigmoid(o) * torch.tanh(c)
    feats = c.reshape(b, w, m)
    counts = torch.div(lengths - r1, r2, rounding_mode="floor") + 1
    wmask = (torch.arange(w)[None, :] < counts[:, None]).unsqueeze(2)
    feats = feats.masked_fill(~wmask, float("-inf"))
    pooled = feats.unfold(1, pool, pool_shift).max(3).values
    pcounts = torch.div(counts - pool, pool_shift, rounding_mode="floor") + 1
    pmask = (torch.arange(pooled.shape[1])[None, :] < pcounts[:, None]).unsqueeze(2)
    return pooled.masked_fill(~pmask, 0.0), pcounts


def time_training(step, repeats):
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    crnn.set_num_threads(a.threads)  # torch and OpenBLAS
    torch.manual_seed(0)
    layer = crnn.nn.ConvRecurrent(26, 100, kind="lstm", source="cell", reduce="last", window=5, shift=2, pool=2,
                                  pool_shift=2)
    params = {n: getattr(layer, n) for n in layer.parameter_names}
    x = torch.randn(a.batch, a.frames, 26)
    lengths = torch.full((a.batch,), a.frames)
    y_crnn, _ = layer(x, lengths)
    y_ref, _ = pytorch_clstm(x, lengths, params)
    torch.testing.assert_close(y_crnn, y_ref, rtol=1e-4, atol=1e-5)

    grad = torch.randn_like(y_crnn)

    def crnn_step():
        layer.zero_grad()
        y, _ = layer(x, lengths)
        y.backward(grad)

    def ref_step():
        for v in params.values():
            v.grad = None
        y, _ = pytorch_clstm(x, lengths, params)
        y.backward(grad)

    t_crnn = time_training(crnn_step, a.repeats)
    t_ref = time_training(ref_step, a.repeats)
    common = {"layer": "emotion CLSTM (r1 5, r2 2, n 100, c last, pool 2/2)", "batch": a.batch,
              "frames": a.frames, "threads": a.threads}
    print(json.dumps({**common, "impl": "crnn.nn.ConvRecurrent", "train_step_ms": round(t_crnn * 1e3, 2)}))
    print(json.dumps({**common, "impl": "plain PyTorch", "train_step_ms": round(t_ref * 1e3, 2)}))
    print(json.dumps({**common, "speedup": round(t_ref / t_crnn, 2)}))


if __name__ == "__main__":
    main()
