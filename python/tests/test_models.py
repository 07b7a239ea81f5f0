"""Trained crnn models from Python: crnn.load, crnn.Classifier, crnn export —
against the `crnn` command (the feature extractors: test_features.py)."""

import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import threading
import time
import wave

import pytest
import torch

import crnn

torch.set_num_threads(2)

CRNN = os.environ.get("CRNN_BINARY", "crnn")
SOURCE = os.environ.get("CRNN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args):
    r = subprocess.run([CRNN, "--threads", "2", *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(int(max(-32767, min(32767, s * 32767))).to_bytes(2, "little", signed=True)
                               for s in samples))


@contextlib.contextmanager
def sigint_once(ready):
    """Sends this process SIGINT once ready() is true (after an epoch has
    finished, say), or after 60 s, while the body runs."""
    def interrupt():
        deadline = time.time() + 60
        while time.time() < deadline and not ready():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    try:
        yield
    finally:
        killer.join()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny two-class corpus of tones (low vs high pitch, 6 speakers) and a
    model trained on it by `crnn train`."""
    d = tmp_path_factory.mktemp("corpus")
    g = torch.Generator().manual_seed(0)
    rows = []
    for s in range(6):
        for i in range(6):
            label = "low" if i % 2 == 0 else "high"
            f0 = (180 if label == "low" else 420) * (1 + 0.05 * s)
            n = 4000 + 800 * i
            t = torch.arange(n) / 16000
            x = 0.3 * torch.sin(2 * math.pi * f0 * t) + 0.01 * torch.randn(n, generator=g)
            name = f"s{s}_{i}.wav"
            write_wav(d / name, x.tolist())
            split = "test" if s == 5 else ("valid" if s == 4 else "train")
            rows.append([f"s{s}_{i}", name, f"s{s}", label, split])
    with open(d / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "path", "speaker", "label", "split"], *rows])
    run("features", d / "m.csv", "-o", d / "f.h5")
    (d / "c.toml").write_text(f"""[data]
manifest = "{d / 'm.csv'}"
features = "{d / 'f.h5'}"
task = "label"
[model]
recurrent_size = 8
dense_size = 8
average_last = 0
[[model.front_end]]
type = "lstm"
features = 6
source = "cell"
reduce = "max"
[train]
batch_size = 8
max_epochs = 2
seed = 1
""")
    run("train", d / "c.toml", "-o", d / "run")
    return d


def test_load_gives_a_module_with_the_model_files_description(trained):
    model = crnn.load(trained / "run")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert sorted(model.labels) == ["high", "low"]
    assert model.task == "label"
    assert model.feature_extractor.startswith("kaldi-fbank")
    assert model.normalization == "speaker"
    feats = model.features(trained / "s5_1.wav")
    assert feats.shape[1] == 26 and feats.shape[0] > 0
    log_p = model(feats.unsqueeze(0), torch.tensor([feats.shape[0]]))
    assert log_p.shape == (1, 2)
    torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0))


def test_model_features_of_a_waveform_refuse_unscaled_pcm_and_nan(trained):
    model = crnn.load(trained / "run")
    with wave.open(str(trained / "s5_1.wav")) as w:
        rate = w.getframerate()
        pcm = torch.frombuffer(bytearray(w.readframes(w.getnframes())), dtype=torch.int16)
    # The same features as from the file, for samples scaled to [-1, 1).
    torch.testing.assert_close(model.features(pcm.float() / 32768, rate), model.features(trained / "s5_1.wav"))
    with pytest.raises(ValueError, match="sample_rate only with a waveform"):
        model.features(trained / "s5_1.wav", 8000)
    with pytest.raises(RuntimeError, match="must be floating point with samples in \\[-1, 1\\), got Short"):
        model.features(pcm, rate)
    with pytest.raises(RuntimeError, match="but audio is in \\[-1, 1\\) \\(up to \\|x\\| = 8 is accepted"):
        model.features(pcm.float(), rate)
    x = pcm.float() / 32768
    x[100] = float("inf")
    with pytest.raises(RuntimeError, match="1 NaN or infinite sample\\(s\\), the first at sample 100"):
        model.features(x, rate)


def test_python_probabilities_equal_crnn_predict(trained):
    files = [trained / f"s5_{i}.wav" for i in range(6)]
    out = run("predict", trained / "run", *files)
    want = {json.loads(line)["path"]: json.loads(line) for line in out.splitlines()}
    classifier = crnn.Classifier(trained / "run")
    got = classifier.predict(files)
    assert len(got) == len(files)
    for p in got:
        w = want[p.path]
        assert p.error == "" and p.label == w["label"]
        assert p.frames == w["frames"]
        want_probs = [w["probabilities"][label] for label in classifier.labels]
        assert p.probabilities == pytest.approx(want_probs, abs=1e-6)


def test_classifier_segments_are_crnn_predicts_windows(trained):
    # A "long recording" (two test files end to end), in windows of 0.3 s every
    # 0.2 s: the rows of `crnn predict --segment 0.3 --hop 0.2`, in time order,
    # each 30 frames, the last ending with the file.
    with wave.open(str(trained / "s5_4.wav")) as a, wave.open(str(trained / "s5_5.wav")) as b:
        pcm = a.readframes(a.getnframes()) + b.readframes(b.getnframes())
    long = trained / "long.wav"
    with wave.open(str(long), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm)
    want = [json.loads(line) for line in run("predict", trained / "run", long, "--segment", "0.3", "--hop", "0.2").splitlines()]
    classifier = crnn.Classifier(trained / "run")
    got = classifier.predict(long, segment=0.3, hop=0.2)
    assert len(got) == len(want) > 3
    for p, w in zip(got, want):
        assert (p.start, p.end) == pytest.approx((w["start"], w["end"]), abs=0.005)
        assert p.frames == w["frames"] == 30 and p.label == w["label"]
        assert p.probabilities == pytest.approx([w["probabilities"][c] for c in classifier.labels], abs=1e-6)
    starts = [p.start for p in got]
    assert starts[:3] == pytest.approx([0.0, 0.2, 0.4]) and starts == sorted(starts)
    whole = classifier.predict(long)[0]
    assert whole.start is None and whole.end is None
    assert got[-1].end == pytest.approx(whole.frames / 100)
    with pytest.raises(ValueError, match="hop needs segment"):
        classifier.predict(long, hop=0.1)
    with pytest.raises(ValueError, match="segment must be a number of seconds > 0, got 0"):
        classifier.predict(long, segment=0)
    with pytest.raises(TypeError, match="segment must be a number"):
        classifier.predict(long, segment="3")
    with pytest.raises(ValueError, match="crnn.Classifier.predict: a hop of 0.5 s is longer than the segment"):
        classifier.predict(long, segment=0.3, hop=0.5)
    with pytest.raises(ValueError, match="segment must be a number of seconds > 0 and at most 1e\\+07, got inf"):
        classifier.predict(long, segment=math.inf)
    # A file that fails keeps its place among the windows of the others, as its one error;
    # silent windows are named with their spans.
    silence = trained / "silence.wav"
    write_wav(silence, [0.0] * 16000)
    with pytest.warns(UserWarning, match=r"4 segment\(s\) .*silence.wav 0.00-0.30 s"):
        got = classifier.predict([long, trained / "missing.wav", silence], segment=0.3)
    paths = [p.path for p in got]
    missing_at = paths.index(str(trained / "missing.wav"))
    assert got[missing_at].error and got[missing_at].start is None
    assert all(p == str(long) for p in paths[:missing_at]) and all(p == str(silence) for p in paths[missing_at + 1:])
    assert [p.start for p in got[missing_at + 1:]] == pytest.approx([0.0, 0.3, 0.6, 0.68])


def test_classifier_speakers_normalize_each_speakers_files_together(trained):
    # Files given speakers are standardized with the joint statistics of that
    # speaker's frames (population std), as crnn eval does: derived here by hand.
    model = crnn.load(trained / "run")
    classifier = crnn.Classifier(trained / "run")
    files = [trained / f"s5_{i}.wav" for i in range(6)]
    speakers = ["a", "b", "a", "b", "a", "a"]
    feats = [model.features(f) for f in files]
    got = classifier.predict(files, speakers=speakers, normalization="speaker")
    for spk in set(speakers):
        frames = torch.cat([x for x, s in zip(feats, speakers) if s == spk])
        mean, std = frames.mean(0), frames.std(0, unbiased=False)
        for x, s, p in zip(feats, speakers, got):
            if s != spk:
                continue
            probs = model(((x - mean) / std).unsqueeze(0), torch.tensor([x.shape[0]])).exp()[0]
            assert p.error == "" and p.probabilities == pytest.approx(probs.tolist(), abs=1e-5)
    # Without speakers each file is its own speaker: other statistics, other numbers.
    alone = classifier.predict(files, normalization="speaker")
    assert any(abs(a - b) > 1e-4 for x, y in zip(alone, got) for a, b in zip(x.probabilities, y.probabilities))
    with pytest.raises(ValueError, match="2 speakers for 6 paths"):
        classifier.predict(files, speakers=["a", "b"])
    with pytest.raises(ValueError, match="not a string"):
        classifier.predict(files, speakers="a")
    with pytest.raises(ValueError, match="unknown normalization 'speakers'"):
        classifier.predict(files, normalization="speakers")


def test_classifier_predicts_a_folder_as_its_audio_files(trained, tmp_path):
    # A folder stands for its audio files, sorted, as `crnn predict DIR` does;
    # a folder's speaker is every file's speaker.
    folder = tmp_path / "recordings"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["b.wav", "sub/a.wav", "c.WAV"]):
        (folder / name).write_bytes((trained / f"s5_{i}.wav").read_bytes())
    (folder / "notes.txt").write_text("not audio")
    classifier = crnn.Classifier(trained / "run")
    with pytest.warns(UserWarning, match="notes.txt: not an audio file extension"):
        got = classifier.predict(folder)
    want_order = sorted(str(folder / n) for n in ["b.wav", "sub/a.wav", "c.WAV"])
    assert [p.path for p in got] == want_order
    by_file = classifier.predict(want_order)
    assert [p.probabilities for p in got] == [p.probabilities for p in by_file]
    with pytest.warns(UserWarning):
        together = classifier.predict([folder], speakers=["x"], normalization="speaker")
    assert together == classifier.predict(want_order, speakers=["x"] * 3, normalization="speaker")
    assert together != by_file  # one speaker's joint statistics, not each file's own
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(UserWarning, match="empty: no audio files"):
        assert classifier.predict(empty) == []


def test_silence_is_classified_and_flagged(trained, tmp_path):
    # Digital silence has the same features in every frame: it gets a label,
    # flagged as carrying no information, and a warning names it.
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 8000)
    classifier = crnn.Classifier(trained / "run")
    with pytest.warns(UserWarning, match=r"1 input\(s\) hold no signal.*silence.wav"):
        got = classifier.predict([trained / "s5_0.wav", silent])
    assert [p.no_signal for p in got] == [False, True]
    assert got[1].label in classifier.labels and got[1].error == ""


def test_load_forward_equals_the_classifier_with_utterance_statistics(trained):
    # One utterance, normalized with its own statistics: load()'s module on those
    # features must give the Classifier's probabilities.
    model = crnn.load(trained / "run")
    path = trained / "s5_2.wav"
    feats = model.features(path)
    mean, std = feats.mean(0), feats.std(0, unbiased=False)
    normed = (feats - mean) / std
    probs = model(normed.unsqueeze(0), torch.tensor([feats.shape[0]])).exp()[0]
    p = crnn.Classifier(trained / "run").predict([path], normalization="utterance")[0]
    assert p.probabilities == pytest.approx(probs.tolist(), abs=1e-5)


def test_a_run_directory_without_a_model_says_why(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text("")
    with pytest.raises(RuntimeError, match="no model yet .* has not finished its first epoch"):
        crnn.load(tmp_path / "run")
    with pytest.raises(RuntimeError, match="not a run directory"):
        crnn.Classifier(tmp_path)


def test_a_model_changed_in_pytorch_saves_as_a_crnn_model_file(trained, tmp_path):
    # Weights changed in Python (as fine-tuning would) and saved: the file loads
    # back with those weights, and `crnn predict` on it gives what the Python
    # module computes, not what the original file gives.
    model = crnn.load(trained / "run")
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    out = tmp_path / "tuned.pt"
    model.save(out)
    again = crnn.load(out)
    assert again.labels == model.labels and again.feature_extractor == model.feature_extractor
    for name in model.parameter_names:
        assert torch.equal(getattr(again, name), getattr(model, name)), name
    path = trained / "s5_2.wav"
    feats = model.features(path)
    normed = (feats - feats.mean(0)) / feats.std(0, unbiased=False)
    with torch.no_grad():
        probs = model(normed.unsqueeze(0), torch.tensor([feats.shape[0]])).exp()[0].tolist()
        original = crnn.load(trained / "run")(normed.unsqueeze(0), torch.tensor([feats.shape[0]])).exp()[0].tolist()
    line = json.loads(run("predict", out, path, "--normalize", "utterance"))
    got = [line["probabilities"][label] for label in model.labels]
    assert got == pytest.approx(probs, abs=1e-5)
    assert got != pytest.approx(original, abs=1e-3)
    # What cannot be a crnn model file is refused, naming the parameter.
    name = model.parameter_names[0]
    with torch.no_grad():
        getattr(model, name)[(0,) * getattr(model, name).dim()] = float("nan")
    with pytest.raises(ValueError, match=f"parameter '{name}' holds NaN"):
        model.save(tmp_path / "nan.pt")
    model.register_parameter(name, torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match=f"parameter '{name}' has shape \\[3\\]"):
        model.save(tmp_path / "shape.pt")
    assert not (tmp_path / "nan.pt").exists() and not (tmp_path / "shape.pt").exists()


def test_exported_torchscript_model_equals_the_cpp_model(trained, tmp_path):
    run("export", trained / "run", "-o", tmp_path / "model.ts.pt")
    # A fresh interpreter with plain PyTorch: only the ops library is loaded.
    script = f"""
import json, torch
torch.ops.load_library({crnn.OPS_LIBRARY!r})
m = torch.jit.load({str(tmp_path / 'model.ts.pt')!r})
torch.manual_seed(0)
x = torch.randn(3, 50, 26)
lengths = torch.tensor([50, 31, 12])
print(json.dumps({{"labels": list(m.labels), "task": m.task, "log_p": m(x, lengths).tolist(),
                  "global_mean": m.global_mean.tolist(), "global_std": m.global_std.tolist()}}))
"""
    r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    model = crnn.load(trained / "run")
    torch.manual_seed(0)
    x = torch.randn(3, 50, 26)
    want = model(x, torch.tensor([50, 31, 12]))
    assert got["labels"] == model.labels and got["task"] == "label"
    torch.testing.assert_close(torch.tensor(got["log_p"]), want, rtol=1e-6, atol=1e-6)
    # crnn's own commands read model files, not exports: said so, not "corrupt".
    r = subprocess.run([CRNN, "predict", tmp_path / "model.ts.pt", trained / "s5_1.wav"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "a TorchScript export (`crnn export`)" in r.stderr, r.stderr
    # The training statistics, as the TorchScript export carries them (bit for bit).
    assert model.global_mean.shape == (26,) and model.global_mean.dtype == torch.float32
    assert torch.equal(model.global_mean, torch.tensor(got["global_mean"]))
    assert torch.equal(model.global_std, torch.tensor(got["global_std"])) and (model.global_std > 0).all()


def test_export_of_a_missing_model_is_an_error(tmp_path):
    r = subprocess.run([CRNN, "export", tmp_path / "nope.pt", "-o", tmp_path / "x.pt"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "nope.pt" in r.stderr
    assert not (tmp_path / "x.pt").exists()


def test_load_of_a_file_that_is_not_a_model_names_it(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="bad.pt"):
        crnn.load(bad)


def test_the_trained_model_example_runs(trained):
    script = os.path.join(SOURCE, "examples", "python", "use_trained_model.py")
    r = subprocess.run(["/usr/bin/python3", script, str(trained / "run"), str(trained / "s5_0.wav")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    first, last = r.stdout.splitlines()[0], r.stdout.splitlines()[-1]
    assert first.startswith(str(trained / "s5_0.wav"))
    probs = eval(last)  # {'high': p, 'low': q}
    assert sorted(probs) == ["high", "low"] and abs(sum(probs.values()) - 1) < 1e-5


def test_repeat_from_python_is_the_command(trained, tmp_path):
    # crnn.repeat trains what `crnn repeat` trains; its dict is repeat.json, whose
    # mean and sample std are those of the seeds' own summary.json files.
    crnn.set_num_threads(2)
    result = crnn.repeat(trained / "c.toml", tmp_path / "py", seeds=2, first_seed=3, progress=False)
    assert result == json.loads((tmp_path / "py" / "repeat.json").read_text())
    assert [r["seed"] for r in result["runs"]] == [3, 4]
    scores = [json.loads((tmp_path / "py" / f"seed_{s}" / "summary.json").read_text())["test_ua_recall"]
              for s in (3, 4)]
    mean = sum(scores) / 2
    assert result["test_ua_recall_mean"] == pytest.approx(mean, abs=1e-12)
    assert result["test_ua_recall_std"] == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in scores)), abs=1e-12)
    run("repeat", trained / "c.toml", "--seeds", "2", "--first-seed", "3", "-o", tmp_path / "cli")
    cli = json.loads((tmp_path / "cli" / "repeat.json").read_text())
    for a, b in zip(result["runs"], cli["runs"]):
        assert a["test_ua_recall"] == pytest.approx(b["test_ua_recall"], abs=1e-6)
        assert a["best_epoch"] == b["best_epoch"]
    # Called again, the finished seeds are skipped (the same files, nothing trained).
    stamp = (tmp_path / "py" / "seed_3" / "summary.json").stat().st_mtime_ns
    assert crnn.repeat(trained / "c.toml", tmp_path / "py", seeds=2, first_seed=3, progress=False) == result
    assert (tmp_path / "py" / "seed_3" / "summary.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="crnn.repeat: seeds must be in 1..1000, got 0"):
        crnn.repeat(trained / "c.toml", tmp_path / "x", seeds=0)
    with pytest.raises(TypeError, match="crnn.repeat: output must be a path"):
        crnn.repeat(trained / "c.toml", None)
    with pytest.raises(TypeError, match="not one string"):
        crnn.repeat(trained / "c.toml", tmp_path / "x", overrides="train.max_epochs=3")


def write_experiment(trained, path):
    path.write_text(f"""[[table]]
id = "t"
seeds = 2
  [[table.column]]
  name = "label"
  config = "{trained / 'c.toml'}"
  [[table.row]]
  name = "small"
  [[table.row]]
  name = "wider"
  set = ["model.dense_size=12"]
""")
    return path


def test_experiment_from_python_is_the_command(trained, tmp_path):
    # crnn.experiment trains what `crnn experiment` trains, here in two Python
    # worker processes of one thread each against the command's one process of
    # one thread: the same runs (a run does not depend on the process it is
    # trained in), and the dict is the results.json it wrote.
    e = write_experiment(trained, tmp_path / "e.toml")
    crnn.set_num_threads(2)
    result = crnn.experiment(e, tmp_path / "py", jobs=2, progress=False)
    assert result == json.loads((tmp_path / "py" / "results.json").read_text())
    assert result["finished_runs"] == result["planned_runs"] == 4
    assert len(list((tmp_path / "py" / "logs").glob("*.log"))) == 4  # one per worker
    r = subprocess.run([CRNN, "--threads", "1", "experiment", e, "-o", tmp_path / "cli"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    mine, theirs = result["tables"][0], cli["tables"][0]
    assert mine["rows"] == theirs["rows"] == ["small", "wider"]
    for row_a, row_b in zip(mine["cells"], theirs["cells"]):
        a, b = row_a[0], row_b[0]
        assert a["dir"] == b["dir"] and a["runs"] == b["runs"] == 2
        assert a["best_epoch"] == b["best_epoch"]
        assert a["test_ua_recall"] == pytest.approx(b["test_ua_recall"], abs=1e-6)
        assert a["lowest_train_loss"] == pytest.approx(b["lowest_train_loss"], abs=1e-6)
        # the cell's mean is that of its seeds' own summary.json files
        scores = [json.loads((tmp_path / "py" / a["dir"] / f"seed_{s}" / "summary.json").read_text())
                  ["test_ua_recall"] for s in (1, 2)]
        assert a["test_ua_recall_mean"] == pytest.approx(sum(scores) / 2, abs=1e-12)
    # Called again, every run is skipped; results_only writes the same tables.
    stamp = (tmp_path / "py" / mine["cells"][0][0]["dir"] / "seed_1" / "summary.json").stat().st_mtime_ns
    again = crnn.experiment(e, tmp_path / "py", progress=False)
    assert again["tables"] == result["tables"]
    assert crnn.experiment(e, tmp_path / "py", results_only=True)["tables"] == result["tables"]
    assert (tmp_path / "py" / mine["cells"][0][0]["dir"] / "seed_1" / "summary.json").stat().st_mtime_ns == stamp
    # Only one table, and bad arguments.
    with pytest.raises(RuntimeError, match="nope"):
        crnn.experiment(e, tmp_path / "x", tables=["nope"])
    with pytest.raises(TypeError, match="not one string"):
        crnn.experiment(e, tmp_path / "x", tables="t")
    with pytest.raises(ValueError, match="crnn.experiment: jobs must be in 1..1024, got 0"):
        crnn.experiment(e, tmp_path / "x", jobs=0)
    with pytest.raises(ValueError, match="crnn.experiment: time_limit -5.000000: expected a positive duration"):
        crnn.experiment(e, tmp_path / "x", time_limit=-5)
    with pytest.raises(TypeError, match="crnn.experiment: output must be a path"):
        crnn.experiment(e, None)


def test_failing_runs_are_an_error_naming_them(trained, tmp_path):
    # A missing feature file is an error every run would hit: in one process it
    # is raised as it is; with workers, the two started runs fail (exit code 2,
    # their logs name the file) and no other is started.
    e = write_experiment(trained, tmp_path / "e.toml")
    missing = f"data.features={tmp_path / 'none.h5'}"
    crnn.set_num_threads(2)
    with pytest.raises(RuntimeError, match="none.h5: file not found"):
        crnn.experiment(e, tmp_path / "serial", overrides=[missing], progress=False)
    with pytest.raises(RuntimeError, match=r"crnn.experiment: 2 run\(s\) failed; no other run was started: the "
                                           r"error is one every run would hit \(the finished runs' results are in "
                                           r".*results.json\): t · (small|wider) · label, seed 1: exit code 2, see ") as failure:
        crnn.experiment(e, tmp_path / "out", jobs=2, overrides=[missing], progress=False)
    assert "t · small · label, seed 1" in str(failure.value) and "t · wider · label, seed 1" in str(failure.value)
    logs = list((tmp_path / "out" / "logs").glob("*.log"))
    assert len(logs) == 2
    for log in logs:
        assert "none.h5: file not found" in log.read_text()


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_an_experiment_and_its_runs_resume(trained, tmp_path, jobs):
    # SIGINT while crnn.experiment trains (in this process, or in workers that
    # the parent passes it on to): the runs in training stop after their
    # current batch, resumable from their last.pt, and KeyboardInterrupt says so.
    e = write_experiment(trained, tmp_path / "e.toml")
    out = tmp_path / "out"
    crnn.set_num_threads(2)
    start = time.time()
    with sigint_once(lambda: list(out.glob("runs/*/seed_1/last.pt"))):
        with pytest.raises(KeyboardInterrupt, match="crnn.experiment: interrupted: "):
            crnn.experiment(e, out, jobs=jobs, overrides=["train.max_epochs=100000", "train.patience=100000"],
                            progress=False)
    assert time.time() - start < 60
    started = list(out.glob("runs/*/seed_*/last.pt"))
    assert started and not list(out.glob("runs/*/seed_*/summary.json"))
    assert json.loads((out / "results.json").read_text())["finished_runs"] == 0
    for last in started:  # each stopped run has finished epochs to resume from
        assert len((last.parent / "metrics.csv").read_text().splitlines()) >= 2


def test_train_and_evaluate_from_python_are_the_commands(trained, tmp_path):
    # crnn.train runs `crnn train`'s protocol: with the same config, seed and
    # thread count it trains the same run; its dict is the summary.json it wrote.
    crnn.set_num_threads(2)
    summary = crnn.train(trained / "c.toml", tmp_path / "py", progress=False)
    assert summary == json.loads((tmp_path / "py" / "summary.json").read_text())
    cli = json.loads((trained / "run" / "summary.json").read_text())
    for key in ["best_epoch", "epochs_run", "labels", "train_utterances", "test_speakers", "seed"]:
        assert summary[key] == cli[key], key
    for key in ["val_ua_recall", "test_ua_recall", "test_wa"]:
        assert summary[key] == pytest.approx(cli[key], abs=1e-6), key
    # crnn.evaluate gives what `crnn eval --json` writes.
    result = crnn.evaluate(tmp_path / "py", split="test")
    run("eval", tmp_path / "py", "--split", "test", "--json", tmp_path / "eval.json")
    assert result == json.loads((tmp_path / "eval.json").read_text())
    assert result["ua_recall"] == pytest.approx(summary["test_ua_recall"], abs=1e-9)
    # predictions= writes the CSV of `crnn eval --predictions`, byte for byte,
    # and its labels give the result's recall.
    crnn.evaluate(tmp_path / "py", split="test", predictions=tmp_path / "py.csv")
    run("eval", tmp_path / "py", "--split", "test", "--predictions", tmp_path / "cli.csv")
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    with open(tmp_path / "py.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["truth"] for r in rows})
    recalls = [sum(r["label"] == c for r in rows if r["truth"] == c) / sum(r["truth"] == c for r in rows)
               for c in classes]
    assert result["ua_recall"] == pytest.approx(sum(recalls) / len(recalls), abs=1e-9)
    with pytest.raises(RuntimeError, match="no_such_dir"):
        crnn.evaluate(tmp_path / "py", predictions=tmp_path / "no_such_dir" / "p.csv")
    # A manifest whose test split holds a training utterance: a warning says so.
    rows = (trained / "m.csv").read_text().splitlines()
    rows = [r.replace(",train", ",test") if r.startswith("s0_0,") else r for r in rows]
    assert any(r.startswith("s0_0,") and r.endswith(",test") for r in rows)
    (trained / "leak.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match="crnn.evaluate: .*s0"):
        crnn.evaluate(tmp_path / "py", split="test", manifest=trained / "leak.csv")
    # An interrupted or finished run goes on with more epochs.
    more = crnn.train(resume=tmp_path / "py", overrides=["train.max_epochs=3"], progress=False)
    assert more["epochs_run"] == 3
    # Bad requests are errors naming what is wrong.
    with pytest.raises(RuntimeError, match="not a run directory"):
        crnn.train(resume=tmp_path)
    with pytest.raises(RuntimeError, match="a resumed run keeps its own config"):
        crnn.train(trained / "c.toml", tmp_path / "x", resume=tmp_path / "py")
    with pytest.raises(RuntimeError, match="no run directory given"):
        crnn.train(trained / "c.toml")
    with pytest.raises(TypeError, match="not one string"):
        crnn.train(trained / "c.toml", tmp_path / "x", overrides="train.max_epochs=3")
    with pytest.raises(ValueError, match="split must be train, valid, test or all"):
        crnn.evaluate(tmp_path / "py", split="dev")
    with pytest.raises(RuntimeError, match="file not found .*give features=... to use another"):
        (trained / "f.h5").rename(trained / "f.moved")
        try:
            crnn.evaluate(tmp_path / "py")
        finally:
            (trained / "f.moved").rename(trained / "f.h5")


def test_extract_features_from_python_is_the_command(trained, tmp_path):
    report = crnn.extract_features(trained / "m.csv", tmp_path / "py.h5")
    assert (report["total"], report["extracted"], report["present"]) == (36, 36, 0)
    assert report["failed"] == [] and report["skipped"] == [] and report["no_signal"] == []
    # The same matrices as `crnn features` stored for the fixture.
    for uid in ["s0_0", "s5_5"]:
        assert run("features", tmp_path / "py.h5", "--dump", uid) == run("features", trained / "f.h5", "--dump", uid)
    # Resumed: nothing to do.
    again = crnn.extract_features(trained / "m.csv", tmp_path / "py.h5")
    assert (again["extracted"], again["present"]) == (0, 36)
    # A missing file fails (the others are written), unless keep_going.
    rows = (trained / "m.csv").read_text().splitlines()
    (tmp_path / "missing.csv").write_text("\n".join([rows[0], rows[1].replace("s0_0.wav", str(trained / "s0_0.wav")),
                                                     rows[2].replace("s0_1.wav", str(tmp_path / "nope.wav"))]) + "\n")
    with pytest.raises(RuntimeError, match=r"1 of 2 file\(s\) failed .*nope.wav"):
        crnn.extract_features(tmp_path / "missing.csv", tmp_path / "m.h5")
    kept = crnn.extract_features(tmp_path / "missing.csv", tmp_path / "m2.h5", keep_going=True,
                                 covered_manifest=tmp_path / "covered.csv")
    assert kept["extracted"] == 1 and len(kept["failed"]) == 1
    # The covered manifest holds the one row with features.
    assert kept["covered"] == 1
    covered = list(csv.DictReader(open(tmp_path / "covered.csv")))
    assert [r["id"] for r in covered] == ["s0_0"] and covered[0]["path"] == str(trained / "s0_0.wav")
    assert "covered" not in again
    # Options: checked before any file.
    with pytest.raises(ValueError, match="apply to kind='fbank' only"):
        crnn.extract_features(trained / "m.csv", tmp_path / "e.h5", kind="egemaps", num_bins=40)
    with pytest.raises(RuntimeError, match="fbank options: num_bins = 256 is too many"):
        crnn.extract_features(trained / "m.csv", tmp_path / "b.h5", num_bins=256)
    with pytest.raises(ValueError, match="crnn.extract_features: .*hamm"):
        crnn.extract_features(trained / "m.csv", tmp_path / "b.h5", window="hamm")


def test_ctrl_c_stops_training_and_the_run_resumes(trained, tmp_path):
    # SIGINT while crnn.train runs (Python's handler would only act after the
    # whole run): training stops after the current batch with KeyboardInterrupt,
    # and the run resumes from its last finished epoch.
    out = tmp_path / "run"
    crnn.set_num_threads(1)
    start = time.time()
    with sigint_once(lambda: (out / "last.pt").exists()):
        with pytest.raises(KeyboardInterrupt, match="interrupted in epoch .* resume the run"):
            crnn.train(trained / "c.toml", out, overrides=["train.max_epochs=100000", "train.patience=100000"],
                       progress=False)
    assert time.time() - start < 60
    assert (out / "last.pt").exists() and not (out / "summary.json").exists()
    finished = len((out / "metrics.csv").read_text().splitlines()) - 1  # epochs in last.pt
    assert finished >= 1
    done = crnn.train(resume=out, overrides=[f"train.max_epochs={finished + 1}"], progress=False)
    assert done["epochs_run"] == finished + 1


def test_a_config_from_a_preset_trains(trained, tmp_path):
    assert "emotion-clstm" in crnn.presets() and "agender-cblstm" in crnn.presets()
    overrides = [f"data.manifest={trained / 'm.csv'}", f"data.features={trained / 'f.h5'}", "data.task=label",
                 "train.max_epochs = 1", "model.recurrent_size=8", "model.dense_size=8"]
    text = crnn.config("emotion-baseline", overrides)
    assert text == run("config", "dump", "emotion-baseline", *[a for o in overrides for a in ("--set", o)])
    assert "max_epochs = 1" in text  # spaces around '=' as TOML writes them
    (tmp_path / "c.toml").write_text(text)
    assert crnn.train(tmp_path / "c.toml", tmp_path / "run", progress=False)["epochs_run"] == 1
    with pytest.raises(RuntimeError, match="unknown"):
        crnn.config("emotion-nope")


def test_wrong_argument_types_name_the_argument(trained, tmp_path):
    with pytest.raises(TypeError, match=r"crnn.evaluate: batch_size must be an integer, got None"):
        crnn.evaluate(trained / "run", batch_size=None)
    with pytest.raises(TypeError, match=r"crnn.extract_features: sample_rate must be an integer, got None"):
        crnn.extract_features(trained / "m.csv", tmp_path / "x.h5", sample_rate=None)
    with pytest.raises(TypeError, match=r"crnn.set_num_threads: n must be an integer, got None"):
        crnn.set_num_threads(None)
    with pytest.raises(TypeError, match=r"crnn: the model .* must be a path .* got None"):
        crnn.Classifier(None)
    with pytest.raises(TypeError, match=r"crnn.Classifier.predict: paths must be a path or a list of paths, got None"):
        crnn.Classifier(trained / "run").predict(None)
    with pytest.raises(TypeError, match=r"paths must be a path or a list of paths, got 5"):
        crnn.Classifier(trained / "run").predict(5)
    with pytest.raises(TypeError, match=r"crnn.train: progress must be True or False, got 'no'"):
        crnn.train(trained / "c.toml", tmp_path / "r", progress="no")
    with pytest.raises(TypeError, match=r"crnn.train: config must be a path .* got \{"):
        crnn.train({"train": {}}, tmp_path / "r")
    # A generator of paths is a list of paths.
    got = crnn.Classifier(trained / "run").predict(p for p in [trained / "s5_0.wav"])
    assert len(got) == 1 and got[0].error == ""
