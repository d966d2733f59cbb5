"""Loading a pretraining checkpoint into a classifier: one line for the expected differences, the full transformers
LOAD REPORT for real mismatches (hf_maskedav.training.loading)."""

import logging
import os

import pytest
import torch

import hf_maskedav  # noqa: F401
from hf_maskedav import AudioMAEForAudioClassification
from hf_maskedav.models.audiomae.modeling_audiomae import AudioMAEForPreTraining
from hf_maskedav.training import build_config
from hf_maskedav.training.loading import load_pretrained_quietly


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    torch.manual_seed(0)
    AudioMAEForPreTraining(build_config("audiomae-tiny")).save_pretrained(folder)
    return str(folder)


def _load(path, capfd, caplog, **kwargs):
    lines = []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transformers.modeling_utils"):
        model = load_pretrained_quietly(
            AudioMAEForAudioClassification, path, ignore_mismatched_sizes=True, log=lines.append,
            **{"num_labels": 3, **kwargs},
        )
    # the report reaches transformers' own stderr handler and the log records alike
    return model, lines, capfd.readouterr().err + caplog.text


def test_expected_differences_give_one_line(pretrained_dir, capfd, caplog):
    model, lines, err = _load(pretrained_dir, capfd, caplog)
    assert "LOAD REPORT" not in err and "UNEXPECTED" not in err and "MISSING" not in err
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"loaded the encoder of {pretrained_dir}: dropped ")
    assert "pretraining-only tensors (decoder" in line and "new classification head (4 tensors" in line
    # the encoder was really loaded
    source = AudioMAEForPreTraining.from_pretrained(pretrained_dir)
    key = "audiomae.embeddings.patch_embed.proj.weight"
    assert key in model.state_dict()
    torch.testing.assert_close(model.state_dict()[key], source.state_dict()[key])


def test_missing_encoder_tensor_keeps_the_report(pretrained_dir, tmp_path, capfd, caplog):
    from safetensors.torch import load_file, save_file

    for name in os.listdir(pretrained_dir):
        if name != "model.safetensors":
            (tmp_path / name).write_bytes(open(os.path.join(pretrained_dir, name), "rb").read())
    weights = load_file(os.path.join(pretrained_dir, "model.safetensors"))
    dropped = next(k for k in weights if k.startswith("audiomae.encoder.") or k.startswith("audiomae.layers"))
    del weights[dropped]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    capfd.readouterr()
    _, lines, err = _load(str(tmp_path), capfd, caplog)
    assert lines == []
    assert "LOAD REPORT" in err and "MISSING" in err and dropped.split(".")[-1] in err
    assert "encoder tensors missing from the checkpoint" in err


def test_shape_mismatch_keeps_the_report(pretrained_dir, tmp_path, capfd, caplog):
    classifier = load_pretrained_quietly(
        AudioMAEForAudioClassification, pretrained_dir, num_labels=3, ignore_mismatched_sizes=True, log=None
    )
    classifier.save_pretrained(tmp_path)
    capfd.readouterr()
    _, lines, err = _load(str(tmp_path), capfd, caplog, num_labels=5)
    assert lines == []
    assert "LOAD REPORT" in err and "MISMATCH" in err.upper() and "another shape" in err
