"""``pipeline("video-classification", model=<saved folder>)`` for VideoMAE and MAE-ST, on an .mp4 written here with
PyAV, on a list of frames and on an array; the scores equal processor + model run by hand."""

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification, pipeline

from hf_maskedav import (
    MAESTConfig,
    MAESTForPreTraining,
    MAESTForVideoClassification,
    MAESTModel,
    MAESTVideoProcessor,
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEForPreTraining,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEModel,
    MaskedAVVideoMAEVideoProcessor,
)
from hf_maskedav.video import VideoDecodingError, decode_video

from video_helpers import write_audio_only, write_video

TINY = dict(
    image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2, decoder_intermediate_size=32, id2label={0: "walk", 1: "run", 2: "jump"},
)
FAMILIES = {
    "videomae": (MaskedAVVideoMAEConfig, MaskedAVVideoMAEForVideoClassification, MaskedAVVideoMAEVideoProcessor,
                 MaskedAVVideoMAEModel, MaskedAVVideoMAEForPreTraining),
    "mae_st": (MAESTConfig, MAESTForVideoClassification, MAESTVideoProcessor, MAESTModel, MAESTForPreTraining),
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return write_video(root / "clip.mp4", num_frames=20, height=24, width=32), write_audio_only(root / "audio.m4a")


@pytest.fixture(scope="module", params=list(FAMILIES))
def saved(request, tmp_path_factory):
    config_class, model_class, processor_class, base_class, pretraining_class = FAMILIES[request.param]
    extra = {"pred_t_dim": 2} if request.param == "mae_st" else {}
    torch.manual_seed(0)
    model = model_class(config_class(**TINY, **extra)).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(std=1.0)  # distinct scores
    processor = processor_class(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 16},
                                crop_size={"height": 16, "width": 16})
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return request.param, folder, model, processor


def _by_hand(model, processor, video):
    with torch.no_grad():
        probs = model(**processor(video, return_tensors="pt")).logits.softmax(-1)[0]
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}


def test_auto_classes_resolve(saved):
    family, folder, model, _ = saved
    _, model_class, _, base_class, pretraining_class = FAMILIES[family]
    assert type(AutoConfig.from_pretrained(folder)) is type(model.config)
    assert type(AutoModelForVideoClassification.from_pretrained(folder)) is model_class
    assert type(AutoModel.from_pretrained(folder)) is base_class
    assert type(AutoModelForPreTraining.from_pretrained(folder)) is pretraining_class


def test_pipeline_on_mp4_frames_and_arrays(saved, clip):
    family, folder, model, processor = saved
    mp4, audio = clip
    classifier = pipeline("video-classification", model=str(folder))
    assert type(classifier.video_processor) is type(processor)

    result = classifier(str(mp4))
    expected = _by_hand(model, processor, str(mp4))
    assert [r["label"] for r in result] == sorted(expected, key=expected.get, reverse=True)
    for entry in result:
        assert entry["score"] == pytest.approx(expected[entry["label"]], abs=1e-5)

    frames = list(decode_video(mp4).numpy())  # a list of [H, W, 3] uint8 frames, one video
    from_frames = classifier([frames])[0]  # a list input is a batch: one video given as its list of frames
    expected_frames = _by_hand(model, processor, frames)
    for entry in from_frames:
        assert entry["score"] == pytest.approx(expected_frames[entry["label"]], abs=1e-5)
    assert classifier(np.stack(frames), top_k=2)[0]["score"] == pytest.approx(from_frames[0]["score"], abs=1e-6)

    # num_frames is honoured: 8 frames run through the 4-frame model (positions follow), and differ from 4
    eight = classifier(str(mp4), num_frames=8)
    assert len(eight) == 3 and eight != result

    with pytest.raises(VideoDecodingError, match="audio-only"):
        classifier(str(audio))
    with pytest.raises(ValueError, match="cannot be cut into tubelets"):
        classifier(str(mp4), num_frames=5)
