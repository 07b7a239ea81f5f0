#!/usr/bin/env python3
"""A model trained by `crnn train`, used from Python.

    /usr/bin/python3 examples/python/use_trained_model.py RUN_DIR AUDIO.wav [...]
"""

import sys

import torch

import crnn

run_dir, files = sys.argv[1], sys.argv[2:]

# End to end, exactly as `crnn predict RUN_DIR FILES` (features, normalization, batching):
for p in crnn.Classifier(run_dir).predict(files):
    print(p.path, p.label or p.error, [round(v, 3) for v in p.probabilities])

# The network itself as a torch.nn.Module (eval mode), e.g. to fine-tune or inspect:
model = crnn.load(run_dir)
feats = model.features(files[0])                      # frames × k (26 fbank / 25 eGeMAPS), as in training
std = feats.std(0, unbiased=False)                    # one utterance, its own statistics;
normed = (feats - feats.mean(0)) * torch.where(std > 1e-5, 1 / std, 0.0)  # constant columns -> 0, as crnn
log_p = model(normed.unsqueeze(0), torch.tensor([feats.shape[0]]))
print(dict(zip(model.labels, log_p.exp()[0].tolist())))
