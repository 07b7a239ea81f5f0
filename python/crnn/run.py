"""Features, training and evaluation with the paper's protocol, as `crnn
features`, `crnn train` and `crnn eval` do them (the same library functions;
the results as their JSON files hold them).

    crnn.extract_features("my.csv", "my.h5")         # or kind="egemaps"

    summary = crnn.train("my.toml", "runs/mine", overrides=["train.max_epochs=30"])
    summary["test_ua_recall"]                       # as runs/mine/summary.json
    crnn.train(resume="runs/mine")                   # an interrupted run goes on
    crnn.repeat("my.toml", "runs/mine-x5", seeds=5)["test_ua_recall_mean"]
    tables = crnn.experiment("tables.toml", "results/mine", jobs=2)   # as results.json
    result = crnn.evaluate("runs/mine", split="test")
    result["ua_recall"], result["confusion"]        # as `crnn eval --json`
"""

import json
import os
import sys
import warnings

import torch

from . import _args
from .model import _no_signal_message

__all__ = ["config", "evaluate", "experiment", "extract_features", "presets", "repeat", "train"]


def _overrides(overrides, function):
    if isinstance(overrides, str):
        raise TypeError(f"{function}: overrides is a list of 'section.key=value' strings, not one string")
    return [str(o) for o in overrides]


def _training(function, op, *args):
    """Runs a training op. Ctrl-C stops it after the current batch (the op
    catches SIGINT while it runs) with KeyboardInterrupt; the run is resumable
    from its last finished epoch."""
    try:
        return op(*args)
    except RuntimeError as e:
        message = str(e).split("\n")[0]
        marker = f"{function}: interrupted: "
        if marker in message:
            raise KeyboardInterrupt(message[message.index(marker):]) from None
        raise


def presets():
    """The model presets (the paper's setups): "emotion-clstm", "agender-cblstm", ..."""
    return list(torch.ops.crnn.presets())


def config(preset, overrides=()):
    """The complete run config of a model preset as TOML text, with `overrides`
    ("section.key=value") applied: `crnn config dump PRESET --set ...`. Its data
    keys name the paper's corpus as placeholders: set data.manifest,
    data.features and data.task. Write it to a file for crnn.train:

        open("my.toml", "w").write(crnn.config("emotion-clstm", ["data.manifest=my.csv",
                                   "data.features=my.h5", "data.task=label"]))
    """
    return torch.ops.crnn.config(str(preset), _overrides(overrides, "crnn.config"))


def train(config=None, output=None, *, overrides=(), resume=None, progress=True):
    """Trains one run into the directory `output` from the run config file
    `config` (TOML; `crnn config dump PRESET` writes one), with `overrides`
    ("section.key=value", applied in order), or goes on with the interrupted
    run in `resume` (its own config.toml). Returns summary.json's contents as a
    dict. The log and, with `progress`, the batch progress go to stderr (the
    process's, not sys.stderr). Ctrl-C stops after the current batch with
    KeyboardInterrupt; crnn.train(resume=output) goes on from the last finished
    epoch."""
    overrides = _overrides(overrides, "crnn.train")
    return json.loads(_training("crnn.train", torch.ops.crnn.train, _args.path(config, "crnn.train: config"),
                                overrides, _args.path(output, "crnn.train: output"),
                                _args.path(resume, "crnn.train: resume"), _args.flag(progress, "crnn.train: progress")))


def repeat(config, output, *, seeds=5, first_seed=1, overrides=(), progress=True):
    """Trains `seeds` runs of the run config file `config` (seeds first_seed,
    first_seed + 1, ...) into output/seed_<s>/, as `crnn repeat` does:
    finished seeds are skipped and an interrupted one resumes, so calling it
    again goes on. Returns repeat.json's contents as a dict: every run's test
    UA recall and WA, and their mean and sample std. Ctrl-C stops after the
    current batch with KeyboardInterrupt."""
    overrides = _overrides(overrides, "crnn.repeat")
    return json.loads(_training("crnn.repeat", torch.ops.crnn.repeat,
                                _args.path(config, "crnn.repeat: config", required=True), overrides,
                                _args.path(output, "crnn.repeat: output", required=True),
                                _args.integer(seeds, "crnn.repeat: seeds"),
                                _args.integer(first_seed, "crnn.repeat: first_seed"),
                                _args.flag(progress, "crnn.repeat: progress")))


def experiment(file, output, *, tables=(), overrides=(), jobs=1, time_limit=None, results_only=False,
               progress=True):
    """Trains the results tables of the experiment file `file` (rows × columns
    × seeds; docs/experiments.md) into `output`, as `crnn experiment` does:
    finished runs are skipped and interrupted ones resume, so calling it again
    goes on; results.md, results.json and a chart per table are rewritten
    after every run. Returns results.json's contents as a dict (with a
    "cross_validation" entry for tables with folds).

    tables: only these table ids. overrides: "section.key=value" for every
    cell. jobs: runs at a time, each in its own Python process with
    crnn.set_num_threads' count / jobs threads (logs in output/logs/).
    time_limit: start no run estimated to end after this long (seconds, or
    text such as "2h30m"). results_only: rewrite the results from the finished
    runs, train nothing. Runs that fail are named in a RuntimeError once the
    others are done (their results are written). Ctrl-C stops the runs in
    training after their current batch with KeyboardInterrupt."""
    function = "crnn.experiment"
    if isinstance(tables, str):
        raise TypeError(f"{function}: tables is a list of table ids, not one string")
    tables = [str(t) for t in tables]
    overrides = _overrides(overrides, function)
    jobs = _args.integer(jobs, f"{function}: jobs")
    if time_limit is None:
        limit = ""
    elif isinstance(time_limit, str):
        limit = time_limit
    else:
        limit = format(_args.number(time_limit, f"{function}: time_limit"), "f")
    file = _args.path(file, f"{function}: file", required=True)
    output = _args.path(output, f"{function}: output", required=True)
    threads = max(1, torch.get_num_threads() // max(1, jobs))
    payload = json.dumps({"file": os.path.abspath(file), "output": os.path.abspath(output),
                          "overrides": overrides, "tables": tables, "threads": threads})
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # sys.executable, not this process's /proc/self/exe: in a virtualenv that is
    # the base interpreter, without the virtualenv's packages.
    worker = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import crnn.run; "
              "sys.exit(crnn.run._experiment_worker(sys.argv[2], sys.argv[3]))", package_parent, payload]
    text, notes, failed, stopped, _trained, _skipped, _not_started = _training(
        function, torch.ops.crnn.experiment, file, output, overrides, tables, jobs, threads, limit,
        not _args.flag(results_only, f"{function}: results_only"), _args.flag(progress, f"{function}: progress"),
        worker)
    for note in notes:
        warnings.warn(f"{function}: {note}", stacklevel=2)
    if failed:
        stop = "; no other run was started: the error is one every run would hit" if stopped else ""
        raise RuntimeError(f"{function}: {len(failed)} run(s) failed{stop} (the finished runs' results are in "
                           f"{os.path.join(output, 'results.json')}): " + "; ".join(failed))
    return json.loads(text)


def _experiment_worker(payload, job):
    """A crnn.experiment jobs > 1 worker process: trains one run of the plan;
    its exit code as `crnn experiment --run-job`'s (2: an error every run
    would hit)."""
    from . import set_num_threads
    p = json.loads(payload)
    set_num_threads(p["threads"])
    try:
        return int(torch.ops.crnn.experiment_job(p["file"], p["output"], p["overrides"], p["tables"], int(job)))
    except RuntimeError as e:
        message = str(e).split("\n")[0]
        if "crnn.experiment: interrupted: " not in message:
            raise
        print(message, file=sys.stderr)
        return 130


def evaluate(model, split="test", *, manifest=None, features=None, batch_size=32, predictions=None):
    """UA recall, WA, per-class recall and the confusion matrix of a trained
    model (a run directory or a model file) on a split ("train", "valid",
    "test" or "all", as its config splits the manifest), on the run's own
    manifest and features unless others are given: `crnn eval --json`'s dict.
    predictions: a CSV path that also gets the per-utterance predictions (id,
    path, speaker, truth, label, frames, a probability per class), as
    `crnn eval --predictions` writes them.
    A split holding utterances the model was trained on gives a warning."""
    text, leak, skipped = torch.ops.crnn.evaluate(
        _args.path(model, "crnn.evaluate: model", required=True), str(split),
        _args.path(manifest, "crnn.evaluate: manifest"), _args.path(features, "crnn.evaluate: features"),
        _args.integer(batch_size, "crnn.evaluate: batch_size"),
        _args.path(predictions, "crnn.evaluate: predictions"))
    if leak:
        warnings.warn(f"crnn.evaluate: {leak}", stacklevel=2)
    for s in skipped:
        warnings.warn(f"crnn.evaluate: skipped {s}", stacklevel=2)
    return json.loads(text)


def extract_features(manifest, output, *, kind="fbank", sample_rate=16000, num_bins=None, window=None,
                     keep_going=False, covered_manifest=None):
    """`crnn features`: the features of every row of the CSV `manifest` into the
    HDF5 file `output` (created, or resumed: rows already there are kept),
    computed with the worker threads of crnn.set_num_threads. kind "fbank"
    (log mel filterbank: num_bins, default 26, and window, default "povey") or
    "egemaps" (the 25 eGeMAPS v02 LLDs). Returns the report as a dict: total,
    extracted, present, skipped, failed, no_signal, missing_note. Failed files
    raise RuntimeError (the others are written) unless keep_going; skipped
    (too short) and no-signal files are warnings. covered_manifest: a CSV path
    that gets the manifest's rows that have features (a manifest to train on
    with this store; report["covered"] counts them), as `--covered-manifest`."""
    if kind != "fbank" and (num_bins is not None or window is not None):
        raise ValueError(f"crnn.extract_features: num_bins and window apply to kind='fbank' only (not {kind!r})")
    total, extracted, present, skipped, failed, no_signal, missing_note, covered = torch.ops.crnn.extract_features(
        _args.path(manifest, "crnn.extract_features: manifest", required=True),
        _args.path(output, "crnn.extract_features: output", required=True), str(kind),
        _args.integer(sample_rate, "crnn.extract_features: sample_rate"),
        26 if num_bins is None else _args.integer(num_bins, "crnn.extract_features: num_bins"),
        "povey" if window is None else str(window),
        _args.path(covered_manifest, "crnn.extract_features: covered_manifest"))
    report = {"total": total, "extracted": extracted, "present": present, "skipped": list(skipped),
              "failed": list(failed), "no_signal": list(no_signal), "missing_note": missing_note}
    if covered_manifest is not None:
        report["covered"] = covered
    for s in skipped:
        warnings.warn(f"crnn.extract_features: skipped {s}", stacklevel=2)
    if no_signal:
        warnings.warn(f"crnn.extract_features: {_no_signal_message(f'{len(no_signal)} file(s)', list(no_signal))}",
                      stacklevel=2)
    if failed and not _args.flag(keep_going, "crnn.extract_features: keep_going"):
        note = f"; {missing_note}" if missing_note else ""
        raise RuntimeError(f"crnn.extract_features: {len(failed)} of {total} file(s) failed (the others are in "
                           f"{output}): {'; '.join(failed[:5])}{note}")
    return report
