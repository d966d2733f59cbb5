"""CAV-MAE feature extractor: the Audio-MAE Kaldi fbank with CAV-MAE's statistics and its ÷σ normalisation."""

from __future__ import annotations

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature

from ..audiomae.feature_extraction_audiomae import AudioMAEFeatureExtractor

# YuanGongND/cav-mae src/run_cavmae_{pretrain,ft}.py: the same statistics for AudioSet and VGGSound.
CAVMAE_FBANK_MEAN = -5.081
CAVMAE_FBANK_STD = 4.4849


class CAVMAEFeatureExtractor(AudioMAEFeatureExtractor):
    r"""Log-mel fbank features for CAV-MAE (official ``src/dataloader.py``, evaluation settings).

    The fbank is computed exactly as :class:`~hf_maskedav.AudioMAEFeatureExtractor` does (waveform mean removed,
    Kaldi fbank with 128 mel bins, 25 ms Hann window, 10 ms hop, zero-padded/cropped to ``max_length`` frames), which
    is also what CAV-MAE's loader computes. Only the normalisation differs: CAV-MAE divides by the standard deviation
    once, ``(fbank - mean) / std``, with its own statistics (mean -5.081, std 4.4849), where Audio-MAE and AST divide
    by ``2 * std``. A plain ``AudioMAEFeatureExtractor`` config cannot express that, hence this subclass (the saved
    ``mean``/``std`` fields are the official values, not rescaled ones).

    Training-time augmentations of the official loader (noise, random time roll, SpecAugment, mixup) are not applied.

    Returns a ``BatchFeature`` with ``input_values`` of shape ``(batch, max_length, num_mel_bins)``.
    """

    def __init__(self, *args, mean: float = CAVMAE_FBANK_MEAN, std: float = CAVMAE_FBANK_STD, **kwargs):
        super().__init__(*args, mean=mean, std=std, **kwargs)

    def __call__(self, raw_speech, sampling_rate=None, return_tensors=None, device=None, max_length=None, **kwargs):
        """Featurize one clip or a batch; arguments as :meth:`AudioMAEFeatureExtractor.__call__`."""
        if return_tensors not in (None, "pt", "torch", "np", "numpy"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        features = super().__call__(
            raw_speech, sampling_rate=sampling_rate, return_tensors="pt", device=device, max_length=max_length, **kwargs
        )["input_values"]
        if self.do_normalize:
            # The parent computes (x - mean) / (2 * std); doubling it is exact in floating point (a power of two), so
            # the result is bit-identical to (x - mean) / std.
            features = features * 2
        if return_tensors in ("np", "numpy"):
            features = features.cpu().numpy()
        elif return_tensors is None:
            features = [np.asarray(f) for f in features.cpu().numpy()]
        return BatchFeature({"input_values": features})


__all__ = ["CAVMAEFeatureExtractor", "CAVMAE_FBANK_MEAN", "CAVMAE_FBANK_STD"]
