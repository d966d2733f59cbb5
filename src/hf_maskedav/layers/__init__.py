"""Shared building blocks. Nothing in here knows about a particular model family."""

from .attention import SelfAttention, eager_attention_forward
from .embeddings import FixedPositionTable, PatchEmbed2D, TubeletEmbed3D
from .hog import HOGLayer, hog_token_targets
from .losses import info_nce, masked_mse
from .masking import (
    MaskingIndices,
    block_masking,
    cube_masking,
    gather_tokens,
    ids_from_bool_mask,
    ids_from_fixed_count_mask,
    num_kept,
    random_masking,
    restore_with_mask_tokens,
    running_cell_counts,
    running_cell_mask,
    time_frequency_masking,
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
)
from .transformer import MLP, DropPath, TransformerLayer, run_layers
from .window_attention import ShiftedWindowLayer, WindowCosineAttention
