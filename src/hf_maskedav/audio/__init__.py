"""Audio front-end shared by the audio models (fbank, waveform checks)."""

from .fbank import kaldi_fbank, mel_centre_frequencies, num_frames
from .waveform import downmix, prepare_waveforms

__all__ = ["downmix", "kaldi_fbank", "mel_centre_frequencies", "num_frames", "prepare_waveforms"]
