"""Audio-MAE fixtures: pretraining (global and local decoder), fine-tuning and the fbank front-end.

Model fixtures go through ``hf_maskedav.conversion.audiomae`` exactly as ``conversion/convert_audiomae.py --verify``
does (build from ``constructor_kwargs``, strict conversion of ``checkpoint.pth``, run the pinned inputs).
"""

from __future__ import annotations

from pathlib import Path

import soundfile
import torch

from hf_maskedav import AudioMAEFeatureExtractor
from hf_maskedav.audio import kaldi_fbank
from hf_maskedav.conversion import load_official_checkpoint, unwrap_state_dict
from hf_maskedav.conversion import audiomae as conversion

from . import Comparison, compare, load_io, tolerance


def matches(fixture: dict) -> bool:
    return fixture.get("official_repo") == "facebookresearch/AudioMAE"


def run(folder: Path, fixture: dict):
    if fixture.get("file", "").startswith("dataset.py"):
        return _run_fbank(folder, fixture)
    kwargs = fixture["constructor_kwargs"]
    model = conversion.build_model(kwargs, conversion.task_from_kwargs(kwargs), fixture=fixture)
    container = fixture.get("checkpoint_container", {}).get("key", "model")
    state_dict = unwrap_state_dict(load_official_checkpoint(folder / "checkpoint.pth"), containers=(container,))
    conversion.load_official_into(model, state_dict)
    atol, rtol = tolerance(fixture)
    rows = conversion.verify_fixture(model, folder, fixture)
    return [Comparison(name, ours, ref, atol, rtol, exact=not ref.is_floating_point()) for name, ours, ref, *_ in rows]


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
