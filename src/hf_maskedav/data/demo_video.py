"""Built-in demo video and audio-visual datasets: a moving texture of shapes with a matching sound, as real .mp4 files.

Every clip is rendered deterministically from ``(seed, split, index)`` and written once, with PyAV, into a cache
folder (H.264 video + AAC audio in an .mp4 container), so the examples and tests exercise the whole decoding path
(container, codec, seeking, audio track) without any download. Each split folder also gets a ``metadata.csv``
(``file_name,label``), which makes it a valid ``videofolder`` as well.

A clip is a texture: a few dozen small shapes (random kind and size, one colour family) on a jittered grid that covers
the frame (it wraps around the edges), over a plain background. Its class is the *motion that the whole texture
shares*, a clip-level property that can only be read from how the picture changes over time. Because the texture
covers the frame, the content of a masked region is in view somewhere else at another time: predicting it means
working out the motion. Drifts are slow (12-20 px/s, under a third of the grid spacing between two sampled frames)
so that the motion is not aliased. The sound follows the picture: its pitch is set by the texture's colour (hue),
its time structure by the motion, so in the audio-visual variant the classes agree across modalities and each
clip's two tracks correspond:

===============  =========================================================  ========================================
class            picture (the whole texture)                                sound
===============  =========================================================  ========================================
``still``        stays in place                                             a steady tone
``slide``        slides sideways (left or right)                            a harmonic stack
``rise``         drifts upwards                                             a rising glide, once per grid cell passed
``fall``         drifts downwards                                           a falling glide, once per grid cell passed
``flash``        visible only during 3-5 short common flashes               noise bursts at the flashes
``bounce``       bounces up and down, in step                               a click at each impact
``shake``        jumps by a common random offset every frame                a click per jump
``pulse``        every shape grows and shrinks in step (1.2-2.5 Hz)         a tremolo tone at the same rate
===============  =========================================================  ========================================

The multi-label variant splits the grid between two textures of different classes (and mixes their sounds).
"""

from __future__ import annotations

import csv
import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import torch

DEMO_VIDEO_CLASSES = ("still", "slide", "rise", "fall", "flash", "bounce", "shake", "pulse")
# The sound each picture class makes (names of the matching classes of the built-in audio demo, for reference).
DEMO_VIDEO_SOUNDS = {
    "still": "tone",
    "slide": "harmonic",
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
DEMO_VIDEO_VERSION = 8
# Clip geometry per variant (the "objects" variant has the shape of a small real audio-visual set: 2 s at 8 fps).
DEMO_VIDEO_VARIANTS = {
    "motion": dict(num_frames=32, fps=12.0, height=48, width=64),
    "objects": dict(num_frames=16, fps=8.0, height=64, width=64),
}


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
        return np.abs(np.sqrt(dx**2 + dy**2) - radius * 0.75) - np.maximum(radius * 0.3, 1.0)
    raise ValueError(f"unknown shape {kind!r}")


_SHAPES = ("circle", "square", "diamond", "ring")


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _background(rng: np.random.Generator, height: int, width: int, dark: bool) -> np.ndarray:
    """A static background: one colour with a faint gradient."""
    level = rng.uniform(0.05, 0.35) if dark else rng.uniform(0.6, 0.9)
    c0 = np.clip(level + rng.uniform(-0.12, 0.12, 3), 0, 1)
    c1 = np.clip(c0 + rng.uniform(-0.05, 0.05, 3), 0, 1)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    return c0[None, None] * (1 - ramp[..., None]) + c1[None, None] * ramp[..., None]


class _Texture:
    """Shapes on (part of) a jittered grid sharing one motion: per-frame offset, scale and opacity; the sound's events.

    Positions wrap around the frame, so the texture always covers it.
    """

    def __init__(self, label: int, rng: np.random.Generator, num_frames: int, fps: float, height: int, width: int,
                 spacing: float, points: np.ndarray, hue: float):
        self.name = name = DEMO_VIDEO_CLASSES[label]
        self.spacing, self.hue = spacing, hue
        t = np.arange(num_frames) / fps
        duration = num_frames / fps
        self.t = t
        n = len(points)
        self.kinds = [_SHAPES[k] for k in rng.integers(len(_SHAPES), size=n)]
        self.x0, self.y0 = points[:, 0], points[:, 1]
        self.radius = rng.uniform(0.22, 0.38, n) * spacing
        self.dx, self.dy = np.zeros(num_frames), np.zeros(num_frames)
        self.scale, self.alpha = np.ones(num_frames), np.ones(num_frames)
        self.events: list[float] = []  # times of the sound's clicks / bursts
        self.bursts: list[tuple[float, float]] = []
        self.speed = 0.0
        if name == "slide":
            self.speed = rng.uniform(12.0, 20.0)  # pixels per second: under a third of the grid spacing per sampled frame
            self.dx = rng.choice([-1.0, 1.0]) * self.speed * t
        elif name in ("rise", "fall"):
            self.speed = rng.uniform(12.0, 20.0)
            self.dy = (-1.0 if name == "rise" else 1.0) * self.speed * t
        elif name == "flash":
            count_bursts = int(rng.integers(3, 6))
            centres = (np.arange(count_bursts) + rng.uniform(0.25, 0.75, count_bursts)) * duration / count_bursts
            length = rng.uniform(1.5, 3.0) / fps
            self.bursts = [(c - length / 2, c + length / 2) for c in centres]
            self.events = [start for start, _ in self.bursts]
            alpha = np.zeros(num_frames)
            for start, stop in self.bursts:
                alpha = np.maximum(alpha, np.clip(np.minimum(t - start, stop - t) * fps + 0.5, 0, 1))
            self.alpha = alpha
        elif name == "bounce":
            period, phase = rng.uniform(0.8, 1.4), rng.uniform(0, 1.0)
            self.dy = -rng.uniform(0.3, 0.5) * spacing * np.abs(np.sin(np.pi * (t - phase) / period))
            first = phase - np.floor(phase / period) * period
            self.events = list(np.arange(first, duration, period))
        elif name == "shake":
            amplitude = rng.uniform(3.0, 6.0)
            self.dx, self.dy = rng.uniform(-amplitude, amplitude, (2, num_frames))
            self.events = list(t)
        elif name == "pulse":
            self.rate = rng.uniform(1.2, 2.5)
            self.depth = rng.uniform(0.35, 0.6)
            self.phase = rng.uniform(0, 2 * np.pi)
            self.scale = 1 + self.depth * np.sin(2 * np.pi * self.rate * t + self.phase)
        elif name != "still":
            raise ValueError(f"unknown demo video class {name!r}")

    def pitch(self) -> float:
        """Hue -> base frequency over three octaves: red (hue 0) 250 Hz, green ~700 Hz, blue-violet (0.75) 2 kHz."""
        return 250.0 * 2.0 ** (3.0 * np.clip(self.hue, 0.0, 0.75) / 0.75)


def _grid_points(rng: np.random.Generator, height: int, width: int, spacing: float) -> np.ndarray:
    gx, gy = np.meshgrid(np.arange(0, width, spacing), np.arange(0, height, spacing))
    jitter = rng.uniform(-0.3, 0.3, (2, gx.size)) * spacing
    return np.stack([(gx.ravel() + jitter[0]) % width, (gy.ravel() + jitter[1]) % height], axis=1)


def _render_frames(textures, colours, background, num_frames, as_uint8: bool = True) -> np.ndarray:
    """Draw the shapes one after the other, each in a small window around it in every frame at once (the window's
    pixel indices wrap around the frame). ``background`` is one frame ``[H, W, 3]`` or all of them ``[T, H, W, 3]``
    (floats in [0, 1]); ``as_uint8=False`` returns floats."""
    height, width = background.shape[-3:-1]
    frames = np.repeat(background[None], num_frames, axis=0) if background.ndim == 3 else background.copy()
    time_index = np.arange(num_frames)[:, None, None]
    for texture, texture_colours in zip(textures, colours):
        for j, kind in enumerate(texture.kinds):
            radius = texture.radius[j] * texture.scale  # [T]
            cx = (texture.x0[j] + texture.dx) % width
            cy = (texture.y0[j] + texture.dy) % height
            reach = np.arange(-int(np.ceil(radius.max() + 1.5)), int(np.ceil(radius.max() + 1.5)) + 1)
            px = np.floor(cx)[:, None] + reach[None]  # [T, K]
            py = np.floor(cy)[:, None] + reach[None]
            distance = _shape_distance(kind, (px - cx[:, None])[:, None, :], (py - cy[:, None])[:, :, None],
                                       radius[:, None, None])
            weight = (texture.alpha[:, None, None] * np.clip(0.5 - distance, 0, 1))[..., None]  # [T, K, K, 1]
            rows = (py.astype(int) % height)[:, :, None]
            cols = (px.astype(int) % width)[:, None, :]
            window = frames[time_index, rows, cols]
            frames[time_index, rows, cols] = window * (1 - weight) + texture_colours[j] * weight
    if not as_uint8:
        return frames
    return np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)


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


def _sound(texture: _Texture, rng: np.random.Generator, num_samples: int, sampling_rate: int) -> np.ndarray:
    """The texture's sound: base pitch from its colour (hue), time structure from its motion."""
    t = np.arange(num_samples) / sampling_rate
    f0 = texture.pitch()
    name = texture.name
    if name in ("rise", "fall"):
        # a one-octave glide that restarts each time the texture has moved by one grid cell
        cycle = (texture.speed * t / texture.spacing) % 1.0
        freq = f0 * 2.0 ** (cycle if name == "rise" else 1.0 - cycle)
    else:
        freq = np.full(num_samples, f0)
    phase = 2 * np.pi * np.cumsum(freq) / sampling_rate + rng.uniform(0, 2 * np.pi)
    out = np.zeros(num_samples)
    if name in ("still", "rise", "fall"):
        out = np.sin(phase)
    elif name == "slide":
        tilt = rng.uniform(0.5, 1.2)
        base = phase / 2  # an octave below the base pitch
        out = sum(np.sin(k * base + rng.uniform(0, 2 * np.pi)) / k**tilt for k in range(1, 7))
    elif name == "pulse":
        envelope = 1 - texture.depth * (0.5 + 0.5 * np.sin(2 * np.pi * texture.rate * t + texture.phase))
        out = envelope * np.sin(phase)
    elif name == "flash":
        centre = f0 * 2
        for start, stop in texture.bursts:
            a, b = max(int(start * sampling_rate), 0), min(int(stop * sampling_rate), num_samples)
            if b - a < 8:
                continue
            spectrum = np.fft.rfft(rng.standard_normal(b - a))
            freqs = np.fft.rfftfreq(b - a, 1.0 / sampling_rate)
            spectrum[(freqs < centre * 0.6) | (freqs > centre * 1.6)] = 0
            burst = np.fft.irfft(spectrum, n=b - a)
            out[a:b] += burst / (np.abs(burst).max() + 1e-9) * _fade(b - a, int(0.004 * sampling_rate))
    elif name in ("bounce", "shake"):
        for event in texture.events:
            start = int(event * sampling_rate)
            if start >= num_samples:
                continue
            click = _click(rng, sampling_rate, f0 * 2) * rng.uniform(0.6, 1.0)
            stop = min(num_samples, start + len(click))
            out[start:stop] += click[: stop - start]
    return out


def _noise(rng: np.random.Generator, length: int, sampling_rate: int) -> np.ndarray:
    """Coloured background noise (white to brown-ish). Shaped at a power-of-two length (fast FFT), then cut."""
    size = 1 << int(np.ceil(np.log2(max(length, 2))))
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / sampling_rate)
    spectrum = spectrum / np.maximum(freqs, 20.0) ** rng.uniform(0.0, 1.0)
    noise = np.fft.irfft(spectrum, n=size)[:length]
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
    """One clip: a texture per entry of ``labels`` (class indices), each moving as its class says.

    Returns:
        ``(frames [num_frames, height, width, 3] uint8, waveform [samples] float32 in [-1, 1])``; the audio lasts as
        long as the video (``num_frames / fps`` seconds).
    """
    dark = bool(rng.random() < 0.5)
    background = _background(rng, height, width, dark)
    spacing = rng.uniform(9.0, 14.0)
    points = _grid_points(rng, height, width, spacing)
    owner = rng.integers(len(labels), size=len(points)) if len(labels) > 1 else np.zeros(len(points), dtype=int)
    textures, colours = [], []
    for k, label in enumerate(labels):
        mine = points[owner == k]
        hue = rng.uniform(0.0, 0.75)  # the texture's colour family, which sets the pitch of its sound
        textures.append(_Texture(int(label), rng, num_frames, fps, height, width, spacing, mine, hue))
        colours.append([_hsv_to_rgb(hue + rng.uniform(-0.03, 0.03), rng.uniform(0.6, 1.0),
                                    rng.uniform(0.75, 1.0) if dark else rng.uniform(0.2, 0.45)) for _ in range(len(mine))])
    frames = _render_frames(textures, colours, background, num_frames)

    num_samples = int(round(num_frames / fps * sampling_rate))
    mix = np.zeros(num_samples)
    for texture in textures:
        sound = _sound(texture, rng, num_samples, sampling_rate)
        mix += sound / (np.sqrt(np.mean(sound**2)) + 1e-9) * 10 ** (rng.uniform(-6, 0) / 20)
    signal_rms = np.sqrt(np.mean(mix**2)) + 1e-9
    mix = mix + _noise(rng, num_samples, sampling_rate) * signal_rms / 10 ** (rng.uniform(6, 25) / 20)
    mix = mix / (np.abs(mix).max() + 1e-9) * rng.uniform(0.2, 0.9)
    return frames, mix.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# The "objects" variant: a small object on a cluttered, moving background; the class is what the object is
# ---------------------------------------------------------------------------------------------------------------------

# Each class is a glyph (a 7x7 bitmap, drawn on a plain plate of random grey level) in one of five colours: the colour
# narrows a class down to two, the glyph's shape decides. Rows are written top to bottom, "#" is ink.
_GLYPHS = {
    "plus": ("...#...", "...#...", "...#...", "#######", "...#...", "...#...", "...#..."),
    "cross": ("#.....#", ".#...#.", "..#.#..", "...#...", "..#.#..", ".#...#.", "#.....#"),
    "tee": ("#######", "#######", "...#...", "...#...", "...#...", "...#...", "...#..."),
    "ell": ("##.....", "##.....", "##.....", "##.....", "##.....", "#######", "#######"),
    "ring": ("..###..", ".#...#.", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."),
    "triangle": ("...#...", "..###..", "..###..", ".#####.", ".#####.", "#######", "#######"),
    "arrow": ("...#...", "..###..", ".#.#.#.", "#..#..#", "...#...", "...#...", "...#..."),
    "bars": ("#.#.#.#", "#.#.#.#", "#.#.#.#", "#.#.#.#", "#.#.#.#", "#.#.#.#", "#.#.#.#"),
    "hourglass": ("#######", ".#####.", "..###..", "...#...", "..###..", ".#####.", "#######"),
    "dots": ("##...##", "##...##", ".......", "...#...", ".......", "##...##", "##...##"),
}
DEMO_OBJECT_CLASSES = tuple(_GLYPHS)
# glyph colour of each class (hue); classes k and k + 5 share a colour
_OBJECT_HUES = np.array([0.0, 0.14, 0.33, 0.55, 0.78] * 2)
# The sound of each class: a two- or three-syllable "word", each syllable a vowel (formants F1, F2 in Hz, scaled by the
# speaker) with a pitch contour ("=" level, "/" rising, "\\" falling).
_VOWELS = {"a": (800.0, 1250.0), "e": (480.0, 1900.0), "i": (300.0, 2350.0), "o": (500.0, 880.0), "u": (330.0, 760.0)}
DEMO_OBJECT_WORDS = {
    "plus": "a= i/",
    "cross": "o\\ e=",
    "tee": "u/ a\\",
    "ell": "i= o= u\\",
    "ring": "e/ e\\",
    "triangle": "a\\ u= i=",
    "arrow": "o= i/ a=",
    "bars": "u= e\\",
    "hourglass": "i\\ a/",
    "dots": "e= o/ o\\",
}
DEMO_OBJECT_SIZES = {"train": 600, "validation": 300, "test": 300}
# Bump when the "objects" renderer changes (its cache folder name includes it).
DEMO_OBJECTS_VERSION = 1
_GLYPH_MASKS = {name: np.array([[c == "#" for c in row] for row in rows], dtype=np.float64)
                for name, rows in _GLYPHS.items()}


def _hsv_rows(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for arrays of colours ([N] each) -> [N, 3]."""
    h = np.asarray(h, dtype=np.float64) % 1.0
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table[i, np.arange(len(h))]


def object_path(rng: np.random.Generator, num_frames: int, fps: float, height: int, width: int, margin: float):
    """A random path for the object's centre (``[T]`` x and y, pixels): a straight drift at 8-24 px/s in a random
    direction, reflected at the frame's edges (``margin`` from them), plus a small wobble. Drawn from its own random
    stream, which never sees the label."""
    t = np.arange(num_frames) / fps
    speed, angle = rng.uniform(8.0, 24.0), rng.uniform(0, 2 * np.pi)
    wobble, wobble_rate, wobble_phase = rng.uniform(0.0, 3.0), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi, 2)
    out = []
    for k, (size, step) in enumerate(((width, np.cos(angle)), (height, np.sin(angle)))):
        span = max(size - 2 * margin, 1.0)
        raw = rng.uniform(0, span) + speed * step * t + wobble * np.sin(2 * np.pi * wobble_rate * t + wobble_phase[k])
        folded = np.mod(raw, 2 * span)
        out.append(margin + np.where(folded > span, 2 * span - folded, folded))  # reflect at the edges
    return out[0], out[1]


def _moving_background(rng: np.random.Generator, num_frames: int, height: int, width: int, pan_x, pan_y):
    """A smooth random colour field (a few sinusoidal gratings per channel) seen through a panning camera."""
    count = 6
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    freq = rng.uniform(0.5, 3.0, (count, 1)) / max(height, width) * np.stack(
        [np.cos(a := rng.uniform(0, 2 * np.pi, count)), np.sin(a)], -1)  # cycles per pixel, [K, 2]
    phase = rng.uniform(0, 2 * np.pi, count)
    amplitude = rng.uniform(0.3, 1.0, (count, 3)) * rng.choice([-1.0, 1.0], (count, 3))
    x = xx[None] + pan_x[:, None, None]  # scene coordinates of every pixel, [T, H, W]
    y = yy[None] + pan_y[:, None, None]
    waves = np.cos(2 * np.pi * (x[..., None] * freq[:, 0] + y[..., None] * freq[:, 1]) + phase)  # [T, H, W, K]
    field = waves @ amplitude / np.sqrt(count)  # [T, H, W, 3]
    base = rng.uniform(0.25, 0.75, 3)
    return np.clip(base + 0.18 * field, 0, 1)


def _draw_object(frames: np.ndarray, label: int, rng: np.random.Generator, cx: np.ndarray, cy: np.ndarray, size: float):
    """Draw the class's glyph on its plate, centred at ``(cx[t], cy[t])``, ``size`` pixels wide, in place."""
    num_frames, height, width, _ = frames.shape
    mask = np.pad(_GLYPH_MASKS[DEMO_OBJECT_CLASSES[label]], 1)  # 9x9 with a blank border (the plate's margin)
    glyph_colour = _hsv_rows(np.array([_OBJECT_HUES[label] + rng.uniform(-0.03, 0.03)]),
                             np.array([rng.uniform(0.75, 1.0)]), np.array([rng.uniform(0.8, 1.0)]))[0]
    plate_level = rng.choice([rng.uniform(0.05, 0.25), rng.uniform(0.85, 1.0)])
    plate_colour = np.clip(plate_level + rng.uniform(-0.04, 0.04, 3), 0, 1)
    reach = np.arange(-int(np.ceil(size / 2 + 1.5)), int(np.ceil(size / 2 + 1.5)) + 1)
    px = np.floor(cx)[:, None] + reach[None]  # [T, K]
    py = np.floor(cy)[:, None] + reach[None]
    dx = (px + 0.5 - cx[:, None])[:, None, :]  # pixel centres relative to the object's centre, [T, 1, K]
    dy = (py + 0.5 - cy[:, None])[:, :, None]  # [T, K, 1]
    plate = np.clip(size / 2 + 0.5 - np.maximum(np.abs(dx), np.abs(dy)), 0, 1)  # [T, K, K] coverage
    cells = mask.shape[0]
    u = np.clip((dx / size + 0.5) * cells - 0.5, 0, cells - 1.001)  # bilinear lookup of the glyph
    v = np.clip((dy / size + 0.5) * cells - 0.5, 0, cells - 1.001)
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    fu, fv = u - u0, v - v0
    ink = (mask[v0, u0] * (1 - fu) * (1 - fv) + mask[v0, u0 + 1] * fu * (1 - fv) + mask[v0 + 1, u0] * (1 - fu) * fv
           + mask[v0 + 1, u0 + 1] * fu * fv)
    ink = np.clip((ink - 0.5) * 2.5 + 0.5, 0, 1)  # sharpen the upscaled bitmap
    colour = plate_colour * (1 - ink[..., None]) + glyph_colour * ink[..., None]  # [T, K, K, 3]
    inside = ((py >= 0) & (py < height))[:, :, None] & ((px >= 0) & (px < width))[:, None, :]
    weight = (plate * inside)[..., None]
    rows = np.clip(py, 0, height - 1).astype(int)[:, :, None]
    cols = np.clip(px, 0, width - 1).astype(int)[:, None, :]
    time_index = np.arange(num_frames)[:, None, None]
    window = frames[time_index, rows, cols]
    frames[time_index, rows, cols] = window * (1 - weight) + colour * weight


def _word(label: int, rng: np.random.Generator, num_samples: int, sampling_rate: int, speaker: dict) -> np.ndarray:
    """The class's spoken-like word, once, starting at a random time: voiced syllables (harmonics of a pitch contour
    shaped by two formants), each opened by a short noise burst (a consonant)."""
    syllables = DEMO_OBJECT_WORDS[DEMO_OBJECT_CLASSES[label]].split()
    rate = speaker["tempo"] * rng.uniform(0.92, 1.08)
    lengths = [int(rng.uniform(0.16, 0.22) / rate * sampling_rate) for _ in syllables]
    gap = int(0.04 / rate * sampling_rate)
    total = sum(lengths) + gap * (len(syllables) - 1)
    start = int(rng.uniform(0, max(num_samples - total, 1)))
    out = np.zeros(num_samples)
    cursor = start
    for syllable, length in zip(syllables, lengths):
        vowel, contour = syllable[0], syllable[1]
        f1, f2 = (f * speaker["tract"] for f in _VOWELS[vowel])
        s = np.linspace(0, 1, length)
        glide = {"=": 0.0, "/": 1.0, "\\": -1.0}[contour] * 0.5 * (s - 0.5)  # +-3 semitones... up to half an octave
        f0 = speaker["f0"] * 2.0 ** (glide + 0.02 * rng.standard_normal())
        phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
        harmonics = np.arange(1, int(3800 / speaker["f0"]) + 1)
        freqs = harmonics[:, None] * f0[None]  # [K, length]
        gain = (np.exp(-0.5 * ((freqs - f1) / (0.18 * f1)) ** 2) + 0.7 * np.exp(-0.5 * ((freqs - f2) / (0.12 * f2)) ** 2)
                + 0.05 / harmonics[:, None])
        voiced = (gain * np.sin(harmonics[:, None] * phase[None])).sum(0)
        voiced = voiced / (np.abs(voiced).max() + 1e-9) * _fade(length, int(0.02 * sampling_rate))
        burst_length = min(int(0.015 * sampling_rate), length)
        burst = rng.standard_normal(burst_length) * np.exp(-np.arange(burst_length) / (0.004 * sampling_rate)) * 0.6
        stop = min(cursor + length, num_samples)
        out[cursor:stop] += voiced[: stop - cursor]
        burst_stop = min(cursor + burst_length, num_samples)
        out[cursor:burst_stop] += burst[: burst_stop - cursor]
        cursor += length + gap
        if cursor >= num_samples:
            break
    return out


def render_objects_clip(
    labels: list[int] | tuple[int, ...],
    rng: np.random.Generator,
    num_frames: int = 16,
    fps: float = 8.0,
    height: int = 64,
    width: int = 64,
    sampling_rate: int = 16000,
    motion_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of the "objects" variant: per entry of ``labels``, an object of that class (a coloured glyph on a
    plate, about a fifth of the frame side) moving along a random path over a cluttered background that itself moves
    (a panning colour field, shapes that pan with it and a few that drift on their own); the sound is each class's
    word, said twice by a random speaker over noise, with no timing link to the picture.

    ``motion_rng`` draws every motion of the clip (camera pan, drifting shapes, object paths); it never sees the
    labels, so the motion carries no information about the class. Returns ``(frames [T, H, W, 3] uint8, waveform)``.
    """
    motion_rng = rng if motion_rng is None else motion_rng
    t = np.arange(num_frames) / fps
    pan_speed, pan_angle = motion_rng.uniform(4.0, 14.0), motion_rng.uniform(0, 2 * np.pi)
    pan_x, pan_y = pan_speed * np.cos(pan_angle) * t, pan_speed * np.sin(pan_angle) * t
    side = min(height, width)
    sizes = [rng.uniform(0.18, 0.24) * side for _ in labels]
    paths = [object_path(motion_rng, num_frames, fps, height, width, size / 2 + 1) for size in sizes]
    drift_speed, drift_angle = motion_rng.uniform(6.0, 18.0), motion_rng.uniform(0, 2 * np.pi)

    frames = _moving_background(rng, num_frames, height, width, pan_x, pan_y)
    # clutter: shapes of every colour that pan with the camera, and a few that drift on their own
    for count, dx, dy in ((int(rng.integers(14, 22)), -pan_x, -pan_y),
                          (int(rng.integers(3, 6)), drift_speed * np.cos(drift_angle) * t,
                           drift_speed * np.sin(drift_angle) * t)):
        layer = type("Layer", (), {})()
        layer.kinds = [_SHAPES[k] for k in rng.integers(len(_SHAPES), size=count)]
        layer.x0, layer.y0 = rng.uniform(0, width, count), rng.uniform(0, height, count)
        layer.radius = rng.uniform(0.04, 0.1, count) * side
        layer.dx, layer.dy = dx, dy
        layer.scale, layer.alpha = np.ones(num_frames), np.ones(num_frames)
        colours = _hsv_rows(rng.uniform(0, 1, count), rng.uniform(0.3, 1.0, count), rng.uniform(0.2, 1.0, count))
        frames = _render_frames([layer], [colours], frames, num_frames, as_uint8=False)
    for label, size, (cx, cy) in zip(labels, sizes, paths):
        _draw_object(frames, int(label), rng, cx, cy, size)
    frames = np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)

    num_samples = int(round(num_frames / fps * sampling_rate))
    mix = np.zeros(num_samples)
    half = num_samples // 2
    for label in labels:
        speaker = dict(f0=rng.uniform(95.0, 250.0), tract=rng.uniform(0.85, 1.2), tempo=rng.uniform(0.85, 1.2))
        sound = np.concatenate([_word(int(label), rng, half, sampling_rate, speaker),
                                _word(int(label), rng, num_samples - half, sampling_rate, speaker)])
        mix += sound / (np.sqrt(np.mean(sound**2)) + 1e-9) * 10 ** (rng.uniform(-4, 0) / 20)
    signal_rms = np.sqrt(np.mean(mix**2)) + 1e-9
    mix = mix + _noise(rng, num_samples, sampling_rate) * signal_rms / 10 ** (rng.uniform(3, 20) / 20)
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
            audio.options = {"aac_coder": "fast"}
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
        variant: ``"motion"`` (the default: the texture whose shared motion is the class, 8 classes, module
            docstring) or ``"objects"`` (a small object on a cluttered, moving background, whose identity is the class;
            10 classes; 600 / 300 / 300 clips of 16 frames of 64x64 at 8 fps, 2 s, like a small real audio-visual
            set; :func:`render_objects_clip`).
        num_frames, fps, height, width, sampling_rate: clip geometry (default: the variant's; ``"motion"``: 32 frames
            of 64x48 at 12 fps, 16 kHz audio: 2.67 s).
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
        num_frames: int | None = None,
        fps: float | None = None,
        height: int | None = None,
        width: int | None = None,
        sampling_rate: int = 16000,
        cache_dir: str | None = None,
        prepare: bool = True,
        variant: str = "motion",
    ):
        if split not in _SPLIT_CODES:
            raise ValueError(f"unknown demo split {split!r}; choose one of {sorted(_SPLIT_CODES)}")
        if variant not in DEMO_VIDEO_VARIANTS:
            raise ValueError(f"unknown demo variant {variant!r}; choose one of {sorted(DEMO_VIDEO_VARIANTS)}")
        geometry = DEMO_VIDEO_VARIANTS[variant]
        num_frames = geometry["num_frames"] if num_frames is None else num_frames
        fps = geometry["fps"] if fps is None else fps
        height = geometry["height"] if height is None else height
        width = geometry["width"] if width is None else width
        if height % 2 or width % 2:
            raise ValueError(f"H.264 in yuv420p needs an even frame size, got {height}x{width}")
        self.split, self.variant = split, variant
        self.label_names = DEMO_OBJECT_CLASSES if variant == "objects" else DEMO_VIDEO_CLASSES
        sizes = DEMO_OBJECT_SIZES if variant == "objects" else DEMO_VIDEO_SIZES
        self.num_clips = sizes[split] if num_clips is None else int(num_clips)
        if self.num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {self.num_clips}")
        self.seed, self.multi_label = seed, multi_label
        self.num_frames, self.fps, self.height, self.width = num_frames, fps, height, width
        self.sampling_rate = sampling_rate
        version = f"v{DEMO_VIDEO_VERSION}" if variant == "motion" else f"{variant}-v{DEMO_OBJECTS_VERSION}"
        tag = f"{version}-seed{seed}-{num_frames}f-{width}x{height}-{fps:g}fps-{sampling_rate}hz"
        tag += "-multi" if multi_label else ""
        self.folder = Path(cache_dir or default_cache_dir()) / "demo_video" / tag / split
        if prepare:
            self.prepare()

    def __len__(self) -> int:
        return self.num_clips

    def labels_of(self, index: int) -> list[int]:
        """Class indices of clip ``index`` (cheap: renders nothing)."""
        if not self.multi_label:
            return [index % len(self.label_names)]
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 1])
        count = int(rng.integers(1, 3))
        return sorted(rng.choice(len(self.label_names), size=count, replace=False).tolist())

    def path_of(self, index: int) -> str:
        return str(self.folder / f"{index:05d}.mp4")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames and waveform of clip ``index`` (what its file holds before compression)."""
        rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 0])
        if self.variant == "objects":
            # the motions come from their own stream (never the label's): the class cannot be read from them
            motion_rng = np.random.default_rng([self.seed, _SPLIT_CODES[self.split], index, 2])
            return render_objects_clip(self.labels_of(index), rng, self.num_frames, self.fps, self.height, self.width,
                                       self.sampling_rate, motion_rng=motion_rng)
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
        rows = [(os.path.basename(self.path_of(i)), ";".join(self.label_names[k] for k in self.labels_of(i)))
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
    "DEMO_OBJECT_CLASSES",
    "DEMO_OBJECT_SIZES",
    "DEMO_OBJECT_WORDS",
    "DEMO_VIDEO_CLASSES",
    "DEMO_VIDEO_SIZES",
    "DEMO_VIDEO_SOUNDS",
    "DEMO_VIDEO_VARIANTS",
    "DemoVideoDataset",
    "default_cache_dir",
    "object_path",
    "render_clip",
    "render_objects_clip",
    "write_mp4",
]
