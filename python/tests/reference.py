"""A pure-PyTorch reference of the paper's layers (eqs. 1–9), written from the
equations (../shared/SPEC.md §1) one window at a time: slow and obvious, the
independent expectation the crnn operators are checked against. Parameters are
read by name from a crnn.nn module; nothing here calls crnn."""

import torch


def peephole_lstm_steps(x, p, suffix="", positions=False):
    """States of a peephole LSTM (eqs. 3–7) over the rows of x (steps × k), from
    zero state. p: the module's parameters by name; positions: a separate input
    matrix per step (Extended CLSTM). Returns (h, c), steps × m each."""
    w_ih, w_hh, b = p["lstm_weight_ih" + suffix], p["lstm_weight_hh" + suffix], p["lstm_bias" + suffix]
    m = w_hh.shape[1]
    h = x.new_zeros(m)
    c = x.new_zeros(m)
    peep = ("lstm_peephole_i" + suffix) in p
    hs, cs = [], []
    for t in range(x.shape[0]):
        w = w_ih[t] if positions else w_ih
        g = w @ x[t] + w_hh @ h + b
        i, f, cc, o = g[:m], g[m:2 * m], g[2 * m:3 * m], g[3 * m:]
        if peep:
            i = i + p["lstm_peephole_i" + suffix] * c
            f = f + p["lstm_peephole_f" + suffix] * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cc)
        if peep:
            o = o + p["lstm_peephole_o" + suffix] * c
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def window_features(win, p, o):
    """f(w) of one window (r1 × k) for the ConvRecurrent options o."""
    kind, source = o.get("kind", "lstm"), o.get("source", "hidden")
    combine, reduce = o.get("combine", "hidden"), o.get("reduce", "last")
    extended = o.get("extended", False)
    if kind == "rnn":  # eq. 1
        m = p["rnn_weight_hh"].shape[0]
        h = win.new_zeros(m)
        hs = []
        for t in range(win.shape[0]):
            h = torch.sigmoid(p["rnn_weight_ih"] @ win[t] + p["rnn_weight_hh"] @ h + p["rnn_bias"])
            hs.append(h)
        seq = torch.stack(hs)
    else:
        h, c = peephole_lstm_steps(win, p, positions=extended)
        states = c if (source == "cell" or (source == "output" and combine == "cell")) else h
        if kind == "blstm":  # the backward LSTM reads the window from its last frame
            hb, cb = peephole_lstm_steps(win.flip(0), p, "_reverse", positions=False) if not extended else \
                _backward_extended(win, p)
            hb, cb = hb.flip(0), cb.flip(0)  # back to window positions
            back = cb if (source == "cell" or (source == "output" and combine == "cell")) else hb
            states = torch.cat([states, back], 1)
        seq = states
    if source == "output":  # eqs. 2, 8, 9
        seq = seq @ p["output_weight"].t() + p["output_bias"]
    if reduce == "max":
        return seq.max(0).values
    if reduce == "mean":
        return seq.mean(0)
    return seq[-1]


def _backward_extended(win, p):
    # Position-specific input weights follow the frame's window position in both directions.
    r1 = win.shape[0]
    w = p["lstm_weight_ih_reverse"]
    q = dict(p)
    q["lstm_weight_ih_reverse"] = torch.stack([w[r1 - 1 - t] for t in range(r1)])
    return peephole_lstm_steps(win.flip(0), q, "_reverse", positions=True)


def conv_window_features(win, p, o):
    """The standard convolutional layer: act(Σ W_i ⊙ w + b_i); weight n × k × r1."""
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[o.get("activation", "sigmoid")]
    return act(torch.einsum("nkr,rk->n", p["weight"], win) + p["bias"])


def windowed_layer(x, lengths, p, o, f):
    """Windows (r1, r2; a short sequence zero-padded to one window), f per
    window, max pooling (p1, p2) over the valid windows; zero padding after."""
    r1, r2 = o.get("window", 5), o.get("shift", 2)
    p1, p2 = o.get("pool", 1), o.get("pool_shift", 1)
    outs, out_lengths = [], []
    for b in range(x.shape[0]):
        L = int(lengths[b])
        xb = x[b, :L]
        if L < r1:
            xb = torch.cat([xb, xb.new_zeros(r1 - L, xb.shape[1])])
        windows = (max(L, r1) - r1) // r2 + 1
        feats = torch.stack([f(xb[w * r2:w * r2 + r1], p, o) for w in range(windows)])
        pooled_n = (windows - p1) // p2 + 1 if windows >= p1 else 1
        pooled = torch.stack([feats[j * p2:j * p2 + p1].max(0).values for j in range(pooled_n)])
        outs.append(pooled)
        out_lengths.append(pooled_n)
    t = max(out_lengths)
    y = x.new_zeros(x.shape[0], t, outs[0].shape[1])
    for b, out in enumerate(outs):
        y[b, :out.shape[0]] = out
    return y, torch.tensor(out_lengths)
