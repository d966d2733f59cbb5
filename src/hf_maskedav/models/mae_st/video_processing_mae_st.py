"""MAE-ST video processor: the official evaluation pipeline with the Kinetics statistics of mae_st/SlowFast."""

from __future__ import annotations

from ...video import MaskedAVVideoProcessor

# mae_st util/kinetics.py and SlowFast DATA.MEAN / DATA.STD (0-1 pixel scale).
MAE_ST_MEAN = [0.45, 0.45, 0.45]
MAE_ST_STD = [0.225, 0.225, 0.225]


class MAESTVideoProcessor(MaskedAVVideoProcessor):
    r"""Video processor for MAE-ST.

    Defaults follow the official Kinetics evaluation (mae_st ``util/kinetics.py``): 16 frames every 4 frames, short
    side resized to 224, 224x224 centre crop, pixels scaled to [0, 1] and normalised with mean 0.45 and std 0.225 on
    every channel. See :class:`~hf_maskedav.video.MaskedAVVideoProcessor` for every argument.
    """

    image_mean = MAE_ST_MEAN
    image_std = MAE_ST_STD
    num_frames = 16
    frame_sampling_rate = 4


__all__ = ["MAESTVideoProcessor"]
