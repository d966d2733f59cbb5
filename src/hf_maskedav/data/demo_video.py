"""Built-in demo video and audio-visual datasets: moving shapes with a matching sound, written as real .mp4 files.

Every clip is rendered deterministically from ``(seed, split, index)`` and written once, with PyAV, into a cache
folder (H.264 video + AAC audio in an .mp4 container), so the examples and tests exercise the whole decoding path
(container, codec, seeking, audio track) without any download. Each split folder also gets a ``metadata.csv``
(``file_name,label``), which makes it a valid ``videofolder`` as well.

Eight classes. Each is a *motion pattern* of one object (random shape, colour, size and place, on a random textured
background with static distractor blobs and sensor noise), and the clip's sound mirrors the motion, so the classes of
the audio-visual variant agree across modalities and individual clips correspond in time and pitch (the object's
height sets the pitch; its onset/offset and its events are the sound's):

===============  ===========================================================  ==============================
class            picture                                                      sound
===============  ===========================================================  ==============================
``still``        the object stays in place                                    a steady tone
``stack``        a column of 3-5 small copies                                 a harmonic stack (one partial per copy)
``rise``         it moves upwards                                             an up-chirp following its height
``fall``         it moves downwards                                           a down-chirp
``flash``        it appears in 2-4 short flashes                              noise bursts at the same moments
``bounce``       it bounces on a floor (0.6-1 s period)                       a click at each impact
``shake``        it jitters every frame                                       fast clicks, one per jump
``pulse``        its size oscillates (1.2-2.5 Hz)                             a tremolo tone at the same rate
===============  ===========================================================  ==============================

Colour, shape and position say nothing about the class, so a classifier must look at motion and time structure.
The multi-label variant shows one or two objects of different classes (and mixes their sounds).
"""

from __future__ import annotations

import csv
import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import torch

DEMO_VIDEO_CLASSES = ("still", "stack", "rise", "fall", "flash", "bounce", "shake", "pulse")
# The sound each picture class makes (names of the matching classes of the built-in audio demo, for reference).
DEMO_VIDEO_SOUNDS = {
    "still": "tone",
    "stack": "harmonic",
    "rise": "chirp_up",
    "fall": "chirp_down",
    "flash": "noise_burst",
    "bounce": "clicks_slow",
    "shake": "clicks_fast",
    "pulse": "tremolo",
}
DEMO_VIDEO_SIZES = {"train": 480, "validation": 160, "test": 160}
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
# Bump when the renderer changes: the cache folder name includes it, so old files are never reused.
DEMO_VIDEO_VERSION = 1


def default_cache_dir() -> str:
    """``$HF_MASKEDAV_CACHE`` or ``~/.cache/hf_maskedav`` (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("HF_MASKEDAV_CACHE"):
        return os.environ["HF_MASKEDAV_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hf_maskedav")


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def _shape_distance(kind: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a shape centred at the origin."""
    if kind == "circle":
        return np.sqrt(dx**2 + dy**2) - radius
    if kind == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - radius * 0.85
    if kind == "diamond":
        return (np.abs(dx) + np.abs(dy)) / np.sqrt(2) - radius * 0.8
    if kind == "ring":
        return np.abs(np.sqrt(dx**2 + dy**2) - radius * 0.75) - max(radius * 0.3, 1.0)
    raise ValueError(f"unknown shape {kind!r}")


_SHAPES = ("circle", "square", "diamond", "ring")


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _background(rng: np.random.Generator, height: int, width: int, dark: bool) -> np.ndarray:
    """A static textured background: a two-colour gradient, smooth noise and a few soft distractor blobs."""
    level = rng.uniform(0.05, 0.35) if dark else rng.uniform(0.6, 0.9)
    c0 = np.clip(level + rng.uniform(-0.12, 0.12, 3), 0, 1)
    c1 = np.clip(level + rng.uniform(-0.12, 0.12, 3), 0, 1)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    image = c0[None, None] * (1 - ramp[..., None]) + c1[None, None] * ramp[..., None]
    coarse = rng.standard_normal((height // 8 + 2, width // 8 + 2))
    texture = torch.nn.functional.interpolate(
        torch.from_numpy(coarse)[None, None], size=(height, width), mode="bicubic", align_corners=False
    )[0, 0].numpy()
    image = image + rng.uniform(0.02, 0.08) * texture[..., None]
    for _ in range(rng.integers(0, 3)):  # distractors: big, pale, static ellipses
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        ax, ay = rng.uniform(6, 18), rng.uniform(6, 18)
        blob = np.exp(-(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2))
        image = image + rng.uniform(-0.15, 0.15, 3)[None, None] * blob[..., None]
    return image


class _Object:
    """One moving object: where it is, how big, how opaque, at every frame; and the events its sound follows."""

    def __init__(self, label: int, rng: np.random.Generator, num_frames: int, fps: float, height: int, width: int):
        self.name = DEMO_VIDEO_CLASSES[label]
        self.kind = _SHAPES[rng.integers(len(_SHAPES))]
        t = np.arange(num_frames) / fps
        duration = num_frames / fps
        self.t = t
        on = rng.uniform(0.0, 0.15) * duration
        off = on + rng.uniform(0.8, 1.0) * (duration - on)
        self.window = (on, off)
        self.radius = np.full(num_frames, rng.uniform(4.0, 7.5))
        self.x = np.full(num_frames, rng.uniform(0.2, 0.8) * width)
        self.y = np.full(num_frames, rng.uniform(0.3, 0.7) * height)
        self.copies = 1
        self.events: list[float] = []  # times of clicks/bursts
        self.rate = 0.0
        name = self.name
        if name == "still":
            self.x += rng.normal(0, 0.2, num_frames)
            self.y += rng.normal(0, 0.2, num_frames)
        elif name == "stack":
            self.copies = int(rng.integers(3, 6))
            self.radius[:] = rng.uniform(2.5, 3.5)
            self.y[:] = rng.uniform(0.55, 0.8) * height  # the bottom copy
        elif name in ("rise", "fall"):
            low, high = rng.uniform(0.65, 0.85) * height, rng.uniform(0.15, 0.35) * height
            start, stop = (low, high) if name == "rise" else (high, low)
            progress = np.clip((t - on) / max(off - on, 1e-6), 0, 1)
            self.y = start + (stop - start) * progress
            self.x = self.x + rng.uniform(-0.15, 0.15) * width * progress
        elif name == "flash":
            count = int(rng.integers(2, 5))
            centres = (np.arange(count) + rng.uniform(0.25, 0.75, count)) * duration / count
            length = rng.uniform(1.5, 3.0) / fps
            self.window = None
            self.bursts = [(c - length / 2, c + length / 2) for c in centres]
            self.events = [c - length / 2 for c in centres]
        elif name == "bounce":
            floor, amplitude = rng.uniform(0.65, 0.85) * height, rng.uniform(0.25, 0.45) * height
            period, phase = rng.uniform(0.6, 1.0), rng.uniform(0, 1.0)
            self.y = floor - amplitude * np.abs(np.sin(np.pi * (t - phase) / period))
            self.x = self.x + rng.uniform(-4, 4) * (t - duration / 2)
            first = phase - np.floor(phase / period) * period
            self.events = [e for e in np.arange(first, duration, period) if on <= e <= off]
        elif name == "shake":
            amplitude = rng.uniform(1.5, 3.5)
            self.x = self.x + rng.uniform(-amplitude, amplitude, num_frames)
            self.y = self.y + rng.uniform(-amplitude, amplitude, num_frames)
            self.events = [e for e in t if on <= e <= off]
        elif name == "pulse":
            self.rate = rng.uniform(1.2, 2.5)
            self.depth = rng.uniform(0.35, 0.6)
            self.phase = rng.uniform(0, 2 * np.pi)
            self.radius = self.radius * (1 + self.depth * np.sin(2 * np.pi * self.rate * t + self.phase))
        else:
            raise ValueError(f"unknown demo video class {name!r}")
        self.height = height

    def visible(self, times: np.ndarray, fps: float) -> np.ndarray:
        """Opacity in [0, 1] at ``times`` (one-frame fades at the edges)."""
        ramp = 1.0 / fps
        if self.window is None:
            alpha = np.zeros_like(times)
            for start, stop in self.bursts:
                alpha = np.maximum(alpha, np.clip(np.minimum(times - start, stop - times) / ramp + 0.5, 0, 1))
            return alpha
        on, off = self.window
        return np.clip(np.minimum(times - on, off - times) / ramp + 0.5, 0, 1)

    def pitch(self, y: np.ndarray | float) -> np.ndarray:
        """Height -> frequency: the top of the frame is ~2.4 kHz, the bottom ~150 Hz."""
        return 150.0 * 2.0 ** (4.0 * (1.0 - np.asarray(y) / self.height))


def _render_frames(objects, colours, background, noise_std, rng, num_frames, fps) -> np.ndarray:
    height, width, _ = background.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    times = np.arange(num_frames) / fps
    for i in range(num_frames):
        image = background.copy()
        for obj, colour in zip(objects, colours):
            alpha = obj.visible(times[i : i + 1], fps)[0]
            if alpha <= 0:
                continue
            for copy in range(obj.copies):
                cy = obj.y[i] - copy * 2.4 * obj.radius[i]
                coverage = np.clip(0.5 - _shape_distance(obj.kind, xx - obj.x[i], yy - cy, obj.radius[i]), 0, 1)
                weight = (alpha * coverage)[..., None]
                image = image * (1 - weight) + colour[None, None] * weight
        image = image + rng.normal(0, noise_std, image.shape)
        frames[i] = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return frames


def _fade(length: int, ramp: int) -> np.ndarray:
    envelope = np.ones(length)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        half = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        envelope[:ramp], envelope[length - ramp :] = half, half[::-1]
    return envelope


def _click(rng: np.random.Generator, sampling_rate: int, resonance: float) -> np.ndarray:
    decay = rng.uniform(2.0, 4.0) / 1000
    t = np.arange(int(sampling_rate * decay * 5)) / sampling_rate
    return np.sin(2 * np.pi * resonance * t) * np.exp(-t / decay)


def _sound(obj: _Object, rng: np.random.Generator, num_samples: int, sampling_rate: int, fps: float) -> np.ndarray:
    """The object's sound: its pitch follows the object's height; its time structure follows the motion."""
    t = np.arange(num_samples) / sampling_rate
    frame_times = obj.t
    y = np.interp(t, frame_times, obj.y)
    freq = obj.pitch(y)
    phase = 2 * np.pi * np.cumsum(freq) / sampling_rate + rng.uniform(0, 2 * np.pi)
    name = obj.name
    out = np.zeros(num_samples)
    if name in ("still", "rise", "fall"):
        out = np.sin(phase)
    elif name == "stack":
        tilt = rng.uniform(0.5, 1.2)
        base = phase / 2  # an octave below the bottom copy's pitch
        out = sum(np.sin(k * base + rng.uniform(0, 2 * np.pi)) / k**tilt for k in range(1, obj.copies + 1))
    elif name == "pulse":
        envelope = 1 - obj.depth * (0.5 + 0.5 * np.sin(2 * np.pi * obj.rate * t + obj.phase))
        out = envelope * np.sin(phase)
    elif name == "flash":
        for start, stop in obj.bursts:
            a, b = max(int(start * sampling_rate), 0), min(int(stop * sampling_rate), num_samples)
            if b - a < 8:
                continue
            spectrum = np.fft.rfft(rng.standard_normal(b - a))
            freqs = np.fft.rfftfreq(b - a, 1.0 / sampling_rate)
            centre = float(obj.pitch(obj.y[0])) * 2
            spectrum[(freqs < centre * 0.6) | (freqs > centre * 1.6)] = 0
            burst = np.fft.irfft(spectrum, n=b - a)
            out[a:b] += burst / (np.abs(burst).max() + 1e-9) * _fade(b - a, int(0.004 * sampling_rate))
    elif name in ("bounce", "shake"):
        for event in obj.events:
            start = int(event * sampling_rate)
            if start >= num_samples:
                continue
            frame = min(int(round(event * fps)), len(obj.y) - 1)
            click = _click(rng, sampling_rate, float(obj.pitch(obj.y[frame])) * 2) * rng.uniform(0.6, 1.0)
            stop = min(num_samples, start + len(click))
            out[start:stop] += click[: stop - start]
    if obj.window is not None:  # silent while the object is not on screen
        out = out * obj.visible(t, fps)
    return out


def _noise(rng: np.random.Generator, length: int, sampling_rate: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sampling_rate)
    spectrum = spectrum / np.maximum(freqs, 20.0) ** rng.uniform(0.0, 1.0)
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (noise.std() + 1e-9)


def render_clip(
    labels: list[int] | tuple[int, ...],
    rng: np.random.Generator,
    num_frames: int = 32,
    fps: float = 12.0,
    height: int = 48,
    width: int = 64,
    sampling_rate: int = 16000,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip showing one object per entry of ``labels`` (class indices).

    Returns:
        ``(frames [num_frames, height, width, 3] uint8, waveform [samples] float32 in [-1, 1])``; the audio lasts as
        long as the video (``num_frames / fps`` seconds).
    """
    dark = bool(rng.random() < 0.5)
    background = _background(rng, height, width, dark)
    objects, colours = [], []
    for label in labels:
        objects.append(_Object(int(label), rng, num_frames, fps, height, width))
        hue, saturation = rng.uniform(0, 1), rng.uniform(0.5, 1.0)
        value = rng.uniform(0.75, 1.0) if dark else rng.uniform(0.1, 0.4)
        colours.append(_hsv_to_rgb(hue, saturation, value))
    frames = _render_frames(objects, colours, background, rng.uniform(0.005, 0.025), rng, num_frames, fps)

    num_samples = int(round(num_frames / fps * sampling_rate))
    mix = np.zeros(num_samples)
    for obj in objects:
        sound = _sound(obj, rng, num_samples, sampling_rate, fps)
        mix += sound / (np.sqrt(np.mean(sound**2)) + 1e-9) * 10 ** (rng.uniform(-6, 0) / 20)
    signal_rms = np.sqrt(np.mean(mix**2)) + 1e-9
    mix = mix + _noise(rng, num_samples, sampling_rate) * signal_rms / 10 ** (rng.uniform(6, 25) / 20)
    mix = mix / (np.abs(mix).max() + 1e-9) * rng.uniform(0.2, 0.9)
    return frames, mix.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Writing .mp4 files
# ---------------------------------------------------------------------------------------------------------------------


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, waveform: np.ndarray | None = None,
              sampling_rate: int = 16000, crf: int = 18) -> str:
    """Write ``frames`` (``[T, H, W, 3]`` uint8, even H and W) as H.264 and ``waveform`` (mono float) as AAC into an
    .mp4 with PyAV. Single-threaded encoders, so the same input always gives the same bytes on a machine."""
    import av
    from fractions import Fraction

    path = os.fspath(path)
    num_frames, height, width, _ = frames.shape
    with av.open(path, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "bframes": "0"}
        audio = None
        if waveform is not None:
            audio = container.add_stream("aac", rate=sampling_rate)
            audio.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            chunk = 1024
            samples = np.asarray(waveform, dtype=np.float32)
            for start in range(0, len(samples), chunk):
                piece = samples[start : start + chunk]
                audio_frame = av.AudioFrame.from_ndarray(piece[None, :].copy(), format="fltp", layout="mono")
                audio_frame.sample_rate = sampling_rate
                audio_frame.pts = start
                for packet in audio.encode(audio_frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------------------------------


class DemoVideoDataset(torch.utils.data.Dataset):
    """Moving shapes with labels (and a matching sound track), as .mp4 files generated once into a cache folder.

    Items look like rows of a Hugging Face video dataset stored with ``Video(decode=False)``: ``{"video": path,
    "label": int, "id": str}`` (``"labels": list[int]`` instead of ``"label"`` when ``multi_label``); the file's
    audio track is the clip's sound (see the module docstring). Classes are balanced (``index % 8`` in the
    single-label variant). Files are written on first use (about 20 ms per clip); later runs and other processes
    reuse them.

    Args:
        split: ``"train"`` (480 clips), ``"validation"`` or ``"test"`` (160 each); disjoint random streams.
        num_clips: override the split size (the first ``num_clips`` clips of the split).
        seed: generator seed; the same seed gives the same clips everywhere.
        multi_label: one or two objects of different classes per clip.
        num_frames, fps, height, width, sampling_rate: clip geometry (32 frames of 64x48 at 12 fps, 16 kHz audio by
            default: 2.67 s).
        cache_dir: where the files go (``$HF_MASKEDAV_CACHE`` or ``~/.cache/hf_maskedav`` by default).
        prepare: write missing files now (otherwise call :meth:`prepare` before reading).
    """

    label_names = DEMO_VIDEO_CLASSES

    def __init__(
        self,
        split: str = "train",
        num_clips: int | None = None,
        seed: int = 0,
        multi_label: bool = False,
        num_frames: int = 32,
        fps: float = 12.0,
        height: int = 48,
        width: int = 64,
        sampling_rate: int = 16000,
        cache_dir: str | None = None,
        prepare: bool = True,
    ):
        if split not in _SPLIT_CODES:
            raise ValueError(f"unknown demo split {split!r}; choose one of {sorted(_SPLIT_CODES)}")
        if height % 2 or width % 2:
            raise ValueError(f"H.264 in yuv420p needs an even frame size, got {height}x{width}")
        self.split = split
        self.num_clips = DEMO_VIDEO_SIZES[split] if num_clips is None else int(num_clips)
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {self.num_clips}")
        self.seed, self.multi_label = seed, multi_label
        self.num_frames, self.fps, self.height, self.width = num_frames, fps, height, width
        self.sampling_rate = sampling_rate
        tag = f"v{DEMO_VIDEO_VERSION}-seed{seed}-{num_frames}f-{width}x{height}-{fps:g}fps-{sampling_rate}hz"
        tag += "-multi" if multi_label else ""
        self.folder = Path(cache_dir or default_cache_dir()) / "demo_video" / tag / split
        if prepare:
            self.prepare()

    def __len__(self) -> int:
        return self.num_clips

    def labels_of(self, index: int) -> list[int]:
        """Class indices of clip ``index`` (cheap: renders nothing)."""
        if not self.multi_label:
            return [index % len(DEMO_VIDEO_CLASSES)]
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 1])
        count = int(rng.integers(1, 3))
        return sorted(rng.choice(len(DEMO_VIDEO_CLASSES), size=count, replace=False).tolist())

    def path_of(self, index: int) -> str:
        return str(self.folder / f"{index:05d}.mp4")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames and waveform of clip ``index`` (what its file holds before compression)."""
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 0])
        return render_clip(self.labels_of(index), rng, self.num_frames, self.fps, self.height, self.width,
                           self.sampling_rate)

    def prepare(self) -> str:
        """Write the missing files (each atomically) and the split's ``metadata.csv``; returns the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for index in range(self.num_clips):
            path = self.path_of(index)
            if os.path.isfile(path):
                continue
            frames, waveform = self.render(index)
            temporary = f"{path}.{uuid.uuid4().hex}.tmp.mp4"
            write_mp4(temporary, frames, self.fps, waveform, self.sampling_rate)
            os.replace(temporary, path)
        metadata = self.folder / "metadata.csv"
        rows = [(os.path.basename(self.path_of(i)), ";".join(DEMO_VIDEO_CLASSES[k] for k in self.labels_of(i)))
                for i in range(self.num_clips)]
        if not metadata.is_file() or _csv_rows(metadata) != rows:
            temporary = metadata.with_name(f"metadata.{uuid.uuid4().hex}.tmp")
            with open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["file_name", "labels" if self.multi_label else "label"])
                writer.writerows(rows)
            os.replace(temporary, metadata)
        return str(self.folder)

    def __getitem__(self, index: int) -> dict:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for a demo split of {self.num_clips} clips")
        index = index % self.num_clips
        labels = self.labels_of(index)
        item = {"video": self.path_of(index), "id": f"demo-video-{self.split}-{index}"}
        if self.multi_label:
            item["labels"] = labels
        else:
            item["label"] = labels[0]
        return item

    def fingerprint(self) -> str:
        """A hash of the split's files (to check that two machines made the same data)."""
        digest = hashlib.sha256()
        for index in range(self.num_clips):
            with open(self.path_of(index), "rb") as handle:
                digest.update(handle.read())
        return digest.hexdigest()


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as handle:
        return [tuple(row) for row in list(csv.reader(handle))[1:]]


__all__ = [
    "DEMO_VIDEO_CLASSES",
    "DEMO_VIDEO_SIZES",
    "DEMO_VIDEO_SOUNDS",
    "DemoVideoDataset",
    "default_cache_dir",
    "render_clip",
    "write_mp4",
]
