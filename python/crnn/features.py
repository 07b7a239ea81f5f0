"""crnn's feature extractors from Python: the same code `crnn features` runs."""

import torch

__all__ = ["fbank", "egemaps", "egemaps_names"]


def _waveform(waveform):
    return waveform if isinstance(waveform, torch.Tensor) else torch.as_tensor(waveform)


def _flag(name, key, value):
    # bool("no") is True: a string or number here is a mistake, not a flag.
    if not isinstance(value, bool):
        raise TypeError(f"crnn.features.{name}: {key} must be True or False, got {value!r}")
    return value


def _rate(name, sample_rate):
    rate = int(sample_rate)
    if rate != sample_rate:
        raise ValueError(f"crnn.features.{name}: sample_rate must be a whole number of Hz, got {sample_rate!r}")
    return rate


def fbank(waveform, sample_rate, num_bins=26):
    """Kaldi log mel filterbank of a mono waveform (samples in [-1, 1)), frames × num_bins float32,
    exactly as `crnn features` computes it (25 ms Povey windows every 10 ms, no dither; docs/features.md).
    The waveform is analysed at `sample_rate` as given (no resampling)."""
    return torch.ops.crnn.fbank(_waveform(waveform), _rate("fbank", sample_rate), int(num_bins))


def egemaps(waveform, sample_rate, smooth=True):
    """The 25 eGeMAPS v02 low-level descriptors of a mono waveform (samples in [-1, 1]) per 10 ms
    frame, float32, exactly as `crnn features --kind egemaps` computes them (docs/features.md):
    smoothed (sma3 / sma3nz, the default; one frame more than the whole 60 ms windows) or raw.
    A waveform at another rate is resampled to 16 kHz first, as `crnn features` does for files.
    Columns in the order of egemaps_names(smooth); a waveform shorter than 60 ms gives 0 × 25."""
    return torch.ops.crnn.egemaps(_waveform(waveform), _rate("egemaps", sample_rate), _flag("egemaps", "smooth", smooth))


def egemaps_names(smooth=True):
    """The 25 column names of egemaps(): "Loudness_sma3", ..., "F3amplitudeLogRelF0_sma3nz"
    (without the suffixes when smooth is False), as `crnn features` stores them."""
    return list(torch.ops.crnn.egemaps_names(_flag("egemaps_names", "smooth", smooth)))
