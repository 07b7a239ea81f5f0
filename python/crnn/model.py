"""Trained crnn models in Python: crnn.load() and crnn.Classifier."""

import json
import os
import warnings
from typing import List, NamedTuple, Optional

import torch

from . import _args
from .nn import SequenceClassifier

__all__ = ["Classifier", "Model", "Prediction", "load"]


def _no_signal_message(count_of_what, items):
    """`crnn predict`'s / `crnn features`' note on inputs whose every frame is
    identical, in the library's words (data::kNoSignal), listing the first 5."""
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return f"{count_of_what} {torch.ops.crnn.no_signal_text()}: {', '.join(items[:5])}{more}"


def _model_file(path):
    # A run directory's best.pt (an error saying why when it has none), or the file.
    return torch.ops.crnn.model_file(_args.path(path, "crnn: the model (a run directory or model file)", required=True))


class Model(SequenceClassifier):
    """A trained model (eval mode): forward(x, lengths) -> B × C log probabilities
    of normalized features, plus what the model file records:

    labels (class names in output order), task, feature_extractor (the describe()
    line of its front end), sample_rate, normalization ("speaker" or "global": how
    its training features were standardized), global_mean / global_std (training
    frames, float32 tensors of k values; None if the file has none), features(path_or_waveform, sample_rate=None) — raw features made
    exactly as for training — and save(path), which writes the current weights
    as a crnn model file. crnn.Classifier does files end to end."""

    def __init__(self, info, names, params, path):
        options = info["options"]
        torch.nn.Module.__init__(self)
        self.options = json.dumps(options, sort_keys=True)
        self.parameter_names = list(names)
        for name, value in zip(names, params):
            self.register_parameter(name, torch.nn.Parameter(value.clone()))
        self.labels = list(info["labels"])
        self.task = info["task"]
        self.feature_extractor = info["feature_extractor"]
        self.sample_rate = int(info["sample_rate"])
        self.normalization = info["normalization"]
        # float32 tensors of k values; None for model files that do not record them.
        self.global_mean = torch.tensor(info["global_mean"]) if "global_mean" in info else None
        self.global_std = torch.tensor(info["global_std"]) if "global_std" in info else None
        self.path = path
        self._classifier = None
        self.eval()

    def extra_repr(self):
        return f"path={self.path!r}, task={self.task!r}, labels={self.labels!r}"

    @property
    def classifier(self):
        if self._classifier is None:
            self._classifier = torch.classes.crnn.Classifier(self.path)
        return self._classifier

    def save(self, path):
        """Writes this model, with its current weights (fine-tuned in PyTorch, say),
        as a crnn model file that `crnn predict` / `crnn eval` / crnn.Classifier
        use like any other. Config, labels, feature extractor and global
        statistics are those of the file it was loaded from; written atomically."""
        params = [getattr(self, name).detach() for name in self.parameter_names]
        torch.ops.crnn.save_model(self.path, self.parameter_names, params, os.fspath(path))

    def features(self, audio, sample_rate=None):
        """Raw (unnormalized) features, frames × k, of an audio file or a mono waveform."""
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise ValueError("crnn.Model.features: a file's sample rate comes from its header; pass "
                                 "sample_rate only with a waveform")
            return self.classifier.features_of_file(os.fspath(audio))
        if sample_rate is None:
            raise ValueError("crnn.Model.features: a waveform needs its sample_rate")
        return self.classifier.features_of_waveform(torch.as_tensor(audio), int(sample_rate))


def load(path):
    """The model of a model file (best.pt) or run directory as a crnn.Model in eval mode."""
    path = _model_file(path)
    info, names, params = torch.ops.crnn.load_model(path)
    return Model(json.loads(info), names, params, path)


class Prediction(NamedTuple):
    path: str
    label: str  # "" when error is set
    probabilities: List[float]  # per class, in Classifier.labels order
    frames: int
    error: str  # "" on success
    no_signal: bool = False  # every frame identical (silence, DC, a steady tone): the label carries no information
    start: Optional[float] = None  # with segment=: the window's start and end in seconds (None: the whole file)
    end: Optional[float] = None


class Classifier:
    """The one inference path of `crnn predict`: audio files → features made as in
    training → normalization → model, batched as `crnn eval` batches.

    normalization: "auto" (as trained), "speaker", "utterance" or "global".
    paths: audio files and folders; a folder stands for the audio files under it
    (searched recursively, sorted; skipped files are reported as a warning),
    as `crnn predict DIR` does.
    speakers (optional, one per path): files of the same speaker are normalized
    with their joint statistics, as `crnn eval` and `crnn predict --manifest`
    do; a folder's speaker is that of every file in it. Without it each file is
    its own speaker.
    segment (seconds, optional): classify windows of this length instead of
    whole files (a long recording), `hop` seconds apart (default: back to
    back; at most `segment`), the last one ending with the file; each window
    is a Prediction with its start and end, and the file is normalized as a
    whole first, as `crnn predict --segment S --hop H` does."""

    def __init__(self, path):
        self.path = _model_file(path)
        self._impl = torch.classes.crnn.Classifier(self.path)
        self.labels = list(self._impl.labels())
        self.task = self._impl.task()
        self.feature_extractor = self._impl.feature_extractor()

    def predict(self, paths, normalization="auto", batch_size=32, speakers=None, segment=None, hop=None):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        given = paths
        try:
            paths = None if paths is None or isinstance(paths, bytes) else list(paths)
        except TypeError:  # not iterable
            paths = None
        if paths is None or not all(isinstance(p, (str, os.PathLike)) for p in paths):
            raise TypeError(f"crnn.Classifier.predict: paths must be a path or a list of paths, got {given!r}")
        paths = [os.fspath(p) for p in paths]
        if isinstance(speakers, str):
            raise ValueError("crnn.Classifier.predict: speakers is a list with one speaker per path, not a string")
        speakers = [] if speakers is None else [str(s) for s in speakers]
        if speakers and len(speakers) != len(paths):
            raise ValueError(f"crnn.Classifier.predict: {len(speakers)} speakers for {len(paths)} paths "
                             "(one speaker per path)")
        files, file_speakers = [], []
        for i, path in enumerate(paths):
            if os.path.isdir(path):
                found, notes = torch.ops.crnn.find_audio_files(path)
                for note in notes:
                    warnings.warn(f"crnn.Classifier.predict: {note}", stacklevel=2)
            else:
                found = [path]
            files += found
            if speakers:
                file_speakers += [speakers[i]] * len(found)
        if hop is not None and segment is None:
            raise ValueError("crnn.Classifier.predict: hop needs segment (the window length in seconds)")
        seconds = []  # 0: not given
        for name, value in (("segment", segment), ("hop", hop)):
            v = 0.0 if value is None else _args.number(value, f"crnn.Classifier.predict: {name}")
            if value is not None and not v > 0:
                raise ValueError(f"crnn.Classifier.predict: {name} must be a number of seconds > 0, got {value!r}")
            seconds.append(v)
        rows = self._impl.predict(files, normalization, _args.integer(batch_size, "crnn.Classifier.predict: batch_size"),
                                  file_speakers, *seconds)
        predictions = [Prediction(*row[:6], *(None if t < 0 else t for t in row[6:])) for row in rows]
        silent = [p.path if p.start is None else f"{p.path} {p.start:.2f}-{p.end:.2f} s"
                  for p in predictions if p.no_signal]
        if silent:
            what = f"{len(silent)} {'segment(s)' if segment is not None else 'input(s)'}"
            warnings.warn(f"crnn.Classifier.predict: {_no_signal_message(what, silent)}; their "
                          "labels carry no information (Prediction.no_signal)", stacklevel=2)
        return predictions
