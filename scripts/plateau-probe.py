#!/usr/bin/env python3
"""The chance plateau, looked at from inside (issue 31, docs/training.md "The plateau").

For each model file given, on the same batch of training utterances (whole speakers,
features made as in training by the model's own extractor, standardized per speaker):
  - the loss and how uniform the predictions are;
  - the gradient norm of each layer, and relative to its weights;
  - the front end's sigmoid outputs: fraction saturated (< 0.02 or > 0.98);
  - the classifier BLSTM's gates i, f, o: fraction saturated, mean;
  - Dense(400, ReLU): fraction of units never active on the batch ("dead"), and of zero outputs;
  - the class logits: spread across classes.

    /usr/bin/python3 scripts/plateau-probe.py --manifest data/speechocean762.csv --task gender3 \\
        --speakers 8 MODEL.pt [MODEL.pt ...] [--reinit SEED]

Needs the Python module (scripts/setup) and the audio the manifest names. Written for the
agender-conv preset (one standard conv layer → BLSTM → Dense → softmax); other presets
report the loss and gradient norms only."""

import argparse
import collections
import csv
import json
import os
import sys

import crnn  # before torch: idle-thread policy

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))
import reference  # noqa: E402  (the paper's equations in plain PyTorch)


def batch(model, manifest, task, speakers, seed):
    rows = [r for r in csv.DictReader(open(manifest)) if r.get(task) and r.get("split", "train") == "train"]
    by_speaker = collections.defaultdict(list)
    for r in rows:
        by_speaker[r["speaker"]].append(r)
    g = torch.Generator().manual_seed(seed)
    names = sorted(by_speaker)
    chosen = [names[i] for i in torch.randperm(len(names), generator=g)[:speakers].tolist()]
    xs, labels = [], []
    for s in chosen:
        feats = [model.features(r["path"]) for r in by_speaker[s]]
        frames = torch.cat(feats)
        mean, std = frames.mean(0), frames.std(0, unbiased=False).clamp_min(1e-5)
        for r, f in zip(by_speaker[s], feats):
            if f.shape[0] < 20:
                continue
            xs.append((f - mean) / std)
            labels.append(model.labels.index(r[task]))
    lengths = torch.tensor([x.shape[0] for x in xs])
    x = torch.zeros(len(xs), int(lengths.max()), xs[0].shape[1])
    for i, f in enumerate(xs):
        x[i, :f.shape[0]] = f
    return x, lengths, torch.tensor(labels)


def saturated(t):
    return float(((t < 0.02) | (t > 0.98)).float().mean())


def probe(path, args):
    model = crnn.load(path)
    if args.reinit is not None:
        # The same architecture at initialization (seeded as `crnn train` seeds it).
        torch.manual_seed(args.reinit)
        fresh = crnn.nn.SequenceClassifier(**json.loads(model.options))
        with torch.no_grad():
            for n in model.parameter_names:
                getattr(model, n).copy_(getattr(fresh, n))
    x, lengths, y = batch(model, args.manifest, args.task, args.speakers, args.seed)
    out = {"model": path + (f" (re-initialized, seed {args.reinit})" if args.reinit is not None else ""),
           "utterances": int(len(y)), "classes": model.labels}
    model.train()
    log_p = model(x, lengths)
    loss = torch.nn.functional.nll_loss(log_p, y)
    loss.backward()
    p = log_p.exp().detach()
    out["loss"] = round(loss.item(), 4)
    out["loss / ln C"] = round(loss.item() / torch.log(torch.tensor(float(len(model.labels)))).item(), 4)
    out["max probability, mean"] = round(float(p.max(1).values.mean()), 4)
    out["predicted classes"] = torch.bincount(p.argmax(1), minlength=len(model.labels)).tolist()
    groups = collections.OrderedDict()
    for n in model.parameter_names:
        key = n.split("_")[0] if not n.startswith("front_end") else "_".join(n.split("_")[:3])
        w = getattr(model, n)
        gw = groups.setdefault(key, [0.0, 0.0])
        gw[0] += float(w.grad.pow(2).sum())
        gw[1] += float(w.detach().pow(2).sum())
    out["gradient norm (relative to weights)"] = {
        k: f"{v[0] ** 0.5:.3g} ({(v[0] ** 0.5) / max(v[1] ** 0.5, 1e-12):.2g})" for k, v in groups.items()}
    names = set(model.parameter_names)
    if "front_end_0_weight" not in names:
        return out
    with torch.no_grad():
        # Front end: the standard conv layer (sigmoid), via crnn.nn.WindowConv with the model's weights.
        conv = crnn.nn.WindowConv(x.shape[2], model.front_end_0_weight.shape[0], activation="sigmoid", window=5,
                                  shift=2, pool=2, pool_shift=2)
        conv.weight.copy_(model.front_end_0_weight)
        conv.bias.copy_(model.front_end_0_bias)
        # Pre-pool activations: the same layer without pooling.
        nopool = crnn.nn.WindowConv(x.shape[2], model.front_end_0_weight.shape[0], activation="sigmoid", window=5,
                                    shift=2)
        nopool.weight.copy_(model.front_end_0_weight)
        nopool.bias.copy_(model.front_end_0_bias)
        a, a_len = nopool(x, lengths)
        valid = torch.arange(a.shape[1])[None, :] < a_len[:, None]
        out["front end sigmoid: saturated"] = round(saturated(a[valid]), 3)
        out["front end sigmoid: mean"] = round(float(a[valid].mean()), 3)
        h_in, h_len = conv(x, lengths)
        # Classifier BLSTM gates, from the paper's equations (reference.py) per sequence.
        p = {("lstm_" + n[len("recurrent_"):]): getattr(model, n) for n in model.parameter_names
             if n.startswith("recurrent_")}
        gates = {"i": [], "f": [], "o": []}
        hs = []
        m = p["lstm_weight_hh"].shape[1]
        for b in range(len(y)):
            L = int(h_len[b])
            seq = h_in[b, :L]
            both = []
            for suffix, s in (("", seq), ("_reverse", seq.flip(0))):
                h = seq.new_zeros(m)
                c = seq.new_zeros(m)
                hh = []
                for t in range(L):
                    g = p["lstm_weight_ih" + suffix] @ s[t] + p["lstm_weight_hh" + suffix] @ h + p["lstm_bias" + suffix]
                    i, f, cc, o = g[:m], g[m:2 * m], g[2 * m:3 * m], g[3 * m:]
                    i = i + p["lstm_peephole_i" + suffix] * c
                    f = f + p["lstm_peephole_f" + suffix] * c
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cc)
                    o = o + p["lstm_peephole_o" + suffix] * c
                    h = torch.sigmoid(o) * torch.tanh(c)
                    gates["i"].append(torch.sigmoid(i))
                    gates["f"].append(torch.sigmoid(f))
                    gates["o"].append(torch.sigmoid(o))
                    hh.append(h)
                hh = torch.stack(hh)
                both.append(hh if suffix == "" else hh.flip(0))
            hs.append(torch.cat(both, 1))
        for k, v in gates.items():
            v = torch.stack(v)
            out[f"BLSTM gate {k}: saturated / mean"] = f"{saturated(v):.3f} / {float(v.mean()):.3f}"
        steps = torch.cat(hs)  # all valid steps × 512
        dense = steps @ model.dense_weight.t() + model.dense_bias
        active = dense > 0
        out["Dense ReLU: units never active"] = round(float((~active.any(0)).float().mean()), 3)
        out["Dense ReLU: zero outputs"] = round(float((~active).float().mean()), 3)
        logits = torch.relu(dense) @ model.classes_weight.t() + model.classes_bias
        out["class logits: std across classes (mean over steps)"] = round(float(logits.std(1).mean()), 4)
        out["class logits: std across steps (mean over classes)"] = round(float(logits.std(0).mean()), 4)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--speakers", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="which speakers form the batch")
    ap.add_argument("--reinit", type=int, default=None,
                    help="probe each model's architecture at initialization (torch.manual_seed(REINIT)) instead")
    args = ap.parse_args()
    crnn.set_num_threads(1)
    for m in args.models:
        print(json.dumps(probe(m, args), indent=1))


if __name__ == "__main__":
    main()
