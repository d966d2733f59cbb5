"""MaskFeat image processor: SlowFast's ImageNet evaluation transform (resize 256 bicubic, centre crop 224)."""

from __future__ import annotations

from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling


class MaskFeatImageProcessor(TorchvisionBackend):
    r"""Image processor for the MaskFeat ViT image models (SlowFast ``configs/masked_ssl/in1k_VIT_*``).

    Defaults follow SlowFast's ImageNet test transform (``slowfast/datasets/imagenet.py``): short side resized to
    ``int(224 / 0.875) = 256`` with bicubic interpolation, 224x224 centre crop, pixels scaled to [0, 1] and normalised
    with the ImageNet statistics (``DATA.MEAN = [0.485, 0.456, 0.406]``, ``DATA.STD = [0.229, 0.224, 0.225]``). The
    HOG targets of pre-training are computed on these normalised pixels.

    Arguments: as transformers' image processors (``size``, ``crop_size``, ``resample``, ``image_mean``,
    ``image_std``, ``do_resize``, ``do_center_crop``...).

    Returns:
        ``BatchFeature`` with ``pixel_values`` of shape ``(batch, 3, crop_height, crop_width)``.
    """

    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 256}
    default_to_square = False
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    model_input_names = ["pixel_values"]


__all__ = ["MaskFeatImageProcessor"]
