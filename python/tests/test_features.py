"""crnn.features: the log mel filterbank against the committed Kaldi reference,
the eGeMAPS descriptors against synthetic signals of known pitch."""

import math
import os
import wave

import pytest
import torch

import crnn

torch.set_num_threads(2)

SOURCE = os.environ.get("CRNN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

# openSMILE's eGeMAPS v02 column order (Eyben et al. 2016; the list).
EGEMAPS_RAW = [
    "Loudness", "alphaRatio", "hammarbergIndex", "slope0-500", "slope500-1500", "spectralFlux",
    "mfcc1", "mfcc2", "mfcc3", "mfcc4", "F0semitoneFrom27.5Hz", "jitterLocal", "shimmerLocaldB",
    "HNRdBACF", "logRelF0-H1-H2", "logRelF0-H1-A3", "F1frequency", "F1bandwidth",
    "F1amplitudeLogRelF0", "F2frequency", "F2bandwidth", "F2amplitudeLogRelF0", "F3frequency",
    "F3bandwidth", "F3amplitudeLogRelF0",
]
F0 = EGEMAPS_RAW.index("F0semitoneFrom27.5Hz")


def test_fbank_equals_the_kaldi_reference():
    fixture = os.path.join(SOURCE, "tests", "fixtures", "fbank")
    with wave.open(os.path.join(fixture, "tiny.wav")) as w:
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    samples = torch.frombuffer(bytearray(raw), dtype=torch.int16).float() / 32768
    want = torch.tensor([[float(v) for v in line.strip().strip(",").split(",")]
                         for line in open(os.path.join(fixture, "tiny_fbank26.csv")) if line.strip()])
    got = crnn.features.fbank(samples, rate)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-3)


def test_fbank_bad_input():
    with pytest.raises(RuntimeError, match="expected a 1-D"):
        crnn.features.fbank(torch.zeros(2, 100), 16000)
    # 16-bit PCM, as an integer tensor or as floats that were never scaled:
    # features of it would all be shifted by 2 ln 32768, with no error.
    pcm = (vowel(200.0, 16000) * 32767).round()
    with pytest.raises(RuntimeError, match="got Short \\(integer PCM: divide by 32768"):
        crnn.features.fbank(pcm.to(torch.int16), 16000)
    with pytest.raises(RuntimeError, match="samples reach \\|x\\| = 9830, but audio is in \\[-1, 1\\)"):
        crnn.features.fbank(pcm, 16000)
    assert crnn.features.fbank(pcm / 32768, 16000).shape == (98, 26)
    # One NaN sample would make NaN features (78 values) without complaint.
    x = vowel(200.0, 16000)
    x[1234] = float("nan")
    with pytest.raises(RuntimeError, match="1 NaN or infinite sample\\(s\\), the first at sample 1234"):
        crnn.features.fbank(x, 16000)
    with pytest.raises(RuntimeError, match="sample_rate must be in"):
        crnn.features.fbank(torch.zeros(1000), 0)


def vowel(f0, rate, seconds=1.0):
    """A sustained vowel-like tone: 1/k harmonics of f0 up to 4 kHz, amplitude 0.3."""
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    x = sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, int(4000 // f0) + 1))
    return (0.3 * x / x.abs().max()).float()


def test_egemaps_names_are_the_v02_columns():
    assert crnn.features.egemaps_names(smooth=False) == EGEMAPS_RAW
    smoothed = crnn.features.egemaps_names()
    assert [n.rsplit("_", 1)[0] for n in smoothed] == EGEMAPS_RAW
    # Voiced-only and formant columns average non-zero values only (sma3nz), the rest sma3.
    assert smoothed[0] == "Loudness_sma3" and smoothed[F0] == "F0semitoneFrom27.5Hz_sma3nz"


@pytest.mark.parametrize("rate", [16000, 48000])
def test_egemaps_pitch_of_a_known_tone(rate):
    f0 = 200.0
    lld = crnn.features.egemaps(vowel(f0, rate), rate)
    # 1 s at 16 kHz: 1 + (16000 - 960) // 160 = 95 whole 60 ms windows, one more smoothed.
    assert lld.shape == (96, 25) and lld.dtype == torch.float32
    assert torch.isfinite(lld).all()
    semitones = 12 * math.log2(f0 / 27.5)
    interior = lld[3:-3, F0]
    assert (interior - semitones).abs().max() < 0.3, interior
    raw = crnn.features.egemaps(vowel(f0, rate), rate, smooth=False)
    assert raw.shape == (95, 25)


def test_egemaps_short_silent_and_bad_input():
    with pytest.raises(TypeError, match="smooth must be True or False, got 'no'"):
        crnn.features.egemaps(torch.zeros(2000), 16000, smooth="no")
    assert crnn.features.egemaps(torch.zeros(959), 16000).shape == (0, 25)
    silence = crnn.features.egemaps([0.0] * 16000, 16000)
    assert torch.isfinite(silence).all() and (silence[:, F0] == 0).all()
    with pytest.raises(RuntimeError, match="expected a 1-D"):
        crnn.features.egemaps(torch.zeros(2, 1000), 16000)
    with pytest.raises(RuntimeError, match="sample_rate must be in"):
        crnn.features.egemaps(torch.zeros(1000), 100)
    with pytest.raises(RuntimeError, match="audio is in \\[-1, 1\\)"):
        crnn.features.egemaps(torch.full((2000,), 1e7), 16000)
    with pytest.raises(RuntimeError, match="2000 NaN or infinite sample"):
        crnn.features.egemaps(torch.full((2000,), float("nan")), 16000)
    with pytest.raises(ValueError, match="whole number of Hz, got 8000.5"):
        crnn.features.egemaps(torch.zeros(2000), 8000.5)
    with pytest.raises(ValueError, match="whole number of Hz"):
        crnn.features.fbank(torch.zeros(2000), 16000.25)
