"""A built-in, deterministic demo dataset of synthetic sound events (no download needed).

Every clip is generated on the fly from ``(seed, split, index)``, so the dataset is identical on every machine and in
every process, costs no disk space, and can be as long as wanted. It is meant for the examples and the tests: small
enough to pretrain on a laptop CPU in minutes, hard enough that a linear probe on a randomly initialised encoder does
not solve it.

Eight classes, chosen so that several pairs share the same average spectrum and differ only in time structure
(up- vs down-chirp, slow vs fast clicks, steady vs tremolo tone), which mean-pooled random features cannot separate:

====================  ====================================================================================
``tone``              one steady sinusoid, 150 Hz - 4 kHz
``harmonic``          a harmonic stack (f0 100 - 500 Hz, 3 - 8 partials with a random spectral tilt)
``chirp_up``          an exponential sweep upwards over 1 - 3 octaves
``chirp_down``        the same, downwards
``noise_burst``       1 - 3 bursts of band-limited noise, 60 - 250 ms each
``clicks_slow``       a train of short clicks every 180 - 350 ms (with jitter)
``clicks_fast``       a train of short clicks every 40 - 100 ms (with jitter)
``tremolo``           an amplitude-modulated tone (4 - 12 Hz modulation, depth 0.6 - 1)
====================  ====================================================================================

Each event starts at a random time, lasts half to all of the remaining clip, and is mixed with coloured background
noise at a random SNR (3 - 25 dB), sometimes a mains hum, and a random overall gain. In the multi-label variant a
clip holds one to three events of different classes, each at its own level and time.
"""

from __future__ import annotations

import numpy as np
import torch

DEMO_AUDIO_CLASSES = (
    "tone",
    "harmonic",
    "chirp_up",
    "chirp_down",
    "noise_burst",
    "clicks_slow",
    "clicks_fast",
    "tremolo",
)

_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
DEMO_AUDIO_SIZES = {"train": 480, "validation": 160, "test": 160}


def _fade(length: int, sampling_rate: int, fade_ms: float = 8.0) -> np.ndarray:
    """Raised-cosine fade in/out envelope (avoids clicks at event edges that would leak class information)."""
    ramp = min(int(sampling_rate * fade_ms / 1000), length // 2)
    envelope = np.ones(length)
    if ramp > 0:
        half = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        envelope[:ramp] = half
        envelope[length - ramp :] = half[::-1]
    return envelope


def _band_noise(rng: np.random.Generator, length: int, sampling_rate: int, low: float, high: float) -> np.ndarray:
    """White noise band-limited to ``[low, high]`` Hz by zeroing FFT bins."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sampling_rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.abs(noise).max() + 1e-9)


def _clicks(rng: np.random.Generator, length: int, sampling_rate: int, period_s: tuple[float, float]) -> np.ndarray:
    """A click train: short decaying resonances at a roughly regular period."""
    out = np.zeros(length)
    period = rng.uniform(*period_s)
    resonance = rng.uniform(800, 5000)
    decay = rng.uniform(1.5, 4.0) / 1000  # seconds
    click_len = int(sampling_rate * decay * 5)
    t = np.arange(click_len) / sampling_rate
    click = np.sin(2 * np.pi * resonance * t) * np.exp(-t / decay)
    position = rng.uniform(0, period) * sampling_rate
    while position < length:
        start = int(position)
        stop = min(length, start + click_len)
        out[start:stop] += click[: stop - start] * rng.uniform(0.6, 1.0)
        position += period * sampling_rate * rng.uniform(0.85, 1.15)
    return out


def _event(name: str, rng: np.random.Generator, length: int, sampling_rate: int) -> np.ndarray:
    t = np.arange(length) / sampling_rate
    if name == "tone":
        freq = np.exp(rng.uniform(np.log(150), np.log(4000)))
        return np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    if name == "harmonic":
        f0 = np.exp(rng.uniform(np.log(100), np.log(500)))
        tilt = rng.uniform(0.5, 1.5)
        partials = rng.integers(3, 9)
        out = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k**tilt for k in range(1, partials + 1))
        return out / np.abs(out).max()
    if name in ("chirp_up", "chirp_down"):
        low = np.exp(rng.uniform(np.log(150), np.log(1200)))
        high = min(low * 2 ** rng.uniform(1.0, 3.0), 0.45 * sampling_rate)
        duration = max(t[-1], 1.0 / sampling_rate)
        start, stop = (low, high) if name == "chirp_up" else (high, low)
        rate = np.log(stop / start) / duration
        phase = 2 * np.pi * start * (np.exp(rate * t) - 1) / rate  # exponential sweep
        return np.sin(phase)
    if name == "noise_burst":
        out = np.zeros(length)
        for _ in range(rng.integers(1, 4)):
            burst = int(sampling_rate * rng.uniform(0.06, 0.25))
            burst = min(burst, length)
            start = rng.integers(0, length - burst + 1)
            center = np.exp(rng.uniform(np.log(300), np.log(5000)))
            width = center * rng.uniform(0.3, 1.2)
            noise = _band_noise(rng, burst, sampling_rate, center - width / 2, center + width / 2)
            out[start : start + burst] += noise * _fade(burst, sampling_rate)
        return out
    if name == "clicks_slow":
        return _clicks(rng, length, sampling_rate, (0.18, 0.35))
    if name == "clicks_fast":
        return _clicks(rng, length, sampling_rate, (0.04, 0.10))
    if name == "tremolo":
        freq = np.exp(rng.uniform(np.log(150), np.log(4000)))
        rate = rng.uniform(4, 12)
        depth = rng.uniform(0.6, 1.0)
        envelope = 1 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
        return envelope * np.sin(2 * np.pi * freq * t)
    raise ValueError(f"unknown demo sound class {name!r}; expected one of {DEMO_AUDIO_CLASSES}")


def _background(rng: np.random.Generator, length: int, sampling_rate: int) -> np.ndarray:
    """Coloured noise (white to brown-ish, random slope) plus an occasional mains hum."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sampling_rate)
    slope = rng.uniform(0.0, 1.0)
    spectrum = spectrum / np.maximum(freqs, 20.0) ** slope
    noise = np.fft.irfft(spectrum, n=length)
    noise = noise / (noise.std() + 1e-9)
    if rng.random() < 0.3:
        mains = rng.choice([50.0, 60.0])
        t = np.arange(length) / sampling_rate
        noise = noise + rng.uniform(0.3, 1.0) * sum(np.sin(2 * np.pi * k * mains * t) / k for k in (1, 2, 3))
    return noise / (noise.std() + 1e-9)


def synthesize_clip(
    labels: list[int] | tuple[int, ...], rng: np.random.Generator, sampling_rate: int = 16000, duration: float = 1.0
) -> np.ndarray:
    """Mix the events of ``labels`` (class indices) into one clip of ``duration`` seconds, float32 in [-1, 1]."""
    length = int(round(sampling_rate * duration))
    mix = np.zeros(length)
    for label in labels:
        start = int(rng.uniform(0.0, 0.3) * length)
        event_len = max(int((length - start) * rng.uniform(0.5, 1.0)), sampling_rate // 20)
        event_len = min(event_len, length - start)
        event = _event(DEMO_AUDIO_CLASSES[label], rng, event_len, sampling_rate) * _fade(event_len, sampling_rate)
        event = event / (np.sqrt(np.mean(event**2)) + 1e-9)  # unit RMS, then a random level
        mix[start : start + event_len] += event * 10 ** (rng.uniform(-6, 0) / 20)
    signal_rms = np.sqrt(np.mean(mix**2)) + 1e-9
    snr_db = rng.uniform(3, 25)
    mix = mix + _background(rng, length, sampling_rate) * signal_rms / 10 ** (snr_db / 20)
    mix = mix / (np.abs(mix).max() + 1e-9) * rng.uniform(0.1, 0.9)
    return mix.astype(np.float32)


class DemoAudioDataset(torch.utils.data.Dataset):
    """Synthetic labelled sound events, generated deterministically from ``(seed, split, index)``.

    Items look like rows of a Hugging Face audio dataset: ``{"audio": {"array", "sampling_rate"}, "label": int,
    "id": str}`` (``"labels": list[int]`` instead of ``"label"`` when ``multi_label``). Classes are balanced
    (``index % num_classes`` in the single-label variant).

    Args:
        split: ``"train"`` (480 clips by default), ``"validation"`` or ``"test"`` (160 each); the splits use
            disjoint random streams.
        num_clips: override the split size.
        seed: base seed of the generator; the same seed gives the same clips everywhere.
        sampling_rate: sampling rate of the generated audio (16 kHz, what the models expect).
        duration: clip length in seconds.
        multi_label: mix one to three events of different classes per clip and return their indices.
        cache: keep generated clips in memory (about 64 kB per 1-s clip), so later epochs do not synthesise again.
    """

    label_names = DEMO_AUDIO_CLASSES

    def __init__(
        self,
        split: str = "train",
        num_clips: int | None = None,
        seed: int = 0,
        sampling_rate: int = 16000,
        duration: float = 1.0,
        multi_label: bool = False,
        cache: bool = True,
    ):
        if split not in _SPLIT_CODES:
            raise ValueError(f"unknown demo split {split!r}; choose one of {sorted(_SPLIT_CODES)}")
        self.split = split
        self.num_clips = DEMO_AUDIO_SIZES[split] if num_clips is None else int(num_clips)
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {self.num_clips}")
        self.seed = seed
        self.sampling_rate = sampling_rate
        self.duration = duration
        self.multi_label = multi_label
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return self.num_clips

    def labels_of(self, index: int) -> list[int]:
        """Class indices of clip ``index`` (cheap: does not synthesise the audio)."""
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 1])
        if not self.multi_label:
            return [index % len(DEMO_AUDIO_CLASSES)]
        count = int(rng.integers(1, 4))
        return sorted(rng.choice(len(DEMO_AUDIO_CLASSES), size=count, replace=False).tolist())

    def __getitem__(self, index: int) -> dict:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for a demo split of {self.num_clips} clips")
        index = index % self.num_clips
        labels = self.labels_of(index)
        array = self._cache.get(index) if self._cache is not None else None
        if array is None:
            rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 0])
            array = synthesize_clip(labels, rng, self.sampling_rate, self.duration)
            if self._cache is not None:
                self._cache[index] = array
        array = array.copy()  # callers may modify it; the cached clip stays intact
        item = {"audio": {"array": array, "sampling_rate": self.sampling_rate}, "id": f"demo-{self.split}-{index}"}
        if self.multi_label:
            item["labels"] = labels
        else:
            item["label"] = labels[0]
        return item


__all__ = ["DEMO_AUDIO_CLASSES", "DEMO_AUDIO_SIZES", "DemoAudioDataset", "synthesize_clip"]
