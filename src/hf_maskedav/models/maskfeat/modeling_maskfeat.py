"""MaskFeat: masked feature (HOG) prediction with a ViT or MViTv2 encoder (Wei et al., CVPR 2022).

Official code: facebookresearch/SlowFast (``slowfast/models/masked.py`` ``MaskMViT``, ``video_model_builder.py``
``MViT``, ``operators.py`` ``HOGLayerC``, ``datasets/transform.py`` mask generators).

Unlike MAE, the encoder sees **every** token: the patch embeddings of masked positions are replaced by a learned
``mask_token`` (``x * (1 - m) + mask_token * m``) before the cls token and positions are added. A LayerNorm + Linear
head predicts the HOG histograms of each token of one block (``pretrain_depth``); the loss is the MSE over the
masked tokens only. Shapes: N = batch, (T', h, w) = token grid, L = T'*h*w tokens (T' = 1 for images), D = width,
K = HOG target length (108 officially). Video input is ``[N, T, C, H, W]`` (transformers' layout), images
``[N, C, H, W]``. Masks: 1 (True) = masked.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from ...layers import SeparableSpaceTimePositionEmbedding, block_masking, cube_masking, masked_mse
from ...layers.hog import HOGLayer, gaussian_kernel_2d, hog_token_targets, sobel_kernels
from ...modeling_utils import check_head_matches_labels, check_model_input, classification_loss
from .configuration_maskfeat import MaskFeatConfig
from .modeling_mvit import MViTAttention, MViTEncoder
from .modeling_vit import ViTEncoder


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class MaskFeatModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state: ``[N, 1 + L_out, D_out]`` output of the last block (cls token first, no final norm), on
            that block's token grid (``config.layer_grids()``).
        hidden_states, attentions: per-layer outputs when requested.
    """

    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MaskFeatForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss: MSE between predicted and HOG target vectors, over the masked tokens only.
        logits: ``[N, L, K]`` predicted HOG vectors for **every** token of the prediction grid (``logits[mask]``
            are the official ``preds``, batch-major then token order).
        hog_targets: ``[N, L, K]`` HOG targets of every token (``hog_targets[mask]`` are the official labels).
        mask: ``[N, L]`` bool, True for the masked tokens of the prediction grid (the number varies per sample).
        last_hidden_state: ``[N, 1 + L, D]`` output of the prediction block.
        hidden_states, attentions: per-layer outputs when requested.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hog_targets: torch.FloatTensor | None = None
    mask: torch.BoolTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Input and mask helpers
# ---------------------------------------------------------------------------------------------------------------------
def conv_input(pixel_values: torch.Tensor, config: MaskFeatConfig) -> torch.Tensor:
    """Check ``pixel_values`` and return the layout the patch convolution takes (``[N, C, (T,) H, W]``)."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}")
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values must be a floating-point tensor (normalised pixels), got {pixel_values.dtype}")
    if pixel_values.dim() in (4, 5):
        check_model_input(pixel_values, "pixel_values")
    size, channels = config.image_size, config.num_channels
    if config.is_video:
        if pixel_values.dim() != 5:
            raise ValueError(
                "this MaskFeat model takes video: pixel_values of shape (batch, frames, channels, height, width); "
                f"got {tuple(pixel_values.shape)}. MaskFeatVideoProcessor makes them from frames."
            )
        _, frames, chans, height, width = pixel_values.shape
        if chans != channels:
            hint = " (is it (batch, channels, frames, ...)? use .permute(0, 2, 1, 3, 4))" if frames == channels else ""
            raise ValueError(f"pixel_values has {chans} channels on axis 2, the model expects {channels}{hint}")
        if (frames, height, width) != (config.num_frames, size, size):
            raise ValueError(
                f"this model takes clips of {config.num_frames} frames of {size}x{size} pixels (its position tables "
                f"and pooling are built for that size, as the official model); got {frames} frames of {height}x{width}. "
                "Resize/sample with MaskFeatVideoProcessor or build a config with other num_frames/image_size."
            )
        return pixel_values.permute(0, 2, 1, 3, 4)  # [N, C, T, H, W]
    if pixel_values.dim() != 4:
        raise ValueError(
            "this MaskFeat model takes images: pixel_values of shape (batch, channels, height, width); got "
            f"{tuple(pixel_values.shape)}. MaskFeatImageProcessor makes them."
        )
    _, chans, height, width = pixel_values.shape
    if chans != channels:
        raise ValueError(f"pixel_values has {chans} channels, the model expects {channels}")
    if (height, width) != (size, size):
        raise ValueError(
            f"this model takes {size}x{size} images (its position table is built for that size); got {height}x{width}. "
            "Resize/crop with MaskFeatImageProcessor or build a config with another image_size."
        )
    return pixel_values


def mask_as_grid(bool_masked_pos: torch.Tensor, config: MaskFeatConfig, batch_size: int) -> torch.Tensor:
    """Normalise a user mask to ``[N, T', h, w]`` (``T' = 1`` for images), any spatial resolution.

    Accepted: ``[N, h, w]`` (images) or ``[N, T', h, w]`` (video) at any spatial size (the model nearest-resizes it
    as the official one does), or a flat ``[N, L]`` over the prediction grid or the patch-embedding grid. Images
    may also come as ``[N, 1, h, w]``.
    """
    mask = bool_masked_pos
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"bool_masked_pos must be a torch.Tensor, got {type(mask).__name__}")
    frames = config.patch_grid[0]
    if mask.dim() == 2:
        for grid in (config.prediction_grid, config.patch_grid):
            if math.prod(grid) == mask.shape[1]:
                mask = mask.reshape(mask.shape[0], *grid)
                break
        else:
            raise ValueError(
                f"a flat bool_masked_pos must have {math.prod(config.prediction_grid)} entries per sample (prediction "
                f"grid {list(config.prediction_grid)}) or {math.prod(config.patch_grid)} (patch grid "
                f"{list(config.patch_grid)}); got {tuple(mask.shape)}"
            )
    elif mask.dim() == 3 and not config.is_video:
        mask = mask[:, None]
    elif mask.dim() != 4 or not (config.is_video or mask.shape[1] == 1):
        expected = "(batch, frames, height, width)" if config.is_video else "(batch, height, width)"
        raise ValueError(f"bool_masked_pos must have shape {expected} or (batch, num_tokens); got {tuple(mask.shape)}")
    if mask.shape[0] != batch_size:
        raise ValueError(f"bool_masked_pos has {mask.shape[0]} samples, pixel_values {batch_size}")
    if mask.shape[1] != frames:
        raise ValueError(
            f"bool_masked_pos must have {frames} time steps (num_frames / temporal patch stride), got {mask.shape[1]}"
        )
    return mask


def resize_mask(mask_grid: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Nearest-resize a ``[N, T', h, w]`` mask over space to ``grid`` and flatten: ``[N, T'*gh*gw]`` float.

    The official model does ``F.interpolate(mask, size)`` with time as channels (``_get_multiscale_mask`` and the
    mask-token substitution).
    """
    resized = nn.functional.interpolate(mask_grid.float(), size=tuple(grid[1:]), mode="nearest")
    return resized.flatten(1)


class MaskFeatMaskGenerator:
    """The official loader's masks: BEiT block masking (images) or cube masking (video) on ``config.mask_grid``.

    Images (``slowfast/datasets/imagenet.py``): ``round(h*w*ratio)`` cells, blocks of ``num // 5`` to
    ``max_mask_patches_per_block`` (or the remaining count) cells. Video (``Kinetics._gen_mask``):
    ``round(T'*h*w*ratio)`` cells, cube faces of ``h*w // 5`` to ``h*w`` cells and 1..T' steps. The count is close
    to, but not always exactly, the target. Call it once per sample (e.g. in a collator).

    Args:
        config: a :class:`MaskFeatConfig`.
    """

    def __init__(self, config: MaskFeatConfig):
        self.grid = tuple(config.mask_grid)
        self.is_video = config.is_video
        self.num_masking_patches = round(math.prod(self.grid) * config.mask_ratio)
        self.min_aspect = config.mask_min_aspect
        if self.is_video:
            self.max_num_patches = self.grid[1] * self.grid[2]
            self.min_num_patches = self.max_num_patches // 5
        else:
            self.max_num_patches = config.max_mask_patches_per_block
            self.min_num_patches = self.num_masking_patches // 5

    def __call__(self, rng: random.Random | None = None) -> torch.Tensor:
        """One mask, ``[h, w]`` or ``[T', h, w]`` bool (True = masked)."""
        if self.is_video:
            return cube_masking(
                self.grid, self.num_masking_patches, self.min_num_patches, self.max_num_patches, self.min_aspect, rng=rng
            )
        return block_masking(
            *self.grid, self.num_masking_patches, self.min_num_patches, self.max_num_patches, self.min_aspect, rng=rng
        )

    def batch(self, batch_size: int, rng: random.Random | None = None) -> torch.Tensor:
        """``[N, *grid]`` masks, one draw per sample from ``rng`` (the official loader calls the generator per sample)."""
        return torch.stack([self(rng) for _ in range(batch_size)])


# ---------------------------------------------------------------------------------------------------------------------
# Embeddings and head
# ---------------------------------------------------------------------------------------------------------------------
class MaskFeatEmbeddings(nn.Module):
    """Patch convolution, optional mask-token substitution, cls token and optional absolute positions.

    Args:
        config: the model configuration.
        use_mask_token: create the learned ``mask_token`` (pre-training).
    """

    def __init__(self, config: MaskFeatConfig, use_mask_token: bool = False):
        super().__init__()
        conv = nn.Conv3d if config.is_video else nn.Conv2d
        self.projection = conv(
            config.num_channels,
            config.hidden_size,
            kernel_size=tuple(config.patch_kernel_size),
            stride=tuple(config.patch_stride),
            padding=tuple(config.patch_padding),
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if use_mask_token else None
        frames, height, width = config.patch_grid
        self.position_embeddings = None
        self.space_time_position_embeddings = None
        if config.use_absolute_position_embeddings:
            if config.separate_position_embeddings:
                self.space_time_position_embeddings = SeparableSpaceTimePositionEmbedding(
                    config.hidden_size, frames, height * width, cls_token=True
                )
            else:
                self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + frames * height * width, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixels: torch.Tensor, embed_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, C, (T,) H, W]`` -> ``[N, 1 + L, D]``; ``embed_mask`` ``[N, L]`` (1 = replace by the mask token)."""
        tokens = self.projection(pixels.to(self.projection.weight.dtype)).flatten(2).transpose(1, 2)  # [N, L, D]
        if embed_mask is not None:
            if self.mask_token is None:
                raise ValueError(
                    "this model has no mask token; use MaskFeatForPreTraining, or MaskFeatModel(config, "
                    "use_mask_token=True), to encode masked inputs"
                )
            weight = embed_mask.unsqueeze(-1).to(tokens.dtype)
            tokens = tokens * (1 - weight) + self.mask_token.to(tokens.dtype) * weight
        hidden = torch.cat([self.cls_token.to(tokens.dtype).expand(tokens.shape[0], -1, -1), tokens], dim=1)
        if self.position_embeddings is not None:
            hidden = hidden + self.position_embeddings
        elif self.space_time_position_embeddings is not None:
            table = self.space_time_position_embeddings  # spatial.repeat(T) + temporal.repeat_interleave(S), cls first
            hidden = hidden + torch.cat([table.cls, table()], dim=1)
        return self.dropout(hidden)


class MaskFeatPredictionHead(nn.Module):
    """LayerNorm + Linear to the HOG target length (official ``MSSeparateHead`` with ``HEAD_TYPE: separate``)."""

    def __init__(self, config: MaskFeatConfig, hidden_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.projection = nn.Linear(hidden_size, config.hog_target_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.projection(self.norm(tokens))


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------
class MaskFeatPreTrainedModel(PreTrainedModel):
    config: MaskFeatConfig
    config_class = MaskFeatConfig
    base_model_prefix = "maskfeat"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer", "MViTLayer"]
    _supports_sdpa = True
    # MViTv2's relative positions enter the attention as a float bias, which flash kernels do not take.
    _supports_flash_attn = False
    _supports_flex_attn = False

    @torch.no_grad()
    def _init_weights(self, module):
        """Official SlowFast ``MViT._init_weights``: truncated normal (std 0.02) weights, Linear and LayerNorm biases
        at 0.02 (not 0); the HOG head's biases at 0; the classifier scaled by ``head_init_scale``."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                if isinstance(module, nn.Linear):
                    init.constant_(module.bias, 0.02)
                else:  # the official init leaves conv biases at PyTorch's default
                    bound = 1.0 / math.sqrt(module.weight[0].numel())
                    init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.constant_(module.bias, 0.02)
        elif isinstance(module, MaskFeatEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
            if module.mask_token is not None:
                init.trunc_normal_(module.mask_token, std=std)
            if module.position_embeddings is not None:
                init.trunc_normal_(module.position_embeddings, std=std)
        elif isinstance(module, SeparableSpaceTimePositionEmbedding):
            for table in (module.spatial, module.temporal, module.cls):
                if table is not None:
                    init.trunc_normal_(table, std=std)
        elif isinstance(module, MViTAttention):
            for table in (module.rel_pos_h, module.rel_pos_w, module.rel_pos_t):
                if table is not None:
                    if self.config.rel_pos_zero_init:
                        init.zeros_(table)
                    else:
                        init.trunc_normal_(table, std=std)
        elif isinstance(module, MaskFeatPredictionHead):  # runs after its children: official MSSeparateHead init
            init.zeros_(module.projection.bias)
            init.zeros_(module.norm.bias)
        elif isinstance(module, HOGLayer):
            weight_x, weight_y = sobel_kernels(module.num_channels)
            init.copy_(module.weight_x, weight_x)
            init.copy_(module.weight_y, weight_y)
            if module.gaussian_window:
                init.copy_(module.gaussian, gaussian_kernel_2d(module.gaussian_window, module.gaussian_window // 2))
        elif isinstance(module, _MaskFeatClassifier):
            scale = self.config.head_init_scale
            init.trunc_normal_(module.classifier.weight, std=std * scale)
            init.constant_(module.classifier.bias, 0.02 * scale)


class MaskFeatModel(MaskFeatPreTrainedModel):
    """The MaskFeat encoder (ViT or MViTv2, chosen by ``config.backbone``), without a final norm.

    Args:
        config: the model configuration.
        use_mask_token: create the learned mask token, so that ``bool_masked_pos`` can be passed.
        num_layers: build only the first ``num_layers`` blocks (pre-training stops at ``pretrain_depth``).
    """

    def __init__(self, config: MaskFeatConfig, use_mask_token: bool = False, num_layers: int | None = None):
        super().__init__(config)
        self.embeddings = MaskFeatEmbeddings(config, use_mask_token)
        encoder = ViTEncoder if config.backbone == "vit" else MViTEncoder
        self.encoder = encoder(config, num_layers)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskFeatModelOutput | tuple:
        r"""
        Args:
            pixel_values: normalised images ``[N, C, H, W]`` or clips ``[N, T, C, H, W]``.
            bool_masked_pos: optional mask (True = masked) whose positions get the mask token: ``[N, h, w]`` /
                ``[N, T', h, w]`` at any spatial resolution (nearest-resized to the patch grid), or flat over the
                prediction or patch grid. Needs ``use_mask_token=True``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pixels = conv_input(pixel_values, self.config)
        embed_mask = None
        if bool_masked_pos is not None:
            grid = mask_as_grid(bool_masked_pos, self.config, pixels.shape[0])
            embed_mask = resize_mask(grid.to(pixels.device), self.config.patch_grid)
        hidden_states = self.embeddings(pixels, embed_mask)
        hidden_states, _, all_hidden, all_attentions = self.encoder(
            hidden_states, self.config.patch_grid, bool(output_hidden_states), bool(output_attentions)
        )
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden, all_attentions) if v is not None)
        return MaskFeatModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden, attentions=all_attentions)


class MaskFeatForPreTraining(MaskFeatPreTrainedModel):
    """MaskFeat pre-training: mask tokens in the encoder, HOG prediction head, MSE on the masked tokens.

    Blocks after ``config.pretrain_depth`` are not built (the official ``MaskMViT`` deletes them).
    """

    def __init__(self, config: MaskFeatConfig):
        super().__init__(config)
        config.check_pretraining()
        self.maskfeat = MaskFeatModel(config, use_mask_token=True, num_layers=config.pretrain_layer + 1)
        self.head = MaskFeatPredictionHead(config, self.maskfeat.encoder.output_size)
        self.hog = HOGLayer(config.hog_num_bins, config.hog_cell_size, config.hog_gaussian_window, config.num_channels)
        self.mask_generator = MaskFeatMaskGenerator(config)
        self.post_init()

    def hog_targets(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, L, K]`` HOG targets of every prediction token, float32, computed on the (normalised) input.

        Video uses the first frame of each temporal patch (``frames[::patch_stride_t]``, official).
        """
        pixels = conv_input(pixel_values, self.config)
        frames, height, width = self.config.prediction_grid
        if self.config.is_video:
            stride = self.config.patch_stride[0]
            pixels = pixels[:, :, ::stride].transpose(1, 2).flatten(0, 1)  # [N*T', C, H, W]
        hog_map = self.hog(pixels)  # [N*T', C, bins, H/cell, W/cell]
        targets = hog_token_targets(hog_map, (height, width))  # [N*T', h*w, K]
        return targets.reshape(pixel_values.shape[0], frames * height * width, -1)

    def draw_mask(self, batch_size: int) -> torch.Tensor:
        """Masks as the official loader draws them, ``[N, *config.mask_grid]`` bool; ``torch.manual_seed`` pins them."""
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return self.mask_generator.batch(batch_size, random.Random(seed))

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskFeatForPreTrainingOutput | tuple:
        r"""
        Args:
            pixel_values: normalised images ``[N, C, H, W]`` or clips ``[N, T, C, H, W]``.
            bool_masked_pos: the mask (True = masked): ``[N, h, w]`` / ``[N, T', h, w]`` on any spatial grid (the
                official loader's mask grid, nearest-resized to the patch and prediction grids), or flat over the
                prediction or patch grid. Drawn with :class:`MaskFeatMaskGenerator` when omitted.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        batch = pixel_values.shape[0]
        if bool_masked_pos is None:
            mask_grid = self.draw_mask(batch)
            mask_grid = mask_grid if self.config.is_video else mask_grid[:, None]
        else:
            mask_grid = mask_as_grid(bool_masked_pos, self.config, batch)
        mask = resize_mask(mask_grid, self.config.prediction_grid).bool()  # [N, L], where the mask was given
        # Checked on the mask's own device (the CPU for masks from a collator: free); skipped inside torch.compile,
        # where reading a value back would break the graph.
        if not torch.compiler.is_compiling() and not mask.any():
            raise ValueError("bool_masked_pos masks no token: the MaskFeat loss is defined on masked tokens only")
        mask_grid, mask = mask_grid.to(pixel_values.device), mask.to(pixel_values.device)

        encoded = self.maskfeat(
            pixel_values,
            bool_masked_pos=mask_grid,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.head(encoded.last_hidden_state[:, 1:])  # [N, L, K], cls dropped
        targets = self.hog_targets(pixel_values).to(logits.device)  # [N, L, K] float32
        # mean over the masked tokens' values (official mse_loss(preds[mask], labels[mask])), without boolean
        # indexing: no data-dependent shapes, so the step compiles into one graph
        loss = masked_mse(logits, targets, mask)

        if not return_dict:
            return (loss, logits, targets, mask, encoded.last_hidden_state)
        return MaskFeatForPreTrainingOutput(
            loss=loss,
            logits=logits,
            hog_targets=targets,
            mask=mask,
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class _MaskFeatClassifier(MaskFeatPreTrainedModel):
    """Encoder + pooling + ``norm`` + dropout + Linear (official fine-tuning ``MViT`` with ``TransformerBasicHead``).

    Returns raw logits in train and eval mode (the official head applies a softmax in eval mode).
    """

    takes_video: bool = False

    def __init__(self, config: MaskFeatConfig):
        super().__init__(config)
        if config.is_video != self.takes_video:
            other = "MaskFeatForVideoClassification" if config.is_video else "MaskFeatForImageClassification"
            raise ValueError(
                f"{type(self).__name__} needs a {'video' if self.takes_video else 'image'} config "
                f"({'3-D' if self.takes_video else '2-D'} patches); use {other} for this one"
            )
        self.num_labels = config.num_labels
        self.maskfeat = MaskFeatModel(config)
        width = self.maskfeat.encoder.output_size
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        Args:
            pixel_values: normalised images ``[N, C, H, W]`` or clips ``[N, T, C, H, W]``.
            labels: class indices ``[N]``, or ``[N, num_labels]`` soft/multi-hot targets (see ``problem_type``).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self.maskfeat(
            pixel_values, output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True
        )
        hidden = encoded.last_hidden_state  # [N, 1 + L, D]
        if self.config.use_mean_pooling:
            pooled = self.norm(hidden[:, 1:].mean(dim=1))  # mean of the grid tokens, then norm
        else:
            pooled = self.norm(hidden)[:, 0]  # normed cls token
        logits = self.classifier(self.dropout(pooled))
        check_head_matches_labels(self.config, logits)
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        if not return_dict:
            output = tuple(v for v in (logits, encoded.hidden_states, encoded.attentions) if v is not None)
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )


class MaskFeatForImageClassification(_MaskFeatClassifier):
    """MaskFeat ViT image classifier (official ``in1k_VIT_*_MaskFeat_FT``: mean pooling, norm, linear head)."""

    takes_video = False


class MaskFeatForVideoClassification(_MaskFeatClassifier):
    """MaskFeat video classifier, ViT or MViTv2 (official ``k400_*_FT``: mean pooling, norm, linear head)."""

    takes_video = True


__all__ = [
    "MaskFeatForImageClassification",
    "MaskFeatForPreTraining",
    "MaskFeatForVideoClassification",
    "MaskFeatMaskGenerator",
    "MaskFeatModel",
    "MaskFeatPreTrainedModel",
]
