"""Audio-MAE feature extractor: Kaldi fbank exactly as the official AudioMAE ``dataset.py``, batched and on any device."""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import ASTFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging

from ...audio import kaldi_fbank, prepare_waveforms

logger = logging.get_logger(__name__)


class AudioMAEFeatureExtractor(ASTFeatureExtractor):
    r"""Log-mel fbank features for Audio-MAE (and MAViL's audio branch).

    Same settings and saved fields as transformers' ``ASTFeatureExtractor`` (16 kHz, 128 mel bins, 25 ms Hann window,
    10 ms hop, zero-pad/crop to ``max_length`` frames, ``(fbank - mean) / (2 * std)`` with the AudioSet statistics),
    which is what the official AudioMAE ``dataset.py`` computes. Unlike AST's per-sample loop it computes a whole
    batch at once in torch, on CPU or on ``device``, and checks its input.

    Args:
        subtract_mean (`bool`, defaults to `True`): subtract each waveform's mean first (official ``_wav2fbank``).
        fbank_dtype (`str`, defaults to `"float64"`): precision of the framing and FFT. ``"float64"`` keeps the
            low-energy mel bins (where a float32 FFT's rounding noise dominates) within the official fixtures'
            tolerance; ``"float32"`` is about twice as fast on CPU, more on GPUs, with that noise (up to ~2e-4 after
            normalisation in quiet bins).
        normalization (`str`, defaults to `"dataset"`): ``"dataset"`` is the official ``(fbank - mean) / (2 * std)``
            with fixed statistics; ``"per_clip"`` standardises each clip by the mean and standard deviation of its
            own frames (per-utterance normalisation, as speech front ends do) and pads with zeros: a recording's
            level and channel colour no longer shift every feature, which matters on small data with few
            recording set-ups (FSDD's held-out speakers: docs/efficacy.md). Not what the released checkpoints saw.
        top_db (`float`, *optional*): floor every log-mel value at ``top_db`` decibels below the clip's loudest one
            (librosa's ``power_to_db(top_db=...)``), before any normalisation. Without it the floor is the fbank's
            fixed energy floor (``log(eps)``), so an empty band (8-kHz audio resampled to 16 kHz has nothing above
            4 kHz; a digitally silent stretch) sits at a fixed distance from the speech below the recording's level:
            louder recordings look different even after ``"per_clip"`` normalisation. A floor relative to the clip's
            peak moves with the level, so a gain change is a pure shift, which ``"per_clip"`` removes exactly
            (docs/efficacy.md). ``None`` (default): no floor, the official computation.
        other arguments: as ``ASTFeatureExtractor`` (``sampling_rate``, ``num_mel_bins``, ``max_length``,
            ``do_normalize``, ``mean``, ``std``).
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        *args,
        subtract_mean: bool = True,
        fbank_dtype: str = "float64",
        normalization: str = "dataset",
        top_db: float | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if fbank_dtype not in ("float64", "float32"):
            raise ValueError(f"fbank_dtype must be 'float64' or 'float32', got {fbank_dtype!r}")
        self.check_options(normalization, top_db)
        self.top_db = top_db
        self.subtract_mean = subtract_mean
        self.fbank_dtype = fbank_dtype
        self.normalization = normalization

    @staticmethod
    def check_options(normalization: str | None = None, top_db: float | None = None) -> None:
        """Refuse a ``normalization`` or ``top_db`` the feature extractor cannot use (``None``: not being set)."""
        if normalization is not None and normalization not in ("dataset", "per_clip"):
            raise ValueError(f"normalization must be 'dataset' or 'per_clip', got {normalization!r}")
        if top_db is not None and not top_db > 0:
            raise ValueError(f"top_db must be a positive number of decibels (or None for no floor), got {top_db!r}")

    def _log_mel(self, raw_speech, max_length: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The fbank of each clip's first ``max_length`` frames, before any floor or normalisation: ``(fbank [N, frames,
        mel], keep [N, frames, 1])``, ``keep`` 1 on each clip's own frames and 0 on the batch padding after them."""
        window = int(self.sampling_rate * 0.025)
        clips = prepare_waveforms(raw_speech, min_samples=window, downmix_clips=True)

        # Only the samples of the first max_length frames are used: longer clips are cut before the fbank (their mean,
        # as the official code takes it, still comes from the whole clip).
        shift = int(self.sampling_rate * 0.010)
        needed = (max_length - 1) * shift + window
        lengths = torch.tensor([min(len(c), needed) for c in clips])
        batch = torch.zeros(len(clips), int(lengths.max()))
        for i, clip in enumerate(clips):
            kept = clip[: lengths[i]]
            batch[i, : len(kept)] = kept - clip.mean() if self.subtract_mean else kept
        batch = batch.to(device) if device is not None else batch

        fbank = kaldi_fbank(
            batch, lengths, sampling_rate=self.sampling_rate, num_mel_bins=self.num_mel_bins,
            dtype=getattr(torch, self.fbank_dtype),
        )
        valid = ((lengths - window) // shift + 1).clamp(min=1).to(fbank.device)  # [N] each clip's own frames
        keep = (torch.arange(fbank.shape[1], device=fbank.device)[None, :] < valid[:, None]).to(fbank.dtype)[..., None]
        return fbank, keep

    def empty_top_mel_bins(self, raw_speech, sampling_rate: int | None = None) -> list[int]:
        """For each clip, how many of its highest mel bins never rise above the fbank's fixed floor (``log(eps)``).

        Audio recorded at a lower rate and resampled up (8-kHz telephone speech at 16 kHz: nothing above 4 kHz)
        leaves those bins empty in every clip; without ``top_db`` they then sit a recording-dependent distance under
        the speech, which per-clip normalisation does not remove (docs/efficacy.md). A clip that is silent in every
        bin counts 0 (it says nothing about the band). ``raw_speech``: as ``__call__``, at ``self.sampling_rate``.
        """
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"audio sampled at {sampling_rate} Hz, but this feature extractor expects "
                             f"{self.sampling_rate} Hz; resample it first")
        fbank, keep = self._log_mel(raw_speech, self.max_length)
        floor = math.log(torch.finfo(torch.float32).eps)  # kaldi_fbank's clamp
        loudest = fbank.masked_fill(keep == 0, float("-inf")).amax(dim=1)  # [N, mel] each bin's loudest frame
        empty = loudest <= floor + 1e-3
        # the run of empty bins at the top of each clip's mel axis (bins counted from the highest down)
        top_run = empty.flip(-1).to(torch.int64).cumprod(dim=-1).sum(dim=-1)
        top_run[empty.all(dim=-1)] = 0
        return top_run.tolist()

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Featurize one clip or a batch.

        Args:
            raw_speech: one mono clip (1-D numpy array, torch tensor or list of floats), a ``(batch, samples)``
                array/tensor, or a list of clips of different lengths. Integer PCM is scaled to ``[-1, 1)``.
            sampling_rate: sampling rate of ``raw_speech``; must equal ``self.sampling_rate`` (resample first).
            return_tensors: ``"pt"`` or ``"np"``; a list of numpy arrays when omitted.
            device: compute on this device (e.g. ``"cuda"``); the result stays there with ``return_tensors="pt"``.
            max_length: frames to pad/crop to (defaults to ``self.max_length``).

        Returns:
            ``BatchFeature`` with ``input_values`` of shape ``(batch, max_length, num_mel_bins)``.
        """
        if kwargs:
            unexpected = ", ".join(sorted(k for k in kwargs if k not in ("padding", "truncation")))
            if unexpected:
                raise TypeError(f"unexpected argument(s) to {type(self).__name__}: {unexpected}")
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass `sampling_rate` to {type(self).__name__}; assuming "
                f"{self.sampling_rate} Hz."
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"audio sampled at {sampling_rate} Hz, but this feature extractor expects {self.sampling_rate} Hz; "
                f"resample it first (torchaudio.functional.resample or librosa.resample), or give the "
                f"audio-classification pipeline a {{'array', 'sampling_rate'}} dict, which resamples for you"
            )
        max_length = max_length or self.max_length
        fbank, keep = self._log_mel(raw_speech, max_length, device)
        frames = fbank.shape[1]
        if self.top_db is not None:
            # fbank is the natural log of mel power: top_db decibels are top_db * ln(10) / 10 of it
            peak = fbank.masked_fill(keep == 0, float("-inf")).amax(dim=(1, 2), keepdim=True)
            floored = torch.maximum(fbank, peak - self.top_db * math.log(10) / 10)
            fbank = torch.where(keep > 0, floored, fbank)  # rows past a clip's end (batch padding) untouched
        if self.do_normalize and self.normalization == "per_clip":
            # statistics of each clip's own frames; padding (added below) then sits at the clip's mean, 0
            count = keep.sum(dim=(1, 2), keepdim=True) * fbank.shape[-1]
            mean = (fbank * keep).sum(dim=(1, 2), keepdim=True) / count
            std = ((((fbank - mean) * keep) ** 2).sum(dim=(1, 2), keepdim=True) / count).sqrt()
            fbank = ((fbank - mean) / (std + 1e-5)) * keep
        if frames < max_length:
            fbank = torch.nn.functional.pad(fbank, (0, 0, 0, max_length - frames))  # zeros at the end
        else:
            fbank = fbank[:, :max_length]
        if self.do_normalize and self.normalization == "dataset":
            fbank = fbank.sub_(self.mean).div_(self.std * 2)  # (fbank - mean) / (2 * std), in place

        if return_tensors in ("pt", "torch"):
            values = fbank
        elif return_tensors in ("np", "numpy"):
            values = fbank.cpu().numpy()
        elif return_tensors is None:
            values = [np.asarray(f) for f in fbank.cpu().numpy()]
        else:
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature({"input_values": values})


__all__ = ["AudioMAEFeatureExtractor"]
