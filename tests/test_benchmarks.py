"""Every benchmark of benchmarks/ at a tiny size, so that they cannot rot. Opt in with ``pytest -m benchmark``
(excluded from the default run: minutes on a small CPU, mostly torch.compile)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import audio_data, features, inference, pretrain_step, video_data, video_decode  # noqa: E402
from benchmarks.families import FAMILIES, InputSize, build  # noqa: E402

pytestmark = pytest.mark.benchmark
COMMON = ["--threads", "1", "--repeats", "1", "--warmup", "1"]


def rows(report: str) -> list[list[str]]:
    """The body rows of the Markdown table in a report."""
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_pretrain_step_every_family():
    report = pretrain_step.main(["--family", "all", "--size", "test", "--batch-size", "2", *COMMON])
    table = rows(report)
    assert [row[0] for row in table] == list(FAMILIES)
    assert all(float(row[5]) > 0 and row[4] == "ours eager" for row in table)


def test_pretrain_step_against_transformers_videomae_compiled_training_step():
    report = pretrain_step.main([
        "--family", "videomae", "--size", "test", "--batch-size", "2", "--compare", "transformers", "--mode", "train",
        "--compile", "--fullgraph", "--peer-eager-only", "--max-grad-norm", "1.0", *COMMON,
    ])
    contenders = [row[4] for row in rows(report)]
    assert contenders == ["ours eager", "ours compiled", "transformers eager"]
    assert "(|diff| 0.00e+00)" in report or "|diff| " in report
    diff = float(report.split("(|diff| ")[1].split(")")[0])
    assert diff < 1e-5  # same weights and masks: the same loss


def test_pretrain_step_mae_st_against_vit_mae_on_single_frames():
    report = pretrain_step.main([
        "--family", "mae_st", "--size", "test", "--num-frames", "1", "--batch-size", "2", "--compare", "transformers",
        *COMMON,
    ])
    assert [row[4] for row in rows(report)] == ["ours eager", "transformers eager"]
    with pytest.raises(ValueError, match="single frames"):
        pretrain_step.main(["--family", "mae_st", "--size", "test", "--compare", "transformers", *COMMON])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_compiles_forward_and_backward_into_one_graph(family):
    """AOTAutograd traces forward and backward with ``fullgraph=True``: no graph break, no device read-back."""
    torch._dynamo.reset()
    model, _, inputs = build(family, "test", InputSize(batch_size=2), torch.device("cpu"))
    model.eval()  # no dropout, so that eager and compiled compute the same function
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss = compiled(**inputs).loss
    loss.backward()
    torch.testing.assert_close(loss, model(**inputs).loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.grad is not None)


def test_inference_both_pairs():
    report = inference.main(["--model", "all", "--size", "test", "--batch-size", "2", *COMMON])
    table = rows(report)
    assert [(row[0], row[4]) for row in table] == [
        ("videomae", "ours eager"), ("videomae", "transformers eager"),
        ("audiomae", "ours eager"), ("audiomae", "transformers eager"),
    ]
    assert "max |logits ours - transformers| = " in report
    diff = float(report.split("max |logits ours - transformers| = ")[1].split(" ")[0])
    assert diff < 1e-4


def test_features_short_clips():
    report = features.main(["--batch-size", "2", "--seconds", "1", *COMMON])
    table = rows(report)
    assert [row[0] for row in table][:3] == [
        "ASTFeatureExtractor, per clip (CPU)", "ours batched, float64 FFT (CPU)", "ours batched, float32 (CPU)",
    ]
    assert all(float(row[-1]) <= 1e-3 for row in table)  # max |diff| vs AST


def test_video_decode_tiny_videos(tmp_path):
    report = video_decode.main([
        "--cache-dir", str(tmp_path), "--num-videos", "2", "--seconds", "2", "--fps", "12", "--width", "64",
        "--height", "48", "--workers", "0", "1", "--clips-per-video", "2", "--batch-size", "1", *COMMON,
    ])
    table = rows(report)
    assert {row[0] for row in table} <= {"pyav", "torchcodec"} and "pyav" in {row[0] for row in table}
    assert {(row[1], row[2]) for row in table} == {(w, m) for w in ("0", "1") for m in ("off", "views", "clips")}
    assert all(int(row[4]) == (2 if row[2] == "off" else 4) for row in table)  # clips produced


def test_video_data_loading_on_the_demo_clips(tmp_path):
    report = video_data.main([
        "--num_videos", "4", "--batch_size", "2", "--workers", "0", "1", "--repeats", "1", "2", "--batches", "2",
        "--warmup_batches", "1", "--demo_cache_dir", str(tmp_path), "--backend", "pyav", "torchcodec",
    ])
    table = rows(report)
    assert [(row[0], row[1], row[2]) for row in table] == [
        (b, w, r) for b in ("pyav", "torchcodec") for r in ("1", "2") for w in ("0", "1")]
    assert all(float(row[3]) > 0 for row in table) and table[0][5] == "1.00x"


def test_audio_data_loading_with_and_without_the_decoded_clip_and_feature_caches():
    # 1-s demo clips in a 1.28-s window: every clip is used whole, so its features are kept too
    report = audio_data.main(["--demo_num_clips", "16", "--batch_size", "4", "--repeats", "1", "--threads", "1",
                              "--clip_seconds", "1.28"])
    table = rows(report)
    assert [row[0] for row in table] == ["decode every epoch", "decoded-clip cache", "decoded clips + features"]
    assert table[0][3] == "1.00x" and all(float(row[2]) > 0 for row in table)
    # every demo clip was decoded once and kept, and its features computed once and kept
    assert "clips DecodedCache(16 items" in report and "features DecodedCache(16 items" in report
