"""Shared building blocks. Nothing in here knows about a particular model family."""

from .attention import SelfAttention, eager_attention_forward
from .embeddings import FixedPositionTable, PatchEmbed2D, PositionTable, TubeletEmbed3D, embed_with_positions
from .inputs import as_frame, as_spectrogram, as_video
from .hog import HOGLayer, hog_token_targets
from .losses import info_nce, masked_mse
from .masking import (
    MaskingIndices,
    block_masking,
    checked_noise,
    count_mask_from_noise,
    cube_masking,
    gather_tokens,
    ids_from_bool_mask,
    ids_from_fixed_count_mask,
    mask_from_noise,
    noise_shape,
    num_kept,
    num_masked_tokens,
    random_masking,
    restore_with_mask_tokens,
    running_cell_counts,
    running_cell_mask,
    time_frequency_masking,
    tube_mask_from_noise,
    tube_masking,
    videomae_v2_masks,
)
from .position import (
    SeparableSpaceTimePositionEmbedding,
    audiomae_position_table,
    sincos_1d,
    sincos_2d_table,
    sincos_3d_table,
    sinusoid_1d_table,
)
from .targets import (
    normalize_per_patch,
    normalize_per_patch_channel,
    patchify_2d,
    patchify_3d,
    select_patches,
    unpatchify_2d,
    unpatchify_3d,
    video_pixel_targets,
)
from .transformer import MLP, DropPath, TransformerLayer, run_layers, transformer_layers
from .window_attention import ShiftedWindowLayer, WindowCosineAttention
