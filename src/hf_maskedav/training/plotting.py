"""Pictures written at the end of a run: the loss curve and a masked-reconstruction figure (matplotlib, Agg backend)."""

from __future__ import annotations

import os

import numpy as np
import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed; safe in subprocesses and on servers
    import matplotlib.pyplot as plt

    return plt


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
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


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
    from ..layers import patchify_2d, unpatchify_2d

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
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["save_loss_curve", "save_spectrogram_reconstruction", "spectrogram_reconstruction_images"]
