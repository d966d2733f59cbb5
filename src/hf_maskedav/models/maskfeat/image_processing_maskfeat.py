"""MaskFeat image processor: SlowFast's ImageNet evaluation transform (resize 256 bicubic, centre crop 224)."""

from __future__ import annotations

import numpy as np
import torch
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling


def _checked_image(image, index: int):
    """One image as transformers takes it: 2-D grey-scale arrays get a channel axis; bool/NaN/empty are refused."""
    if isinstance(image, (np.ndarray, torch.Tensor)):
        tensor = torch.as_tensor(image)
        if tensor.dtype == torch.bool or tensor.is_complex():
            raise TypeError(f"image {index} has dtype {tensor.dtype}; pass uint8 (0-255) or float pixels")
        if tensor.dim() == 2:
            image = image[..., None]  # (H, W) grey-scale -> (H, W, 1), expanded to RGB by do_convert_rgb
        elif tensor.dim() not in (3, 4):  # 4-D: a batch of images, as transformers accepts
            raise ValueError(
                f"image {index} has shape {tuple(tensor.shape)}; an image is (height, width), (height, width, "
                "channels) or (channels, height, width), a batch a list of images or a 4-D array"
            )
        if 0 in tuple(tensor.shape):
            raise ValueError(f"image {index} is empty (shape {tuple(tensor.shape)})")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"image {index} contains NaN or Inf pixel values; the image is corrupt")
    return image


class MaskFeatImageProcessor(TorchvisionBackend):
    r"""Image processor for the MaskFeat ViT image models (SlowFast ``configs/masked_ssl/in1k_VIT_*``).

    Defaults follow SlowFast's ImageNet test transform (``slowfast/datasets/imagenet.py``): short side resized to
    ``int(224 / 0.875) = 256`` with bicubic interpolation, 224x224 centre crop, pixels scaled to [0, 1] and normalised
    with the ImageNet statistics (``DATA.MEAN = [0.485, 0.456, 0.406]``, ``DATA.STD = [0.229, 0.224, 0.225]``). The
    HOG targets of pre-training are computed on these normalised pixels.

    Grey-scale and RGBA images are converted to RGB (``do_convert_rgb=True``).

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
    do_convert_rgb = True
    model_input_names = ["pixel_values"]

    def preprocess(self, images, *args, **kwargs):
        """As transformers' ``preprocess``, after checking the images: grey-scale (2-D, 1 channel, PIL ``L``) and RGBA
        become RGB (``do_convert_rgb``; RGBA is composited over white); an empty batch, bool/complex pixels, NaN/Inf
        and arrays of rank other than 2, 3 (an image) or 4 (a batch) get a ``ValueError``/``TypeError`` naming the image."""
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ValueError("got an empty list of images")
            images = [_checked_image(image, index) for index, image in enumerate(images)]
        else:
            images = _checked_image(images, 0)
        return super().preprocess(images, *args, **kwargs)


__all__ = ["MaskFeatImageProcessor"]
