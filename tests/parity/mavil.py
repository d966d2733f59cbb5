"""MAViL fixtures made with the MAViL authors' encoder code (roger-tseng/av-superb ``VisionTransformerMM``).

Everything is built from ``fixture.json``: sizes from the checkpoint keys and the recorded input shapes, the attention
head count and frame count from ``constructor_kwargs``, the fine-tuning mask probabilities from ``forward_call``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hf_maskedav import MAViLForAudioVisualClassification, MAViLModel
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.mavil import classifier_heads, config_from_checkpoint, load_official_into

from . import call_arguments, compare, load_io


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "roger-tseng/av-superb" and "VisionTransformerMM" in fixture.get("class", "")


def _pool(hidden: torch.Tensor) -> torch.Tensor:
    return hidden[:, 1:].mean(dim=1)  # cls excluded (authors' global_pool)


def run(folder: Path, fixture: dict):
    io = load_io(folder)
    kwargs = fixture["constructor_kwargs"]
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))

    audio = io["input_values"]  # [N, 1, T, F]
    frames = int(kwargs.get("n_frm", io["pixel_values"].shape[2]))
    # official forward: source video [N, C, T, H, W] cut to the first n_frm frames; ours takes [N, T, C, H, W]
    video = io["pixel_values"][:, :, :frames].transpose(1, 2).contiguous()
    args = call_arguments(fixture)
    config = config_from_checkpoint(
        state_dict,
        audio_size=tuple(audio.shape[-2:]),
        video_size=(frames, *video.shape[-2:]),
        num_attention_heads=int(kwargs["num_heads"]),
        mask_time_prob=args.get("mask_t_prob", 0.0),
        mask_freq_prob=args.get("mask_f_prob", 0.0),
        mask_video_prob=args.get("mask_v_prob", 0.0),
    )
    has_heads = bool(classifier_heads(state_dict))
    model_class = MAViLForAudioVisualClassification if has_heads else MAViLModel
    model = load_official_into(model_class(config), state_dict).eval()
    base = model.mavil if has_heads else model

    comparisons = []
    with torch.no_grad():
        out = base(input_values=audio, pixel_values=video, output_hidden_states=True)
        audio_length = out.fused_audio_hidden_state.shape[1]
        ours = {
            "audio_hidden_states": torch.stack(out.audio_hidden_states),
            "video_hidden_states": torch.stack(out.video_hidden_states),
            "fusion_hidden_states": torch.stack(out.fusion_hidden_states),
            "audio_feats": torch.stack([_pool(h) for h in out.audio_hidden_states]),
            "video_feats": torch.stack([_pool(h) for h in out.video_hidden_states]),
        }
        fusion_feats = [
            torch.cat([_pool(h[:, :audio_length]), _pool(h[:, audio_length:])], dim=-1) for h in out.fusion_hidden_states
        ]
        pooled = fusion_feats[-1]
        ours["pooled_concat"] = pooled
        av_head = has_heads and model.audio_visual_norm is not None
        if av_head:
            # expert.py: only the last fusion entry goes through fc_norm_av, and only for a fine-tuned model
            fusion_feats[-1] = model.audio_visual_norm(pooled)
            ours["pooled_normed"] = fusion_feats[-1]
            ours["logits"] = model(input_values=audio, pixel_values=video).logits
        ours["fusion_feats"] = torch.stack(fusion_feats)
        comparisons += [compare(name, value, io[name], fixture) for name, value in ours.items() if name in io]

        if av_head and "logits_masked" in io:
            captured = {}
            hook = model.audio_visual_norm.register_forward_hook(lambda m, i, o: captured.__setitem__("normed", o))
            masked = model(
                input_values=audio,
                pixel_values=video,
                time_noise=io["noise_t"],
                freq_noise=io["noise_f"],
                video_noise=io["noise_v"],
            )
            hook.remove()
            comparisons.append(compare("logits_masked", masked.logits, io["logits_masked"], fixture))
            if "pooled_normed_masked" in io:
                comparisons.append(compare("pooled_normed_masked", captured["normed"], io["pooled_normed_masked"], fixture))
            # the kept indices our model used, against the official argsort of the same noise
            audio_keep, video_keep = model._finetune_masking(
                audio, video.transpose(1, 2), io["noise_t"], io["noise_f"], io["noise_v"]
            )
            if "ids_keep_t" in io and "ids_keep_f" in io:
                freq = io["noise_f"].shape[1]
                expected = (io["ids_keep_t"][:, :, None] * freq + io["ids_keep_f"][:, None, :]).flatten(1)
                comparisons.append(compare("ids_keep_audio (from ids_keep_t, ids_keep_f)", audio_keep, expected, fixture))
            if "ids_keep_v" in io:
                comparisons.append(compare("ids_keep_v", video_keep, io["ids_keep_v"], fixture))
    return comparisons
