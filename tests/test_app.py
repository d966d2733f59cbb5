"""The demo app (issue #19): :class:`hf_maskedav.app.core.Demo` on tiny models made here, the Space export, the model
card link, and (marker ``browser``) the Gradio page driven by headless Chromium.

The browser test needs Gradio and Selenium (the ``demo`` and ``dev`` extras) and Debian's ``chromium`` and
``chromium-driver``. Without them it is skipped with the reason, unless ``HF_MASKEDAV_REQUIRE_BROWSER=1`` (set by
``.ci/run``), which turns the skip into a failure. Screenshots go to ``test-artifacts/browser/`` (git-ignored;
``HF_MASKEDAV_ARTIFACTS`` moves them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_maskedav import (
    AudioMAEConfig,
    AudioMAEFeatureExtractor,
    AudioMAEForAudioClassification,
    AudioMAEForPreTraining,
    MaskedAVVideoMAEConfig,
    MaskedAVVideoMAEForPreTraining,
    MaskedAVVideoMAEForVideoClassification,
    MaskedAVVideoMAEVideoProcessor,
    MAViLConfig,
    MAViLForPreTraining,
    MAViLForStage2PreTraining,
    MAViLModel,
    MAViLProcessor,
)
from hf_maskedav.app.core import Demo, DemoInputError, detect_mode

from common import load_script
from test_processing_mavil import write_media
from video_helpers import write_audio_only, write_video

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("HF_MASKEDAV_ARTIFACTS", REPO / "test-artifacts")) / "browser"
LABELS = {0: "tone", 1: "noise", 2: "click", 3: "speech"}


# ---------------------------------------------------------------------------------------------------------------------
# tiny models and files, made here


def _audio_config(**kw):
    return AudioMAEConfig(
        max_length=64, num_mel_bins=32, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, **kw,
    )


VIDEO = dict(
    image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2, decoder_intermediate_size=32,
)


def _video_processor():
    return MaskedAVVideoMAEVideoProcessor(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 32},
                                          crop_size={"height": 32, "width": 32})


def _distinct_head(model):
    with torch.no_grad():
        model.classifier.weight.normal_(std=1.0)  # scores far from uniform, so a wrong number shows
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_files")
    t = np.arange(16000) / 16000
    wav = root / "tone.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32), 16000)
    mp4 = write_video(root / "clip.mp4", num_frames=20, height=40, width=48)
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    corrupt_mp4 = root / "corrupt.mp4"
    corrupt_mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13\x37" * 500)
    audio_only = write_audio_only(root / "speech.m4a")
    return {"wav": wav, "mp4": mp4, "corrupt": corrupt, "corrupt_mp4": corrupt_mp4, "audio_only": audio_only}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_models")
    torch.manual_seed(0)
    label2id = {v: k for k, v in LABELS.items()}
    folders = {}

    folders["audio_cls"] = root / "audio_cls"
    _distinct_head(AudioMAEForAudioClassification(_audio_config(id2label=LABELS, label2id=label2id))).save_pretrained(
        folders["audio_cls"])
    folders["audio_multi"] = root / "audio_multi"
    _distinct_head(AudioMAEForAudioClassification(_audio_config(
        id2label=LABELS, label2id=label2id, problem_type="multi_label_classification"))).save_pretrained(
        folders["audio_multi"])
    folders["audio_pre"] = root / "audio_pre"
    AudioMAEForPreTraining(_audio_config()).save_pretrained(folders["audio_pre"])
    for name in ("audio_cls", "audio_multi", "audio_pre"):
        AudioMAEFeatureExtractor(num_mel_bins=32, max_length=64).save_pretrained(folders[name])

    folders["video_cls"] = root / "video_cls"
    _distinct_head(MaskedAVVideoMAEForVideoClassification(MaskedAVVideoMAEConfig(
        **VIDEO, id2label=LABELS, label2id=label2id))).save_pretrained(folders["video_cls"])
    folders["video_pre"] = root / "video_pre"
    MaskedAVVideoMAEForPreTraining(MaskedAVVideoMAEConfig(**VIDEO)).save_pretrained(folders["video_pre"])
    for name in ("video_cls", "video_pre"):
        _video_processor().save_pretrained(folders[name])
    return folders


def _tiny_mavil(folder, model_class, **labels):
    from hf_maskedav import AudioMAEFeatureExtractor as Extractor
    from hf_maskedav.models.mavil import MAViLVideoProcessor

    config = MAViLConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, audio_num_hidden_layers=1,
        video_num_hidden_layers=1, fusion_num_hidden_layers=1, decoder_hidden_size=32, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=64, **labels,
    )
    torch.manual_seed(0)
    model = model_class(config)
    if labels and hasattr(model, "classifier"):
        _distinct_head(model)
    model.save_pretrained(folder)
    MAViLProcessor(Extractor(num_mel_bins=16, max_length=32),
                   MAViLVideoProcessor(size={"height": 16, "width": 16}, num_frames=4)).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------------
# Demo without the page


def test_modes_follow_the_architecture(models):
    from transformers import AutoConfig

    assert detect_mode(AutoConfig.from_pretrained(models["audio_cls"])) == ("classification", "audio-classification")
    assert detect_mode(AutoConfig.from_pretrained(models["video_cls"])) == ("classification", "video-classification")
    assert detect_mode(AutoConfig.from_pretrained(models["video_pre"])) == ("reconstruction", None)
    config = AutoConfig.from_pretrained(models["audio_pre"])
    config.architectures = ["AudioMAEModel"]
    with pytest.raises(DemoInputError, match="bare encoder"):
        detect_mode(config)


@pytest.mark.parametrize("name, media", [("audio_cls", "wav"), ("audio_multi", "wav"), ("video_cls", "mp4")])
def test_classification_equals_the_pipeline(models, files, name, media):
    from transformers import pipeline

    demo = Demo(str(models[name]), top_k=3)
    task = "audio-classification" if name.startswith("audio") else "video-classification"
    expected = pipeline(task, model=str(models[name]))(str(files[media]), top_k=3)
    shown = demo.classify(files[media])
    assert shown == expected and len(shown) == 3
    if name == "audio_multi":  # independent sigmoid scores: they need not sum to one
        assert demo.multi_label
        logits = demo.model(**demo.pipeline.preprocess(str(files[media]))).logits[0]
        assert [r["score"] for r in shown] == pytest.approx(sorted(logits.sigmoid().tolist(), reverse=True)[:3])
    else:
        assert not demo.multi_label


def test_classification_errors_are_messages(models, files):
    demo = Demo(str(models["audio_cls"]))
    with pytest.raises(DemoInputError, match="corrupt.wav: could not be read as audio"):
        demo.classify(files["corrupt"])
    with pytest.raises(DemoInputError, match="no file given"):
        demo.classify(None)
    video = Demo(str(models["video_cls"]))
    with pytest.raises(DemoInputError, match="audio-only"):
        video.classify(files["audio_only"])


def test_reconstruction_pictures_follow_ratio_and_seed(models, files, tmp_path):
    from PIL import Image

    audio = Demo(str(models["audio_pre"]))
    assert audio.mode == "reconstruction" and audio.default_mask_ratio == pytest.approx(0.8)
    first = audio.reconstruct(files["wav"], mask_ratio=0.5, seed=3, output_dir=tmp_path / "a")
    again = audio.reconstruct(files["wav"], mask_ratio=0.5, seed=3, output_dir=tmp_path / "b")
    other = audio.reconstruct(files["wav"], mask_ratio=0.25, seed=3, output_dir=tmp_path / "c")
    assert len(first) == 1 and first[0].caption == "audio: 16 of 32 patches masked"
    assert other[0].caption == "audio: 8 of 32 patches masked"
    assert Image.open(first[0].path).size == first[0].size
    assert np.array_equal(np.asarray(Image.open(first[0].path)), np.asarray(Image.open(again[0].path)))
    assert audio.model.config.mask_ratio == pytest.approx(0.8)  # the slider's value is not left on the model

    video = Demo(str(models["video_pre"]))
    made = video.reconstruct(files["mp4"], mask_ratio=0.5, seed=0, output_dir=tmp_path / "v")
    assert len(made) == 1 and made[0].caption.startswith("video: ") and made[0].size[0] > 100
    with pytest.raises(DemoInputError, match="mask ratio"):
        video.reconstruct(files["mp4"], mask_ratio=1.0)
    with pytest.raises(DemoInputError, match="corrupt.mp4"):
        video.reconstruct(files["corrupt_mp4"])


def _tiny_cavmae(folder):
    from hf_maskedav import CAVMAEConfig, CAVMAEFeatureExtractor, CAVMAEForPreTraining, CAVMAEProcessor
    from hf_maskedav import CAVMAEVideoProcessor

    config = CAVMAEConfig(
        max_length=32, num_mel_bins=32, image_size=32, patch_size=8, hidden_size=32, num_attention_heads=4,
        intermediate_size=64, num_modality_specific_layers=2, num_shared_layers=1, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
    )
    torch.manual_seed(0)
    CAVMAEForPreTraining(config).save_pretrained(folder)
    CAVMAEProcessor(CAVMAEFeatureExtractor(num_mel_bins=32, max_length=32),
                    CAVMAEVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
                    ).save_pretrained(folder)
    return folder


def _tiny_avmae(folder):
    from hf_maskedav import AVMAEConfig, AVMAEFeatureExtractor, AVMAEForPreTraining, AVMAEProcessor
    from hf_maskedav import AVMAEVideoProcessor

    config = AVMAEConfig(
        max_length=36, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=3, num_fusion_layers=1,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, bottleneck_fusion_layer=1, num_bottleneck_tokens=2,
    )
    torch.manual_seed(0)
    AVMAEForPreTraining(config).save_pretrained(folder)
    AVMAEProcessor(AVMAEFeatureExtractor(num_mel_bins=16, max_length=36),
                   AVMAEVideoProcessor(num_frames=4, size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
                   ).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", ["mae_st", "maskfeat"])
def test_mae_st_and_maskfeat_reconstruction(tmp_path, files, family):
    from hf_maskedav import MAESTConfig, MAESTVideoProcessor, MaskFeatConfig, MaskFeatForPreTraining
    from hf_maskedav import MaskFeatVideoProcessor

    torch.manual_seed(0)
    if family == "mae_st":
        from hf_maskedav import MAESTForPreTraining

        MAESTForPreTraining(MAESTConfig(**{**VIDEO, "pred_t_dim": 2})).save_pretrained(tmp_path / family)
        MAESTVideoProcessor(num_frames=4, frame_sampling_rate=2, size={"shortest_edge": 32},
                            crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path / family)
    else:
        MaskFeatForPreTraining(MaskFeatConfig(
            image_size=32, num_frames=4, patch_kernel_size=[2, 16, 16], patch_stride=[2, 16, 16],
            patch_padding=[0, 0, 0], hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            separate_position_embeddings=True, mask_window_size=[2, 2, 2])).save_pretrained(tmp_path / family)
        MaskFeatVideoProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                               num_frames=4).save_pretrained(tmp_path / family)
    demo = Demo(str(tmp_path / family))
    assert demo.mode == "reconstruction"
    made = demo.reconstruct(files["mp4"], mask_ratio=0.5, seed=0, output_dir=tmp_path / "p")
    assert len(made) == 1 and made[0].caption.startswith("video: ") and os.path.getsize(made[0].path) > 1000


def test_audio_video_classifier_equals_the_pipeline(tmp_path):
    from transformers import pipeline

    from hf_maskedav import MAViLForAudioVisualClassification

    folder = _tiny_mavil(tmp_path / "mavil_cls", MAViLForAudioVisualClassification,
                         id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    demo = Demo(str(folder), top_k=4)
    assert (demo.mode, demo.task) == ("classification", "audio-video-classification")
    clip = write_media(tmp_path / "clip.mp4")
    shown = demo.classify(clip)
    assert shown == pipeline("audio-video-classification", model=str(folder))(str(clip), top_k=4) and len(shown) == 4
    with pytest.raises(DemoInputError, match="silent.mp4"):
        demo.classify(write_media(tmp_path / "silent.mp4", audio=False))


@pytest.mark.parametrize("family", ["cavmae", "avmae"])
def test_cavmae_avmae_reconstruction(tmp_path, family):
    folder = (_tiny_cavmae if family == "cavmae" else _tiny_avmae)(tmp_path / family)
    demo = Demo(str(folder))
    assert demo.mode == "reconstruction" and demo.accepts == "audio-video"
    made = demo.reconstruct(write_media(tmp_path / "clip.mp4"), mask_ratio=0.5, seed=0, output_dir=tmp_path / "p")
    assert [p.caption.split(":")[0] for p in made] == ["video", "audio"]
    assert all(os.path.getsize(p.path) > 1000 for p in made)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_views_put_every_patch_back_where_it_came_from(norm_pix_loss):
    """A prediction equal to the target gives back the input exactly, in the family's own layout (CAV-MAE's
    transposed spectrogram patches, AV-MAE's tubelets); masked patches are NaN in the masked view."""
    from hf_maskedav import AVMAEConfig, AVMAEForPreTraining, CAVMAEConfig, CAVMAEForPreTraining
    from hf_maskedav.app.core import _raw_targets, _views_from_patchify
    from hf_maskedav.layers.targets import normalize_per_patch

    cav = CAVMAEForPreTraining(CAVMAEConfig(
        max_length=32, num_mel_bins=16, image_size=16, patch_size=8, hidden_size=32, num_attention_heads=4,
        intermediate_size=64, num_modality_specific_layers=1, num_shared_layers=1, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64))
    av = AVMAEForPreTraining(AVMAEConfig(
        max_length=32, num_mel_bins=16, audio_patch_size=8, num_frames=4, image_size=16, video_patch_size=8,
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2, num_fusion_layers=1,
        decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, bottleneck_fusion_layer=1, num_bottleneck_tokens=2))
    cases = [
        (cav.patchify_audio, torch.randn(1, 32, 16)),
        (cav.patchify_video, torch.randn(1, 3, 16, 16)),
        (lambda v: _raw_targets(av, "audio", v), torch.randn(1, 32, 16)),
        (lambda v: _raw_targets(av, "video", v), torch.randn(1, 4, 3, 16, 16)),
    ]
    generator = torch.Generator().manual_seed(0)
    for patchify, values in cases:
        patches = patchify(values)
        predicted = normalize_per_patch(patches) if norm_pix_loss else patches
        mask = (torch.rand(patches.shape[:2], generator=generator) < 0.5).float()
        views = _views_from_patchify(patchify, values, predicted, mask, norm_pix_loss)
        assert views["original"].shape == values.shape[1:]
        torch.testing.assert_close(views["original"], values[0])
        torch.testing.assert_close(views["reconstruction"], values[0], atol=1e-4, rtol=1e-4)
        hidden = torch.isnan(views["masked"])
        assert int(hidden.sum()) == int(mask.sum()) * patches.shape[-1]


def test_mavil_reconstruction_and_retrieval(tmp_path, files):
    pretraining = Demo(str(_tiny_mavil(tmp_path / "mavil_pre", MAViLForPreTraining)))
    assert pretraining.mode == "reconstruction" and pretraining.accepts == "audio-video"
    mp4 = write_media(tmp_path / "with_sound.mp4")
    pictures = pretraining.reconstruct(mp4, mask_ratio=0.5, seed=0, output_dir=tmp_path / "p")
    assert [p.caption.split(":")[0] for p in pictures] == ["video", "audio"]

    # a stage-2 student has no pixel reconstruction: its folder opens as a retrieval demo of its encoder; one saved
    # under the stage-1 class name (as before stage 2 had its own class) gets the demo's message, not the model's
    stage2 = Demo(str(_tiny_mavil(tmp_path / "mavil_stage2", MAViLForStage2PreTraining)))
    assert stage2.mode == "retrieval"
    older = Demo(str(_tiny_mavil(tmp_path / "mavil_stage2_old", MAViLForPreTraining, reconstruction_target="teacher")))
    assert older.mode == "reconstruction"
    with pytest.raises(DemoInputError, match="teacher features \\(stage 2\\).*use a stage-1 checkpoint"):
        older.reconstruct(mp4, mask_ratio=0.5, seed=0, output_dir=tmp_path / "p2")

    encoder = Demo(str(_tiny_mavil(tmp_path / "mavil_enc", MAViLModel)))
    assert encoder.mode == "retrieval"
    gallery = [write_media(tmp_path / f"g{i}.mp4") for i in range(3)]
    ranking = encoder.retrieve([str(p) for p in gallery], 1, "video->audio")
    assert sorted(r["index"] for r in ranking) == [0, 1, 2] and ranking[0]["name"].startswith("g")
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    with pytest.raises(DemoInputError, match="at least two"):
        encoder.retrieve([str(gallery[0])], 0)
    with pytest.raises(DemoInputError, match="silent.mp4"):  # a clip without sound: the processor's message
        encoder.retrieve([str(gallery[0]), str(write_media(tmp_path / "silent.mp4", audio=False))], 0)


def test_app_is_not_imported_by_the_package():
    out = subprocess.run([sys.executable, "-c", "import sys, hf_maskedav; from hf_maskedav import AudioMAEConfig; "
                          "print([m for m in sys.modules if m.startswith(('hf_maskedav.app', 'gradio'))])"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_command_line_names_what_is_wrong(tmp_path, capsys):
    import importlib.util

    from hf_maskedav.app.cli import main, parse_args

    args = parse_args(["--model", "x"])
    assert (args.host, args.port, args.top_k, args.device) == ("127.0.0.1", 7860, 5, "cpu")
    (tmp_path / "config.json").write_text("{}")
    assert main(["--model", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    if importlib.util.find_spec("gradio") is None:
        assert "the demo needs Gradio" in error
    else:
        assert error.startswith(f"cannot load {tmp_path}: ") and "Traceback" not in error


def test_export_space(tmp_path):
    from hf_maskedav.app.cli import main

    assert main(["--model", "someone/audiomae-tiny", "--export_space", str(tmp_path / "space"),
                 "--space_title", "Tiny demo"]) == 0
    space = tmp_path / "space"
    assert sorted(p.name for p in space.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    readme = (space / "README.md").read_text()
    header = readme.split("---")[1]
    import yaml

    meta = yaml.safe_load(header)
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["models"] == ["someone/audiomae-tiny"]
    assert meta["title"] == "Tiny demo" and meta["sdk_version"]
    app = (space / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert "'--model', 'someone/audiomae-tiny'" in app and "'0.0.0.0'" in app
    assert (space / "requirements.txt").read_text().startswith("hf-maskedav[demo]")
    with pytest.raises(ValueError, match="Hub id"):
        main(["--model", str(tmp_path), "--export_space", str(tmp_path / "nope")])



FAMILIES_WITH_A_CONVERTER = sorted(p.stem.removeprefix("convert_") for p in (REPO / "conversion").glob("convert_*.py"))


@pytest.mark.parametrize("family", FAMILIES_WITH_A_CONVERTER)
def test_model_cards_link_the_demo(family):
    from hf_maskedav.conversion.cli import render_model_card

    spec = load_script(REPO / "conversion" / f"convert_{family}.py").SPEC
    preset = next(iter(spec.presets.values()))
    unverified = {"status": "unverified", "reason": "no outputs"}
    card = str(render_model_card(spec, preset, preset.task, unverified, preset.url, "someone/tiny",
                                 space_id="someone/tiny-demo"))
    assert "[someone/tiny-demo](https://huggingface.co/spaces/someone/tiny-demo)" in card
    assert "python -m hf_maskedav.app --model someone/tiny" in card
    plain = str(render_model_card(spec, preset, preset.task, unverified, preset.url, "someone/tiny"))
    assert "huggingface.co/spaces" not in plain and "python -m hf_maskedav.app --model someone/tiny" in plain
    assert "--export_space" in plain


# ---------------------------------------------------------------------------------------------------------------------
# the page in a real browser


def _browser_or_skip():
    """Selenium + Chromium + ChromeDriver, or a skip (a failure under HF_MASKEDAV_REQUIRE_BROWSER=1) naming what is
    missing and how to install it."""
    missing = []
    try:
        import gradio  # noqa: F401
    except ImportError:
        missing.append('gradio (pip install -e ".[demo]")')
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium (pip install -e ".[dev]")')
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None:
        missing.append("chromium (apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver)")
    if missing:
        message = "the browser test needs " + ", ".join(missing)
        if os.environ.get("HF_MASKEDAV_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (HF_MASKEDAV_REQUIRE_BROWSER=1: required here)")
        pytest.skip(message)
    return chromium, driver


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(models):
    """``{name: (Demo, url)}``: one page per model on its own free loopback port, in threads of this process."""
    _browser_or_skip()
    from hf_maskedav.app.ui import launch

    pages, urls = [], {}
    folders = {**models, "mavil_enc": _tiny_mavil(models["audio_cls"].parent / "mavil_enc", MAViLModel)}
    for name in ("audio_cls", "video_cls", "video_pre", "mavil_enc"):
        demo = Demo(str(folders[name]), top_k=3)
        port = _free_port()
        pages.append(launch(demo, host="127.0.0.1", port=port, block=False))
        urls[name] = (demo, f"http://127.0.0.1:{port}/")
    yield urls
    for page in pages:
        page.close()


def _open(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#media input[type=file]")))


def _upload_and_run(driver, path, wait_for: str):
    """Upload ``path`` into the page's file box, wait until the page shows it, press the button, then wait until
    ``wait_for`` (CSS) or an error message is in the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, "#media input[type=file]").send_keys(str(path))
    WebDriverWait(driver, 30).until(  # uploaded: the box names the file (stem and suffix on two lines) and can clear
        lambda d: Path(path).stem in d.find_element(By.ID, "media").text
        and d.find_elements(By.CSS_SELECTOR, "#media button[aria-label=Clear]"))
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, wait_for) or d.find_elements(By.CSS_SELECTOR, "#status .demo-error")
    )


def _shown_scores(driver) -> list[dict]:
    from selenium.webdriver.common.by import By

    return [{"score": float(row.get_attribute("data-score")), "label": row.get_attribute("data-label")}
            for row in driver.find_elements(By.CSS_SELECTOR, "#scores tr.score-row")]


def _error_text(driver) -> str:
    from selenium.webdriver.common.by import By

    errors = driver.find_elements(By.CSS_SELECTOR, "#status .demo-error")
    return errors[0].text if errors else ""


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_page_in_headless_chromium(browser, served, files, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from transformers import pipeline

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    browser.set_window_size(1100, 1000)

    # audio classifier: the wav's labels are the pipeline's, to the last digit
    demo, url = served["audio_cls"]
    _open(browser, url)
    _upload_and_run(browser, files["wav"], "#scores tr.score-row")
    assert _error_text(browser) == ""
    expected = pipeline("audio-classification", model=demo.model_id)(str(files["wav"]), top_k=3)
    assert _shown_scores(browser) == expected
    # everything the page loaded came from the app itself (no font server, no CDN, no analytics)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and [u for u in loaded if not u.startswith((url, "data:", "blob:"))] == []
    label_box = browser.find_element(By.ID, "labels").text
    assert expected[0]["label"] in label_box
    browser.save_screenshot(str(ARTIFACTS / "audio_classification.png"))

    # a corrupt file: the processor's message in the page, no traceback
    _open(browser, url)
    _upload_and_run(browser, files["corrupt"], "#status .demo-error")
    message = _error_text(browser)
    assert "Could not use this file" in message and "corrupt.wav: could not be read as audio" in message
    assert "Traceback" not in browser.page_source and not _shown_scores(browser)
    browser.save_screenshot(str(ARTIFACTS / "corrupt_file.png"))

    # video classifier on the mp4
    demo, url = served["video_cls"]
    _open(browser, url)
    _upload_and_run(browser, files["mp4"], "#scores tr.score-row")
    assert _error_text(browser) == ""
    assert _shown_scores(browser) == pipeline("video-classification", model=demo.model_id)(str(files["mp4"]), top_k=3)
    browser.save_screenshot(str(ARTIFACTS / "video_classification.png"))

    # VideoMAE pretraining: the reconstruction picture is drawn, at the size the demo makes it, and not blank
    demo, url = served["video_pre"]
    _open(browser, url)
    browser.set_window_size(1100, 1700)  # the whole picture in the screenshot
    _upload_and_run(browser, files["mp4"], "#reconstruction img")
    assert _error_text(browser) == ""
    image = browser.find_element(By.CSS_SELECTOR, "#reconstruction img")
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image))
    size = tuple(browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image))
    reference = demo.reconstruct(files["mp4"], mask_ratio=demo.default_mask_ratio, seed=0, output_dir=tmp_path)[0]
    assert size == reference.size
    # the pixels the browser decoded: drawn onto a canvas and read back, they are not one flat colour
    spread = browser.execute_script("""
        const img = arguments[0], c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data; let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
        return hi - lo;""", image)
    assert spread > 50
    status = browser.find_element(By.ID, "status").text
    assert "patches masked" in status
    browser.save_screenshot(str(ARTIFACTS / "video_reconstruction.png"))
    assert Image.open(ARTIFACTS / "video_reconstruction.png").size[0] > 0

    # the corrupt mp4 on the pretraining page
    _open(browser, url)
    _upload_and_run(browser, files["corrupt_mp4"], "#status .demo-error")
    assert "corrupt.mp4" in _error_text(browser)

    # MAViL encoder: three clips uploaded together, the second one's video against every clip's audio
    demo, url = served["mavil_enc"]
    browser.get(url)
    clips = [str(write_media(tmp_path / f"clip{i}.mp4")) for i in range(3)]
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery_files input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#gallery_files input[type=file]").send_keys("\n".join(clips))
    WebDriverWait(browser, 30).until(  # all three uploaded: the box lists the last one and can clear
        lambda d: "clip2" in d.find_element(By.ID, "gallery_files").text
        and d.find_elements(By.CSS_SELECTOR, "#gallery_files button[aria-label=Clear]"))
    browser.find_element(By.CSS_SELECTOR, "#query input").clear()
    browser.find_element(By.CSS_SELECTOR, "#query input").send_keys("2")
    browser.find_element(By.XPATH, "//*[@id='direction']//label[contains(., 'video->audio')]").click()
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#ranking tr.rank-row, #status .demo-error"))
    assert _error_text(browser) == ""
    shown = [(row.get_attribute("data-name"), float(row.get_attribute("data-score")))
             for row in browser.find_elements(By.CSS_SELECTOR, "#ranking tr.rank-row")]
    expected = demo.retrieve(clips, 1, "video->audio")
    assert shown == [(r["name"], r["score"]) for r in expected]
    assert "The video of clip1.mp4" in browser.find_element(By.ID, "ranking").text
    browser.save_screenshot(str(ARTIFACTS / "retrieval.png"))
    assert time.perf_counter() - started < 60
