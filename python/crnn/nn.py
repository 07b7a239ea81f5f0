"""crnn's layers as torch.nn.Modules.

Each module holds ordinary torch.nn.Parameters (any torch optimizer trains
them; state_dict saves them) and runs crnn's C++ layer — fused forward and
backward kernels — through `torch.ops.crnn.module_forward`. Inputs are a
padded batch, B × T × k (float32 or float64), and its lengths (B integers in
1..T), as in the C++ API; frames past a sequence's length are ignored.

Options are the C++ options (docs/layers.md); an option left at None takes the
C++ default, so the two never disagree. Parameters are initialized by the C++
rule from torch's default generator: torch.manual_seed(s) before building a
module gives the C++ module built after torch::manual_seed(s).
"""

import json
import os

import torch

__all__ = ["ConvRecurrent", "WindowConv", "PeepholeLSTM", "SequenceClassifier"]


class _CrnnModule(torch.nn.Module):
    """A crnn module of `kind` with the given options (None = C++ default)."""

    _kind = ""

    def __init__(self, **options):
        super().__init__()
        options = {k: v for k, v in options.items() if v is not None}
        self.options = json.dumps(options, sort_keys=True)
        names, params = torch.ops.crnn.module_init(self._kind, self.options)
        self.parameter_names = list(names)
        for name, value in zip(names, params):
            self.register_parameter(name, torch.nn.Parameter(value))

    def _run(self, x, lengths):
        if not isinstance(lengths, torch.Tensor):  # a list or tuple of lengths, as a user would write them
            lengths = torch.as_tensor(lengths)
        params = [getattr(self, n) for n in self.parameter_names]
        return torch.ops.crnn.module_forward(self._kind, self.options, params, x, lengths, self.training)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in json.loads(self.options).items() if k != "config")


class ConvRecurrent(_CrnnModule):
    """The Convolutional Recurrent layer (paper §III-C): a recurrent network runs
    over every window of `window` frames (shift `shift`) with shared weights, each
    window becomes `features` values, max pooling over `pool` windows follows.

    kind: "rnn" (CRNN), "lstm" (CLSTM; extended=True: Extended CLSTM), "blstm" (CBLSTM).
    source: "hidden" | "cell" | "output"; combine: "hidden" | "cell" (with source="output");
    reduce: "last" | "max" | "mean"; hidden_size: 0 = derived; peepholes; impl: "fused" | "composed".

    forward(x, lengths) -> (y, y_lengths): B × T'' × features and the pooled window counts.
    """

    _kind = "conv_recurrent"

    def __init__(self, input_size, features, *, hidden_size=None, kind=None, extended=None, source=None,
                 combine=None, reduce=None, window=None, shift=None, pool=None, pool_shift=None, peepholes=None,
                 impl=None):
        super().__init__(input_size=input_size, features=features, hidden_size=hidden_size, kind=kind,
                         extended=extended, source=source, combine=combine, reduce=reduce, window=window,
                         shift=shift, pool=pool, pool_shift=pool_shift, peepholes=peepholes, impl=impl)

    def forward(self, x, lengths):
        return self._run(x, lengths)


class WindowConv(_CrnnModule):
    """The standard convolutional layer over windows (the paper's baseline front
    end): features = activation(W · window + b), then max pooling.

    activation: "sigmoid" | "relu" | "tanh". forward(x, lengths) -> (y, y_lengths).
    """

    _kind = "window_conv"

    def __init__(self, input_size, features, *, activation=None, window=None, shift=None, pool=None,
                 pool_shift=None):
        super().__init__(input_size=input_size, features=features, activation=activation, window=window,
                         shift=shift, pool=pool, pool_shift=pool_shift)

    def forward(self, x, lengths):
        return self._run(x, lengths)


class PeepholeLSTM(_CrnnModule):
    """The peephole (B)LSTM of the classifiers (paper eqs. 3–7).

    forward(x, lengths) -> (h, lengths): B × T × hidden_size (× 2 bidirectional,
    [forward ‖ backward]); steps past a sequence's length are zero.
    """

    _kind = "peephole_lstm"

    def __init__(self, input_size, hidden_size, *, bidirectional=None, peepholes=None, impl=None):
        super().__init__(input_size=input_size, hidden_size=hidden_size, bidirectional=bidirectional,
                         peepholes=peepholes, impl=impl)

    def forward(self, x, lengths):
        return self._run(x, lengths)


class SequenceClassifier(_CrnnModule):
    """The paper's sequence classifiers: front end → (B)LSTM → Dense(ReLU) →
    softmax averaged over the last steps.

    Build with SequenceClassifier.preset(name, classes) (names as
    `crnn config dump`: emotion-clstm, agender-cblstm, ...) or
    SequenceClassifier(classes=C, config=<run config TOML text>).

    forward(x, lengths) -> B × C log of the averaged class probabilities: the
    loss is torch.nn.functional.nll_loss(model(x, lengths), labels).
    """

    _kind = "sequence_classifier"

    def __init__(self, *, classes, input_size=None, preset=None, config=None):
        if isinstance(config, os.PathLike) or (isinstance(config, str) and "\n" not in config
                                                and config.strip().endswith(".toml")):
            raise ValueError(f"crnn.nn.SequenceClassifier: config takes the TOML text of a run config, not a file "
                             f"name ({os.fspath(config)!r}): pass open(path).read()")
        super().__init__(classes=classes, input_size=input_size, preset=preset, config=config)

    @classmethod
    def preset(cls, name, classes, input_size=26):
        return cls(classes=classes, input_size=input_size, preset=name)

    def forward(self, x, lengths):
        return self._run(x, lengths)[0]
