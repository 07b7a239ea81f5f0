#!/usr/bin/env python3
"""Does the first-epoch collapse of the Dense layer (docs/training.md, "Inside the plateau")
depend on how the layer starts or how fast Adam moves? Trains the agender-conv classifier
from Python (crnn.nn, crnn's kernels) on speechocean762 gender3 training speakers for a few
epochs under several variants, from the same initial weights per seed, and reports the loss
and the Dense units never active on a fixed probe batch after each epoch.

    /usr/bin/python3 scripts/plateau-init-study.py --manifest data/speechocean762.csv \\
        --model results/batch-order/runs/gender3-agender-conv-afd81c34b230/seed_2/best.pt --epochs 3 --seeds 1 2

The model file only provides the feature extractor and the architecture (its weights are
not used). Batches are random (not crnn's length buckets) and classes are not balanced:
the variants are compared with each other, not with `crnn train`."""

import argparse
import collections
import csv
import json
import math

import crnn  # before torch: idle-thread policy

import torch


def load_utterances(model, manifest, task, speakers):
    rows = [r for r in csv.DictReader(open(manifest)) if r.get(task) and r.get("split", "train") == "train"]
    by_speaker = collections.defaultdict(list)
    for r in rows:
        by_speaker[r["speaker"]].append(r)
    xs, ys = [], []
    for s in sorted(by_speaker)[:speakers]:
        feats = [model.features(r["path"]) for r in by_speaker[s]]
        frames = torch.cat(feats)
        mean, std = frames.mean(0), frames.std(0, unbiased=False).clamp_min(1e-5)
        for r, f in zip(by_speaker[s], feats):
            if f.shape[0] >= 20:
                xs.append((f - mean) / std)
                ys.append(model.labels.index(r[task]))
    return xs, torch.tensor(ys)


def pad(xs):
    lengths = torch.tensor([x.shape[0] for x in xs])
    out = torch.zeros(len(xs), int(lengths.max()), xs[0].shape[1])
    for i, x in enumerate(xs):
        out[i, :x.shape[0]] = x
    return out, lengths


def dead_units(net, x, lengths):
    """Dense units no step of the probe batch activates (hooks into the classifier's pieces)."""
    with torch.no_grad():
        fe = crnn.nn.WindowConv(x.shape[2], net.front_end_0_weight.shape[0], window=5, shift=2, pool=2, pool_shift=2)
        fe.weight.copy_(net.front_end_0_weight)
        fe.bias.copy_(net.front_end_0_bias)
        h, hl = fe(x, lengths)
        lstm = crnn.nn.PeepholeLSTM(h.shape[2], net.recurrent_weight_hh.shape[1], bidirectional=True)
        for n in lstm.parameter_names:
            getattr(lstm, n).copy_(getattr(net, "recurrent_" + n))
        s, sl = lstm(h, hl)
        valid = torch.arange(s.shape[1])[None, :] < sl[:, None]
        d = s[valid] @ net.dense_weight.t() + net.dense_bias
        return float((~(d > 0).any(0)).float().mean())


VARIANTS = {
    "default (PyTorch init, lr 0.002)": {},
    "Dense bias +0.1": {"dense_bias": 0.1},
    "Dense weights ×3": {"dense_scale": 3.0},
    "lr warm-up over the first epoch": {"warmup": True},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", default="gender3")
    ap.add_argument("--speakers", type=int, default=120)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    crnn.set_num_threads(args.threads)
    ref = crnn.load(args.model)
    xs, ys = load_utterances(ref, args.manifest, args.task, args.speakers)
    probe_x, probe_len = pad(xs[:64])
    options = json.loads(ref.options)
    print(f"{len(xs)} utterances of {args.speakers} training speakers; probe: the first 64", flush=True)
    for seed in args.seeds:
        torch.manual_seed(seed)
        init = crnn.nn.SequenceClassifier(**options).state_dict()
        for name, v in VARIANTS.items():
            net = crnn.nn.SequenceClassifier(**options)
            net.load_state_dict(init)
            with torch.no_grad():
                net.dense_bias.add_(v.get("dense_bias", 0.0))
                net.dense_weight.mul_(v.get("dense_scale", 1.0))
            opt = torch.optim.Adam(net.parameters(), lr=0.002)
            g = torch.Generator().manual_seed(seed)
            steps_per_epoch = math.ceil(len(xs) / 32)
            row = [f"seed {seed}", name, f"init dead {dead_units(net, probe_x, probe_len):.2f}"]
            step = 0
            for epoch in range(1, args.epochs + 1):
                order = torch.randperm(len(xs), generator=g).tolist()
                total, count = 0.0, 0
                for b in range(0, len(order), 32):
                    idx = order[b:b + 32]
                    x, lengths = pad([xs[i] for i in idx])
                    if v.get("warmup"):
                        for group in opt.param_groups:
                            group["lr"] = 0.002 * min(1.0, (step + 1) / steps_per_epoch)
                    opt.zero_grad()
                    loss = torch.nn.functional.nll_loss(net(x, lengths), ys[idx])
                    loss.backward()
                    opt.step()
                    step += 1
                    total += loss.item() * len(idx)
                    count += len(idx)
                row.append(f"e{epoch}: loss/ln3 {total / count / math.log(3):.3f}, dead {dead_units(net, probe_x, probe_len):.2f}")
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
