"""crnn's feature extractors from Python."""

import torch

__all__ = ["fbank"]


def fbank(waveform, sample_rate, num_bins=26):
    """Kaldi log mel filterbank of a mono waveform (samples in [-1, 1)), frames × num_bins float32,
    exactly as `crnn features` computes it (25 ms Povey windows every 10 ms, no dither; docs/features.md).
    The waveform is analysed at `sample_rate` as given (no resampling)."""
    if not isinstance(waveform, torch.Tensor):
        waveform = torch.as_tensor(waveform)
    return torch.ops.crnn.fbank(waveform, int(sample_rate), int(num_bins))
