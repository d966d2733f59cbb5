"""Audio-MAE fixtures: pretraining (global and local decoder), fine-tuning and the fbank front-end."""

from __future__ import annotations

from pathlib import Path

import soundfile
import torch

from hf_maskedav import AudioMAEFeatureExtractor, AudioMAEForAudioClassification, AudioMAEForPreTraining
from hf_maskedav.audio import kaldi_fbank
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion.audiomae import config_from_official_kwargs, load_official_into
from hf_maskedav.layers import normalize_per_patch

from . import call_arguments, compare, load_io


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "facebookresearch/AudioMAE"


def run(folder: Path, fixture: dict):
    kind = fixture.get("file", "")
    if kind.startswith("dataset.py"):
        return _run_fbank(folder, fixture)
    if kind.startswith("models_mae.py"):
        return _run_pretraining(folder, fixture)
    if kind.startswith("models_vit.py"):
        return _run_finetuning(folder, fixture)
    raise NotImplementedError(f"unknown Audio-MAE fixture file {kind!r}")


def _official_state_dict(folder: Path, fixture: dict):
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    return unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))


def _run_pretraining(folder: Path, fixture: dict):
    io = load_io(folder)
    config = config_from_official_kwargs(fixture["constructor_kwargs"])
    model = load_official_into(AudioMAEForPreTraining(config), _official_state_dict(folder, fixture)).eval()
    args = call_arguments(fixture)
    inputs = io["input_values"]  # [N, 1, T, F]
    with torch.no_grad():
        out = model(inputs, noise=io["noise"], mask_ratio=args.get("mask_ratio"))
        encoded = model.audiomae(inputs, noise=io["noise"], mask_ratio=args.get("mask_ratio"))
        target = model.patchify(inputs)
        if config.norm_pix_loss:
            target = normalize_per_patch(target)
    ours = {
        "loss": out.loss.reshape(1),
        "pred": out.logits,
        "mask": out.mask,
        "ids_restore": out.ids_restore,
        "ids_keep": encoded.ids_keep,
        "latent": out.last_hidden_state,
        "target": target,
    }
    return [compare(name, ours[name], io[name], fixture) for name in ours if name in io]


def _run_finetuning(folder: Path, fixture: dict):
    io = load_io(folder)
    args = call_arguments(fixture)
    inputs = io["input_values"]  # [N, 1, T, F]
    config = config_from_official_kwargs(
        fixture["constructor_kwargs"],
        img_size=tuple(inputs.shape[-2:]),
        mask_time_prob=args.get("mask_t_prob", 0.0),
        mask_freq_prob=args.get("mask_f_prob", 0.0),
    )
    model = load_official_into(AudioMAEForAudioClassification(config), _official_state_dict(folder, fixture)).eval()
    comparisons = []
    with torch.no_grad():
        if "logits" in io:
            comparisons.append(compare("logits", model(inputs).logits, io["logits"], fixture))
        if "pooled_normed" in io:
            hidden = model.audiomae(inputs).last_hidden_state
            comparisons.append(compare("pooled_normed", model.fc_norm(hidden[:, 1:].mean(1)), io["pooled_normed"], fixture))
        if "logits_masked" in io:
            masked = model(inputs, time_noise=io["noise_t"], freq_noise=io["noise_f"]).logits
            comparisons.append(compare("logits_masked", masked, io["logits_masked"], fixture))
    return comparisons


def _run_fbank(folder: Path, fixture: dict):
    io = load_io(folder)
    comparisons = []
    for tag, clip in fixture["clips"].items():
        samples, rate = soundfile.read(folder / clip["wav_file"], dtype="float32")
        waveform = torch.from_numpy(samples)
        comparisons.append(compare(f"waveform_{tag}", waveform[None], io[f"waveform_{tag}"], fixture))
        extractor = AudioMAEFeatureExtractor(
            sampling_rate=rate, max_length=clip["target_length"], mean=clip["norm_mean"], std=clip["norm_std"]
        )
        raw = kaldi_fbank((waveform - waveform.mean())[None], sampling_rate=rate)[0]
        comparisons.append(compare(f"fbank_raw_{tag}", raw, io[f"fbank_raw_{tag}"], fixture))
        features = extractor(waveform, sampling_rate=rate, return_tensors="pt")["input_values"]
        comparisons.append(compare(f"fbank_{tag}", features, io[f"fbank_{tag}"], fixture))
    return comparisons
