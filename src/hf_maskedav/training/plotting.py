"""Pictures written at the end of a run (matplotlib, Agg backend): the loss curve (one panel per loss term for the
audio-visual runs) and the masked-reconstruction figures -- a spectrogram for audio; masked frames / reconstruction /
original for VideoMAE, MAE-ST and MAViL's video branch; MaskFeat's HOG target versus prediction.

The reconstruction functions take one input's model output and return numpy arrays; :func:`save_spectrogram_reconstruction`
and :func:`save_frame_grid` draw them. What differs between families (where the predictions sit, how per-patch
normalised targets map back) stays in each family's small function.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..layers import patchify_2d, patchify_3d, unpatchify_2d, unpatchify_3d


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed; safe in subprocesses and on servers
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str) -> str:
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_loss_curve(
    history, path: str, title: str = "training loss", eval_history=None, ylabel: str = "loss", smooth: int = 0
) -> str:
    """Plot ``[[step, value], ...]`` (and an optional evaluation series) to a PNG.

    Args:
        history: training points ``(step, loss)``.
        path: output PNG.
        eval_history: optional ``(step, value)`` points drawn as markers on a second series.
        smooth: window of a running mean drawn over the raw curve (0: none; default picks ~1/20 of the run).
    """
    plt = _pyplot()
    steps = np.array([p[0] for p in history], dtype=float)
    values = np.array([p[1] for p in history], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, values, lw=0.8, alpha=0.45 if len(values) > 20 else 1.0, label="per step")
    window = smooth or max(1, len(values) // 20)
    if window > 1 and len(values) > window:
        kernel = np.ones(window) / window
        ax.plot(steps[window - 1 :], np.convolve(values, kernel, mode="valid"), lw=1.8, label=f"mean of {window} steps")
    if eval_history:
        ax.plot([p[0] for p in eval_history], [p[1] for p in eval_history], "o-", label="evaluation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def spectrogram_reconstruction_images(
    spectrogram: torch.Tensor,
    predicted_patches: torch.Tensor,
    mask: torch.Tensor,
    patch_size: int,
    norm_pix_loss: bool,
    eps: float = 1e-6,
) -> dict[str, np.ndarray]:
    """The three images of a masked-autoencoder figure for one spectrogram.

    Args:
        spectrogram: ``[T, F]`` model input.
        predicted_patches: ``[L, p*p]`` decoder output for every token (time-major tokens, as ``patchify_2d``).
        mask: ``[L]`` 1 = masked.
        norm_pix_loss: the predictions are per-patch normalised; they are mapped back with each original patch's
            mean and standard deviation (as the MAE visualisation notebook does) so they can be shown on the
            spectrogram's scale.

    Returns:
        ``{"masked", "reconstruction", "original"}`` ``[T', F']`` arrays (the part of the input covered by whole
        patches); masked patches are NaN in ``"masked"``, and ``"reconstruction"`` shows the visible patches from
        the input and the predicted ones elsewhere.
    """
    p = patch_size
    frames, bins = (spectrogram.shape[0] // p) * p, (spectrogram.shape[1] // p) * p
    original = spectrogram[:frames, :bins].detach().float().cpu()
    grid = (frames // p, bins // p)
    patches = patchify_2d(original[None, None], p)[0]  # [L, p*p]
    predicted = predicted_patches.detach().float().cpu()
    if norm_pix_loss:
        mean = patches.mean(dim=-1, keepdim=True)
        std = (patches.var(dim=-1, keepdim=True) + eps) ** 0.5
        predicted = predicted * std + mean
    visible = (mask.detach().float().cpu() < 0.5)[:, None]  # [L, 1]
    masked = torch.where(visible, patches, torch.full_like(patches, float("nan")))
    pasted = torch.where(visible, patches, predicted)
    as_image = lambda x: unpatchify_2d(x[None], p, grid, 1)[0, 0].numpy()  # noqa: E731
    return {"masked": as_image(masked), "reconstruction": as_image(pasted), "original": as_image(patches)}


def save_spectrogram_reconstruction(images: dict[str, np.ndarray], path: str, title: str = "") -> str:
    """Save masked input / reconstruction / original side by side (time on the x axis, mel bins upwards)."""
    plt = _pyplot()
    names = ("masked", "reconstruction", "original")
    finite = np.concatenate([images[n][np.isfinite(images[n])].ravel() for n in names])
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), dpi=110, sharex=True)
    for ax, name in zip(axes, names):
        image = np.ma.masked_invalid(images[name].T)  # [F, T]: mel bins as rows
        cmap = plt.get_cmap("magma").with_extremes(bad="#9aa5b1")
        ax.imshow(image, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_ylabel("mel bin")
        ax.set_title(
            {
                "masked": "masked input (grey: masked patches)",
                "reconstruction": "reconstruction (visible patches + predictions)",
                "original": "original",
            }[name],
            fontsize=9,
        )
    axes[-1].set_xlabel("frame (10 ms)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)


# ---------------------------------------------------------------------------------------------------------------------
# Video: frames and HOG pictures
# ---------------------------------------------------------------------------------------------------------------------


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
    return _normalised_pixel_views(clip.detach().float().cpu()[chosen], output.logits[0], output.mask[0],
                                   config.frames_per_prediction, config.patch_size, config.num_channels,
                                   config.norm_pix_loss, mean, std)


def mavil_video_reconstruction_frames(model, clip: torch.Tensor, output, mean, std,
                                      norm_pix_loss: bool | None = None) -> dict[str, np.ndarray]:
    """The video branch of an audio-visual MAE with pixel targets (MAViL stage 1, AV-MAE): three views of the clip.
    ``norm_pix_loss`` defaults to the config's ``video_norm_pix_loss`` (MAViL; AV-MAE passes its ``norm_pix_loss``)."""
    config = model.config
    if norm_pix_loss is None:
        norm_pix_loss = config.video_norm_pix_loss
    return _normalised_pixel_views(clip.detach().float().cpu(), output.video_logits[0], output.video_mask[0],
                                   config.tubelet_size, config.video_patch_size, config.num_channels,
                                   norm_pix_loss, mean, std)


def _normalised_pixel_views(normalised, logits, mask, t: int, p: int, channels: int, norm_pix_loss: bool, mean,
                            std) -> dict[str, np.ndarray]:
    """The three views when the targets are the processor-normalised pixels ``[T, C, H, W]`` and ``logits`` ``[L, D]``
    predict every token (MAE-ST, MAViL): predictions mapped back per patch (``norm_pix_loss``), then to [0, 1]."""
    grid = (normalised.shape[0] // t, normalised.shape[2] // p, normalised.shape[3] // p)
    target = patchify_3d(normalised.transpose(0, 1)[None], t, p)[0]  # [L, t*p*p*C] normalised pixels
    logits = logits.detach().float().cpu()
    if norm_pix_loss:
        logits = _denormalize_predictions(logits, target, None, 1e-6, eps_on_std=False)
    mask = mask.detach().bool().cpu()
    to_pixels = lambda x: patchify_3d(_as_pixels(  # noqa: E731
        unpatchify_3d(x[None], t, p, grid, channels)[0].transpose(0, 1), mean, std), t, p)[0]
    return _three_views(to_pixels(target), to_pixels(torch.where(mask[:, None], logits, target)), mask, t, p, grid,
                        channels)


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
    return _save(plt, fig, path)


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
    return _save(plt, fig, path)


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
    "save_loss_curve",
    "save_loss_terms",
    "save_spectrogram_reconstruction",
    "spectrogram_reconstruction_images",
    "videomae_reconstruction_frames",
]
