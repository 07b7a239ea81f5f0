"""Training and evaluation with the paper's protocol, as `crnn train` and
`crnn eval` do it (the same library functions; the results as their JSON files
hold them).

    summary = crnn.train("my.toml", "runs/mine", overrides=["train.max_epochs=30"])
    summary["test_ua_recall"]                       # as runs/mine/summary.json
    crnn.train(resume="runs/mine")                   # an interrupted run goes on
    result = crnn.evaluate("runs/mine", split="test")
    result["ua_recall"], result["confusion"]        # as `crnn eval --json`
"""

import json
import os
import warnings

import torch

__all__ = ["evaluate", "train"]


def _path(value, name):
    if value is None:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"crnn: {name} must be a path, got {type(value).__name__}")
    return os.fspath(value)


def train(config=None, output=None, *, overrides=(), resume=None, progress=True):
    """Trains one run into the directory `output` from the run config file
    `config` (TOML; `crnn config dump PRESET` writes one), with `overrides`
    ("section.key=value", applied in order), or goes on with the interrupted
    run in `resume` (its own config.toml). Returns summary.json's contents as a
    dict. The log and, with `progress`, the batch progress go to stderr."""
    if isinstance(overrides, str):
        raise TypeError("crnn.train: overrides is a list of 'section.key=value' strings, not one string")
    text = torch.ops.crnn.train(_path(config, "config"), [str(o) for o in overrides], _path(output, "output"),
                                _path(resume, "resume"), bool(progress))
    return json.loads(text)


def evaluate(model, split="test", *, manifest=None, features=None, batch_size=32):
    """UA recall, WA, per-class recall and the confusion matrix of a trained
    model (a run directory or a model file) on a split ("train", "valid",
    "test" or "all", as its config splits the manifest), on the run's own
    manifest and features unless others are given: `crnn eval --json`'s dict.
    A split holding utterances the model was trained on gives a warning."""
    text, leak, skipped = torch.ops.crnn.evaluate(_path(model, "model"), str(split), _path(manifest, "manifest"),
                                                  _path(features, "features"), int(batch_size))
    if leak:
        warnings.warn(f"crnn.evaluate: {leak}", stacklevel=2)
    for s in skipped:
        warnings.warn(f"crnn.evaluate: skipped {s}", stacklevel=2)
    return json.loads(text)
