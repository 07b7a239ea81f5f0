"""crnn.nn layers: equal to a pure-PyTorch reference of the paper's equations on
ragged batches, exact first derivatives (gradcheck, float64), and clear errors."""

import itertools
import json

import pytest
import torch

import crnn
import reference

torch.set_num_threads(2)


def ragged(batch=3, steps=13, k=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, k, generator=g, dtype=dtype)
    lengths = torch.tensor([steps, 3, steps - 2][:batch])  # one shorter than a window
    return x, lengths


def params_of(module):
    return {n: getattr(module, n) for n in module.parameter_names}


# Every kind × source × reduce × extended × direction the layer accepts.
CONV_RECURRENT_CASES = [
    dict(kind="rnn", source="hidden", reduce="last"),
    dict(kind="rnn", source="output", reduce="max"),
    dict(kind="rnn", source="hidden", reduce="mean"),
] + [
    dict(kind=kind, source=source, reduce=reduce, extended=extended)
    for kind, source, reduce, extended in itertools.product(
        ["lstm", "blstm"], ["hidden", "cell", "output"], ["last", "max", "mean"], [False, True])
] + [
    dict(kind="lstm", source="output", combine="cell", reduce="max"),
    dict(kind="blstm", source="output", combine="cell", reduce="max"),  # eq. 9, the paper's CBLSTM
    dict(kind="lstm", source="cell", reduce="last", peepholes=False),
]


def case_id(c):
    return "-".join(f"{k}={v}" for k, v in c.items())


def make_layer(case, features=6, **extra):
    o = dict(case)
    if o.get("kind") == "blstm" and o.get("source") != "output":
        features = 6  # n = 2m
    o.update(dict(window=4, shift=2, pool=2, pool_shift=2), **extra)
    return crnn.nn.ConvRecurrent(4, features, **o).double(), o


@pytest.mark.parametrize("case", CONV_RECURRENT_CASES, ids=case_id)
def test_conv_recurrent_matches_the_equations(case):
    torch.manual_seed(1)
    layer, o = make_layer(case)
    x, lengths = ragged()
    y, y_lengths = layer(x, lengths)
    want, want_lengths = reference.windowed_layer(x, lengths, params_of(layer), o, reference.window_features)
    assert torch.equal(y_lengths, want_lengths)
    assert y.shape == want.shape
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_RECURRENT_CASES, ids=case_id)
def test_conv_recurrent_gradients_are_exact(case):
    torch.manual_seed(2)
    layer, _ = make_layer(case)
    x, lengths = ragged(steps=9)
    x.requires_grad_(True)
    params = [getattr(layer, n) for n in layer.parameter_names]

    def f(x, *ps):
        return torch.ops.crnn.module_forward("conv_recurrent", layer.options, list(ps), x, lengths, True)[0]

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


def test_composed_and_fused_implementations_agree():
    torch.manual_seed(3)
    fused = crnn.nn.ConvRecurrent(4, 6, kind="blstm", source="output", combine="cell", reduce="max",
                                  impl="fused").double()
    composed = crnn.nn.ConvRecurrent(4, 6, kind="blstm", source="output", combine="cell", reduce="max",
                                     impl="composed").double()
    composed.load_state_dict(fused.state_dict())
    x, lengths = ragged()
    torch.testing.assert_close(fused(x, lengths)[0], composed(x, lengths)[0])


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_window_conv_matches_the_definition_and_gradcheck(activation):
    torch.manual_seed(4)
    o = dict(activation=activation, window=3, shift=2, pool=2, pool_shift=1)
    layer = crnn.nn.WindowConv(4, 5, **o).double()
    x, lengths = ragged()
    y, y_lengths = layer(x, lengths)
    want, want_lengths = reference.windowed_layer(x, lengths, params_of(layer), o, reference.conv_window_features)
    assert torch.equal(y_lengths, want_lengths)
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-12)
    x.requires_grad_(True)
    params = [getattr(layer, n) for n in layer.parameter_names]
    f = lambda x, *ps: torch.ops.crnn.module_forward("window_conv", layer.options, list(ps), x, lengths, True)[0]
    if activation != "relu":  # relu's kink makes finite differences unreliable
        assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_peephole_lstm_matches_the_equations_and_gradcheck(bidirectional):
    torch.manual_seed(5)
    layer = crnn.nn.PeepholeLSTM(4, 3, bidirectional=bidirectional).double()
    x, lengths = ragged(steps=7)
    h, h_lengths = layer(x, lengths)
    assert torch.equal(h_lengths, lengths)
    p = params_of(layer)
    p = {"lstm_" + k: v for k, v in p.items()}
    for b in range(x.shape[0]):
        L = int(lengths[b])
        fwd, _ = reference.peephole_lstm_steps(x[b, :L], p)
        want = fwd
        if bidirectional:
            bwd, _ = reference.peephole_lstm_steps(x[b, :L].flip(0), p, "_reverse")
            want = torch.cat([fwd, bwd.flip(0)], 1)
        torch.testing.assert_close(h[b, :L], want, rtol=1e-10, atol=1e-12)
        assert torch.all(h[b, L:] == 0)
    x.requires_grad_(True)
    params = [getattr(layer, n) for n in layer.parameter_names]
    f = lambda x, *ps: torch.ops.crnn.module_forward("peephole_lstm", layer.options, list(ps), x, lengths, True)[0]
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


def test_classifier_gradcheck_and_output_is_a_log_distribution():
    torch.manual_seed(6)
    config = crnn_config("agender-cblstm", recurrent_size=3, dense_size=4, features=4)
    model = crnn.nn.SequenceClassifier(classes=3, input_size=4, config=config).double()
    x, lengths = ragged(steps=11)
    log_p = model(x, lengths)
    torch.testing.assert_close(log_p.exp().sum(1), torch.ones(3, dtype=torch.float64))
    x.requires_grad_(True)
    params = [getattr(model, n) for n in model.parameter_names]
    f = lambda x, *ps: torch.ops.crnn.module_forward("sequence_classifier", model.options, list(ps), x, lengths,
                                                    True)[0]
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


def crnn_config(preset, recurrent_size, dense_size, features):
    """A small run config: `crnn config dump` of a preset with the sizes shrunk."""
    import os
    import subprocess
    sets = [f"model.recurrent_size={recurrent_size}", f"model.dense_size={dense_size}",
            f"model.front_end.*.features={features}", "model.front_end.*.hidden_size=2"]
    args = [os.environ.get("CRNN_BINARY", "crnn"), "config", "dump", preset]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def test_same_seed_same_parameters_as_options_say():
    torch.manual_seed(7)
    a = crnn.nn.ConvRecurrent(26, 100, kind="lstm", source="cell")
    torch.manual_seed(7)
    b = crnn.nn.ConvRecurrent(26, 100, kind="lstm", source="cell")
    for n in a.parameter_names:
        assert torch.equal(getattr(a, n), getattr(b, n))
    assert json.loads(a.options) == {"input_size": 26, "features": 100, "kind": "lstm", "source": "cell"}
    # U(−1/√m, 1/√m) for the recurrent parameters (m = 100).
    assert a.lstm_weight_hh.abs().max() <= 0.1
    assert {n: tuple(getattr(a, n).shape) for n in a.parameter_names}["lstm_weight_ih"] == (400, 26)


def test_forward_leaves_the_random_stream_alone():
    layer = crnn.nn.ConvRecurrent(4, 6)
    x, lengths = ragged(dtype=torch.float32)
    torch.manual_seed(8)
    layer(x, lengths)
    after = torch.rand(3)
    torch.manual_seed(8)
    assert torch.equal(after, torch.rand(3))


@pytest.mark.parametrize("make", [
    lambda: crnn.nn.ConvRecurrent(4, 6),
    lambda: crnn.nn.PeepholeLSTM(4, 5, bidirectional=True),
    lambda: crnn.nn.SequenceClassifier.preset("emotion-clstm", 3, input_size=4),
])
def test_inference_mode_gives_the_no_grad_result(make):
    # torch.inference_mode() is PyTorch's recommended way to run a model; it
    # used to fail inside crnn's op ("Inference tensors do not track version counter").
    torch.manual_seed(5)
    module = make().eval()
    x, lengths = ragged(dtype=torch.float32)
    with torch.no_grad():
        want = module(x, lengths)
    with torch.inference_mode():
        got = module(x, lengths)
        x_inference = x.clone()  # an inference tensor as input too
        got_again = module(x_inference, lengths)
    for w, g, h in zip(want, got, got_again):
        assert torch.equal(w, g) and torch.equal(w, h)


# --- bad input: Python exceptions with clear messages, never a crash -----------

@pytest.fixture
def layer():
    return crnn.nn.ConvRecurrent(4, 6)


def test_wrong_feature_count(layer):
    with pytest.raises(RuntimeError, match="x has 5 features per frame, the module expects 4"):
        layer(torch.randn(2, 10, 5), torch.tensor([10, 4]))


def test_wrong_rank(layer):
    with pytest.raises(RuntimeError, match=r"x must be batch × time × features \(3-D\)"):
        layer(torch.randn(10, 4), torch.tensor([10]))


def test_wrong_dtype(layer):
    with pytest.raises(RuntimeError, match="x must be float32 or float64, got Int"):
        layer(torch.ones(2, 10, 4, dtype=torch.int32), torch.tensor([10, 4]))
    with pytest.raises(RuntimeError, match=r"is Float but x is Double \(convert one"):
        layer(torch.randn(2, 10, 4, dtype=torch.float64), torch.tensor([10, 4]))


@pytest.mark.parametrize("lengths,message", [
    (torch.tensor([11, 4]), r"lengths must be in 1..10 \(the padded length of x\), got values from 4 to 11"),
    (torch.tensor([0, 4]), r"lengths must be in 1..10"),
    (torch.tensor([-3, 4]), r"lengths must be in 1..10"),
    (torch.tensor([10]), r"lengths must have one entry per sequence \(2\)"),
    (torch.tensor([10.0, 4.0]), r"lengths must be an integer tensor, got Float"),
])
def test_bad_lengths(layer, lengths, message):
    with pytest.raises(RuntimeError, match=message):
        layer(torch.randn(2, 10, 4), lengths)


def test_cuda_tensors_are_refused_with_a_message(layer):
    # This build has no CUDA: a meta tensor stands for any non-CPU device.
    with pytest.raises(RuntimeError, match="runs on the CPU only"):
        layer(torch.empty(2, 10, 4, device="meta"), torch.tensor([10, 4]))


def test_non_finite_input(layer):
    x = torch.randn(2, 10, 4)
    x[1, 2, 3] = float("nan")
    with pytest.raises(RuntimeError, match="x contains NaN or infinite values"):
        layer(x, torch.tensor([10, 4]))


def test_non_contiguous_input_gives_the_contiguous_result(layer):
    x = torch.randn(2, 4, 10).transpose(1, 2)  # 2 × 10 × 4, not contiguous
    assert not x.is_contiguous()
    lengths = torch.tensor([10, 6])
    torch.testing.assert_close(layer(x, lengths)[0], layer(x.contiguous(), lengths)[0], rtol=0, atol=0)


def test_bad_options_name_the_option():
    with pytest.raises(RuntimeError, match=r"crnn.nn.ConvRecurrent: option 'kind': .*lstm"):
        crnn.nn.ConvRecurrent(4, 6, kind="gru")
    with pytest.raises(RuntimeError, match=r"crnn.nn.ConvRecurrent: option 'window' must be an integer"):
        crnn.nn.ConvRecurrent(4, 6, window=2.5)
    with pytest.raises(RuntimeError, match=r"crnn.nn.ConvRecurrent: .*window"):
        crnn.nn.ConvRecurrent(4, 6, window=0)
    with pytest.raises(RuntimeError, match=r"crnn.nn.SequenceClassifier: .*unknown preset|crnn.nn.SequenceClassifier"):
        crnn.nn.SequenceClassifier.preset("emotion-gru", 4)
    with pytest.raises(RuntimeError, match="unknown option 'windows'"):
        torch.ops.crnn.module_init("conv_recurrent", json.dumps({"input_size": 4, "features": 6, "windows": 3}))
    with pytest.raises(ValueError, match="config takes the TOML text of a run config, not a file name"):
        crnn.nn.SequenceClassifier(classes=3, config="configs/ravdess-emotion8-clstm.toml")


def test_lengths_as_a_list_equal_lengths_as_a_tensor(layer):
    x, lengths = ragged(dtype=torch.float32)
    want = layer(x, lengths)
    got = layer(x, lengths.tolist())
    assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])


def test_wrong_parameter_shape_is_named(layer):
    params = [getattr(layer, n) for n in layer.parameter_names]
    params[0] = torch.randn(3, 3)
    with pytest.raises(RuntimeError, match=r"parameter lstm_weight_ih has shape \[3, 3\]"):
        torch.ops.crnn.module_forward("conv_recurrent", layer.options, params, torch.randn(1, 10, 4),
                                      torch.tensor([10]), False)
