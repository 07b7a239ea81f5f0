#!/usr/bin/env python3
"""Train the paper's emotion CLSTM classifier from Python with torch.optim.

    /usr/bin/python3 examples/python/train_clstm.py [--steps 30]

A toy task stands in for a corpus (replace `batches()` with your own features:
B × T × 26 log mel frames and their lengths, e.g. from crnn.features.fbank)."""

import argparse

import torch

import crnn


def batches(n=32, frames=120, seed=0):
    """Two classes that differ in the slope of the first filterbank over time."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = torch.randn(n, frames, 26, generator=g)
    slope = torch.linspace(-1, 1, frames)
    x[:, :, 0] += torch.where(labels[:, None] == 1, slope, -slope)
    lengths = torch.randint(frames // 2, frames + 1, (n,), generator=g)
    return x, lengths, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.manual_seed(1)
    model = crnn.nn.SequenceClassifier.preset("emotion-clstm", classes=2)  # 2 CLSTM layers → LSTM → Dense
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    x, lengths, labels = batches()
    for step in range(1, args.steps + 1):
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(model(x, lengths), labels)  # −log(mean_t softmax_t)[label]
        loss.backward()
        optimizer.step()
        if step == 1 or step % 10 == 0:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    torch.save(model.state_dict(), "clstm_state.pt")
    print("saved clstm_state.pt")


if __name__ == "__main__":
    main()
