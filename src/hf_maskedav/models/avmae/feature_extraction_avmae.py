"""AV-MAE feature extractor: a 10 s, 100 frames/s, 128-bin log-mel spectrogram normalised with AV-MAE's statistics."""

from __future__ import annotations

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from ...audio import prepare_waveforms

# scenic/projects/av_mae/configs/audioset/finetune.py: "calculated over the entire unbalanced train set".
AVMAE_SPECTROGRAM_MEAN = 1.102
AVMAE_SPECTROGRAM_STD = 2.762


class AVMAEFeatureExtractor(SequenceFeatureExtractor):
    r"""Log-mel spectrograms for AV-MAE: ``[batch, 1000, 128]`` (10 s at 100 frames per second), normalised as
    ``(x - 1.102) / 2.762`` (the statistics of the fine-tuning configs; the pretraining configs feed the spectrogram
    unnormalised: pass ``do_normalize=False``).

    **Unverified front-end.** The official pipeline reads precomputed log-mel features from TFRecords
    (``melspec/feature/floats``, 100 x 128 per second) and the code that computed them is not public; the exported
    TF SavedModels compute them internally from 16 kHz waveforms. This extractor follows the description of the MBT
    papers (25 ms Hamming window, 10 ms hop, 128 mel bins, log) with torchaudio's mel filterbank (HTK scale) and
    ``log(mel power + log_offset)``; it is a best-effort approximation, not a verified reproduction. Check its
    statistics on your data against 1.102 / 2.762 before relying on the normalisation.

    Args:
        sampling_rate (16000), num_mel_bins (128), max_length (1000 frames; zero-padded or cropped),
        window_ms (25.0), hop_ms (10.0), n_fft (1024), log_offset (1e-6), do_normalize (True), mean, std.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        feature_size: int = 128,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        num_mel_bins: int = 128,
        max_length: int = 1000,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_fft: int = 1024,
        log_offset: float = 1e-6,
        do_normalize: bool = True,
        mean: float = AVMAE_SPECTROGRAM_MEAN,
        std: float = AVMAE_SPECTROGRAM_STD,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.num_mel_bins = num_mel_bins
        self.max_length = max_length
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.n_fft = n_fft
        self.log_offset = log_offset
        self.do_normalize = do_normalize
        self.mean = mean
        self.std = std

    def _log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        import torchaudio

        transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sampling_rate,
            n_fft=self.n_fft,
            win_length=int(self.sampling_rate * self.window_ms / 1000),
            hop_length=int(self.sampling_rate * self.hop_ms / 1000),
            window_fn=torch.hamming_window,
            n_mels=self.num_mel_bins,
            mel_scale="htk",
            power=2.0,
            center=False,
        ).to(waveform.device)
        return torch.log(transform(waveform) + self.log_offset).transpose(-1, -2)  # [frames, mel]

    def __call__(self, raw_speech, sampling_rate: int | None = None, return_tensors: str | None = None, **kwargs):
        """Featurize one clip or a batch (16 kHz mono waveforms); returns ``input_values [batch, max_length, mel]``."""
        if kwargs:
            raise TypeError(f"unexpected argument(s) to {type(self).__name__}: {', '.join(sorted(kwargs))}")
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"audio sampled at {sampling_rate} Hz, but this feature extractor expects {self.sampling_rate} Hz; "
                "resample it first"
            )
        clips = prepare_waveforms(
            raw_speech, min_samples=int(self.sampling_rate * self.window_ms / 1000), downmix_clips=True
        )
        features = []
        for clip in clips:
            spectrogram = self._log_mel(clip)[: self.max_length]
            if spectrogram.shape[0] < self.max_length:
                spectrogram = torch.nn.functional.pad(spectrogram, (0, 0, 0, self.max_length - spectrogram.shape[0]))
            features.append(spectrogram)
        values = torch.stack(features)
        if self.do_normalize:
            values = (values - self.mean) / self.std
        if return_tensors in ("np", "numpy"):
            values = values.numpy()
        elif return_tensors is None:
            values = [np.asarray(v) for v in values.numpy()]
        elif return_tensors not in ("pt", "torch"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature({"input_values": values})


__all__ = ["AVMAEFeatureExtractor", "AVMAE_SPECTROGRAM_MEAN", "AVMAE_SPECTROGRAM_STD"]
