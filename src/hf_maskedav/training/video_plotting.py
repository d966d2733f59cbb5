"""Pictures of video pretraining: masked frames / reconstruction / original (VideoMAE, MAE-ST, MAViL's video branch)
and MaskFeat's HOG target versus prediction.

Every function takes one clip's model input and outputs and returns numpy arrays; :func:`save_frame_grid` draws
them (matplotlib, Agg backend).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..layers import patchify_3d, unpatchify_3d
from .plotting import _pyplot


def _as_pixels(clip: torch.Tensor, mean, std) -> torch.Tensor:
    """Normalised ``[T, C, H, W]`` -> pixels in [0, 1] as ``[1, C, T, H, W]``."""
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (clip.detach().float().cpu() * std + mean).clamp(0, 1).transpose(0, 1)[None]


def _denormalize_predictions(predicted: torch.Tensor, original: torch.Tensor, per_channel: int | None, eps: float,
                             eps_on_std: bool) -> torch.Tensor:
    """Map per-patch normalised predictions back with each original patch's statistics (MAE notebook style)."""
    if per_channel:
        shape = (*original.shape[:-1], original.shape[-1] // per_channel, per_channel)
        x, p = original.reshape(shape), predicted.reshape(shape)
        mean, var = x.mean(dim=-2, keepdim=True), x.var(dim=-2, keepdim=True)
        std = var.sqrt() + eps if eps_on_std else (var + eps).sqrt()
        return (p * std + mean).reshape(original.shape)
    mean, var = original.mean(dim=-1, keepdim=True), original.var(dim=-1, keepdim=True)
    std = var.sqrt() + eps if eps_on_std else (var + eps).sqrt()
    return predicted * std + mean


def _frames(video: torch.Tensor) -> np.ndarray:
    """``[1, C, T, H, W]`` -> ``[T, H, W, C]`` numpy."""
    return video[0].permute(1, 2, 3, 0).numpy()


def videomae_reconstruction_frames(model, clip: torch.Tensor, output) -> dict[str, np.ndarray]:
    """VideoMAE: ``{"masked", "reconstruction", "original"}`` frames ``[T, H, W, 3]`` in [0, 1] for one clip.

    Args:
        model: the (unwrapped) ``MaskedAVVideoMAEForPreTraining``.
        clip: ``[T, C, H, W]`` model input.
        output: the model's output for ``clip[None]`` (``logits`` of the masked tokens, ``mask``).
    """
    config = model.config
    video = _as_pixels(clip, config.pixel_mean, config.pixel_std)  # [1, C, T, H, W] in [0, 1]
    t, p = config.tubelet_size, config.patch_size
    grid = (video.shape[2] // t, video.shape[3] // p, video.shape[4] // p)
    patches = patchify_3d(video, t, p)[0]  # [L, t*p*p*C]
    mask = output.mask[0].detach().bool().cpu()
    predicted = patches.clone()
    logits = output.logits[0].detach().float().cpu()  # masked tokens, ascending order
    if config.norm_pix_loss:
        logits = _denormalize_predictions(logits, patches[mask], config.num_channels, 1e-6, eps_on_std=True)
    predicted[mask] = logits
    return _three_views(patches, predicted, mask, t, p, grid, config.num_channels)


def mae_st_reconstruction_frames(model, clip: torch.Tensor, output, mean, std) -> dict[str, np.ndarray]:
    """MAE-ST: the same three views on the frames the decoder reconstructs (``model.target_frame_indices``)."""
    config = model.config
    chosen = model.target_frame_indices(clip.shape[0])
    normalised = clip.detach().float().cpu()[chosen]  # [T_pred, C, H, W]
    u, p = config.frames_per_prediction, config.patch_size
    grid = (normalised.shape[0] // u, normalised.shape[2] // p, normalised.shape[3] // p)
    target = patchify_3d(normalised.transpose(0, 1)[None], u, p)[0]  # normalised pixels
    logits = output.logits[0].detach().float().cpu()
    if config.norm_pix_loss:
        logits = _denormalize_predictions(logits, target, None, 1e-6, eps_on_std=False)
    mask = output.mask[0].detach().bool().cpu()
    to_pixels = lambda x: patchify_3d(_as_pixels(  # noqa: E731
        unpatchify_3d(x[None], u, p, grid, config.num_channels)[0].transpose(0, 1), mean, std), u, p)[0]
    return _three_views(to_pixels(target), to_pixels(torch.where(mask[:, None], logits, target)), mask, u, p, grid,
                        config.num_channels)


def mavil_video_reconstruction_frames(model, clip: torch.Tensor, output, mean, std) -> dict[str, np.ndarray]:
    """MAViL's video branch (stage 1, pixel targets): three views of the clip."""
    config = model.config
    t, p = config.tubelet_size, config.video_patch_size
    normalised = clip.detach().float().cpu().transpose(0, 1)[None]
    grid = (normalised.shape[2] // t, normalised.shape[3] // p, normalised.shape[4] // p)
    target = patchify_3d(normalised, t, p)[0]
    logits = output.video_logits[0].detach().float().cpu()
    if config.video_norm_pix_loss:
        logits = _denormalize_predictions(logits, target, None, 1e-6, eps_on_std=False)
    mask = output.video_mask[0].detach().bool().cpu()
    to_pixels = lambda x: patchify_3d(_as_pixels(  # noqa: E731
        unpatchify_3d(x[None], t, p, grid, config.num_channels)[0].transpose(0, 1), mean, std), t, p)[0]
    return _three_views(to_pixels(target), to_pixels(torch.where(mask[:, None], logits, target)), mask, t, p, grid,
                        config.num_channels)


def _three_views(patches, predicted, mask, t, p, grid, channels) -> dict[str, np.ndarray]:
    grey = torch.full_like(patches, 0.6)
    as_frames = lambda x: _frames(unpatchify_3d(x[None], t, p, grid, channels).clamp(0, 1))  # noqa: E731
    return {
        "masked": as_frames(torch.where(mask[:, None], grey, patches)),
        "reconstruction": as_frames(torch.where(mask[:, None], predicted, patches)),
        "original": as_frames(patches),
    }


def save_frame_grid(rows: dict[str, np.ndarray], path: str, title: str = "", max_frames: int = 8,
                    row_titles: dict[str, str] | None = None) -> str:
    """Draw ``{row name: frames [T, H, W, 3 or 1]}`` as a grid (rows top to bottom, frames left to right)."""
    plt = _pyplot()
    names = list(rows)
    count = min(max_frames, min(len(v) for v in rows.values()))
    picks = np.linspace(0, min(len(v) for v in rows.values()) - 1, count).round().astype(int)
    fig, axes = plt.subplots(len(names), count, figsize=(1.3 * count + 0.6, 1.4 * len(names) + 0.5), dpi=110,
                             squeeze=False)
    for r, name in enumerate(names):
        for c, frame_index in enumerate(picks):
            ax = axes[r, c]
            frame = rows[name][frame_index]
            if frame.ndim == 3 and frame.shape[-1] == 1:
                frame = frame[..., 0]
            ax.imshow(frame, cmap="magma" if frame.ndim == 2 else None, interpolation="nearest",
                      vmin=0, vmax=max(float(np.nanmax(frame)), 1e-6) if frame.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel((row_titles or {}).get(name, name), fontsize=8)
            if r == 0:
                ax.set_title(f"t={frame_index}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_loss_terms(histories: dict[str, list], path: str, title: str = "", smooth: int = 0) -> str:
    """One panel per loss term (``{name: [[step, value], ...]}``), raw values and a running mean."""
    plt = _pyplot()
    names = [n for n, h in histories.items() if h]
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.9 * len(names) + 0.6), dpi=110, sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        steps = np.array([p[0] for p in histories[name]], dtype=float)
        values = np.array([p[1] for p in histories[name]], dtype=float)
        ax.plot(steps, values, lw=0.8, alpha=0.45 if len(values) > 20 else 1.0)
        window = smooth or max(1, len(values) // 20)
        if window > 1 and len(values) > window:
            ax.plot(steps[window - 1 :], np.convolve(values, np.ones(window) / window, mode="valid"), lw=1.8)
        ax.set_ylabel(name.replace("_loss", "").replace("_", " "), fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# MaskFeat: HOG pictures
# ---------------------------------------------------------------------------------------------------------------------


def hog_glyphs(vectors: np.ndarray, grid: tuple[int, int], cells: tuple[int, int], channels: int, bins: int,
               glyph: int = 9, normalize: bool = True) -> np.ndarray:
    """Classic HOG glyph image of per-token HOG vectors.

    Args:
        vectors: ``[h*w, C*bins*kh*kw]`` in ``hog_token_targets`` order ``(channel*bins + bin, cell_row, cell_col)``.
        grid: token grid ``(h, w)``; cells: HOG cells per token ``(kh, kw)``.
        glyph: pixels per cell in the picture.
        normalize: scale the image to a maximum of 1.

    Returns:
        ``[h*kh*glyph, w*kw*glyph]`` image: in every cell a line per orientation bin (along the edge direction,
        perpendicular to the gradient), as bright as the bin (summed over colour channels).
    """
    h, w = grid
    kh, kw = cells
    hist = vectors.reshape(h, w, channels, bins, kh, kw).clip(min=0).sum(axis=2)  # [h, w, bins, kh, kw]
    hist = hist.transpose(0, 3, 1, 4, 2).reshape(h * kh, w * kw, bins)  # cell grid
    centre = (glyph - 1) / 2
    yy, xx = np.mgrid[0:glyph, 0:glyph] - centre
    stamps = []
    for b in range(bins):
        theta = (b + 0.5) * np.pi / bins  # gradient direction (gx, gy) = (sin, cos) (official atan2(gx, gy))
        edge = np.array([np.cos(theta), -np.sin(theta)])  # along the edge, perpendicular to the gradient
        distance = np.abs(xx * edge[1] - yy * edge[0])  # distance to the line through the centre
        along = np.abs(xx * edge[0] + yy * edge[1])
        stamps.append(np.clip(1.0 - distance, 0, 1) * (along <= centre + 0.5))
    stamps = np.stack(stamps)  # [bins, g, g]
    image = np.einsum("yxb,bij->yixj", hist, stamps).reshape(h * kh * glyph, w * kw * glyph)
    return image / (image.max() + 1e-9) if normalize else image


def maskfeat_hog_rows(model, clip: torch.Tensor, output, mean, std, max_steps: int = 4) -> dict[str, np.ndarray]:
    """MaskFeat: rows ``input`` (masked regions greyed), ``HOG target``, ``HOG prediction`` for the first frame of
    each temporal patch (the frames the HOG targets are computed on), as ``[steps, H', W', 1 or 3]`` arrays."""
    config = model.config
    steps, h, w = config.prediction_grid
    kh, kw = config.hog_cells_per_token
    mask = output.mask[0].detach().cpu().numpy().reshape(steps, h, w)
    stride = config.patch_stride[0] if config.is_video else 1
    pixels = _as_pixels(clip, mean, std)[0].permute(1, 2, 3, 0).numpy()[::stride]  # [steps, H, W, C]
    target = output.hog_targets[0].detach().float().cpu().numpy().reshape(steps, h * w, -1)
    predicted = output.logits[0].detach().float().cpu().numpy().reshape(steps, h * w, -1)
    rows = {"input": [], "HOG target": [], "HOG prediction": []}
    for s in range(min(steps, max_steps)):
        frame = pixels[s].copy()
        ph, pw = frame.shape[0] // h, frame.shape[1] // w
        for i in range(h):
            for j in range(w):
                if mask[s, i, j]:
                    frame[i * ph : (i + 1) * ph, j * pw : (j + 1) * pw] = 0.6
        rows["input"].append(frame)
        glyph = max(3, int(round(ph / kh)) * 2 + 1)
        args = ((h, w), (kh, kw), config.num_channels, config.hog_num_bins, glyph)
        scale = hog_glyphs(target[s], *args, normalize=False).max() + 1e-9  # both on the target's scale
        for name, vectors in (("HOG target", target[s]), ("HOG prediction", predicted[s])):
            rows[name].append(np.clip(hog_glyphs(vectors, *args, normalize=False) / scale, 0, 1)[..., None])
    return {k: np.stack(v) for k, v in rows.items()}


__all__ = [
    "hog_glyphs",
    "mae_st_reconstruction_frames",
    "maskfeat_hog_rows",
    "mavil_video_reconstruction_frames",
    "save_frame_grid",
    "save_loss_terms",
    "videomae_reconstruction_frames",
]
