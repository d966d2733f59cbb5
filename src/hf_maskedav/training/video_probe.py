"""Frozen-encoder clip embeddings of the video and audio-visual families, registered with the linear probe's
feature-function table (:func:`~hf_maskedav.training.probe.register_feature_function`), and retrieval recall.

Each function takes a bare encoder (``AutoModel``) and its keyword inputs and returns ``[N, D]``: the mean of the
final patch tokens (cls excluded), every token visible -- the pooling the family's classifier uses.

MAViL gives the features of the inputs it receives: audio only (``input_values``), video only (``pixel_values``), or
both: the mean-pooled audio and video parts of the fusion output, concatenated (what its audio+visual head sees).
"""

from __future__ import annotations

import torch

from .probe import register_feature_function


@register_feature_function("maskedav_videomae")
def videomae_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state.mean(dim=1)


@register_feature_function("maskedav_mae_st")
def mae_st_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:].mean(dim=1)


@register_feature_function("maskedav_maskfeat")
def maskfeat_features(model, inputs: dict) -> torch.Tensor:
    return model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 1:].mean(dim=1)


@register_feature_function("maskedav_mavil")
def mavil_features(model, inputs: dict) -> torch.Tensor:
    audio, video = inputs.get("input_values"), inputs.get("pixel_values")
    out = model(input_values=audio, pixel_values=video, return_dict=True)
    skip = int(model.config.use_cls_token)
    if audio is not None and video is not None:
        return torch.cat([out.fused_audio_hidden_state[:, skip:].mean(dim=1),
                          out.fused_video_hidden_state[:, skip:].mean(dim=1)], dim=-1)
    hidden = out.audio_last_hidden_state if audio is not None else out.video_last_hidden_state
    return hidden[:, skip:].mean(dim=1)


def recall_at_k(similarity: torch.Tensor, ks=(1, 5, 10)) -> dict[int, float]:
    """Recall@k of a square ``[N, N]`` query x candidate similarity matrix whose diagonal holds the true pairs
    (ties are counted against the query: a candidate scoring equal to the true one ranks before it)."""
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"expected a square similarity matrix, got {tuple(similarity.shape)}")
    true = similarity.diagonal()[:, None]
    rank = (similarity >= true).sum(dim=1) - 1  # candidates scoring at least as high, the true one excluded
    return {k: float((rank < k).float().mean()) for k in ks}


__all__ = ["mae_st_features", "maskfeat_features", "mavil_features", "recall_at_k", "videomae_features"]
