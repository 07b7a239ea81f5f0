#!/usr/bin/python3
"""Generates the fbank test fixtures in tests/fixtures/fbank/.

Run with Debian's Python (needs python3-torchaudio, python3-numpy):

    /usr/bin/python3 scripts/make_fbank_fixture.py

Writes
  tiny.wav                    0.5 s, 16 kHz, mono, 16-bit PCM: a 200 Hz -> 4 kHz
                              linear chirp plus white noise (fixed seed)
  tiny_fbank26.csv            torchaudio.compliance.kaldi.fbank defaults, 26 bins
  tiny_<variant>.csv          the same call with other options (see VARIANTS);
                              tests/audio/fbank_fixture_test.cpp mirrors them

Every CSV is frames x bins, no header, '%.6f'. The reference is computed the
way SPEC §4 defines the feature: fbank(waveform * 32768, dither=0.0, ...) on the
waveform torchaudio.load returns (int16 / 32768).
"""
import os
import wave

import numpy as np
import torch
import torchaudio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "fbank")
RATE = 16000

# name -> keyword arguments of torchaudio.compliance.kaldi.fbank
VARIANTS = {
    "fbank26": dict(num_mel_bins=26),
    "hamming40": dict(num_mel_bins=40, window_type="hamming", low_freq=60.0, high_freq=-400.0),
    "rect23_plain": dict(num_mel_bins=23, window_type="rectangular", preemphasis_coefficient=0.0,
                         remove_dc_offset=False, use_power=False),
    "hanning26_nosnip": dict(num_mel_bins=26, window_type="hanning", snip_edges=False),
    "blackman26_nopow2": dict(num_mel_bins=26, window_type="blackman",
                              round_to_power_of_two=False),
}


def synthesize():
    rng = np.random.default_rng(20160724)
    n = RATE // 2
    t = np.arange(n) / RATE
    f0, f1 = 200.0, 4000.0
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / t[-1] * t * t)
    x = 0.4 * np.sin(phase) + 0.05 * rng.standard_normal(n)
    # A quiet stretch in the middle exercises the FLT_EPSILON floor region.
    x[3000:3800] *= 0.001
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")


def main():
    os.makedirs(OUT, exist_ok=True)
    wav_path = os.path.join(OUT, "tiny.wav")
    with wave.open(wav_path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(synthesize().tobytes())
    waveform, sr = torchaudio.load(wav_path)
    assert sr == RATE and waveform.shape == (1, RATE // 2)
    for name, kwargs in VARIANTS.items():
        fb = torchaudio.compliance.kaldi.fbank(waveform * 32768, sample_frequency=RATE,
                                               dither=0.0, **kwargs)
        np.savetxt(os.path.join(OUT, f"tiny_{name}.csv"), fb.numpy(), fmt="%.6f", delimiter=",")
        print(f"tiny_{name}.csv: {tuple(fb.shape)}")


if __name__ == "__main__":
    main()
