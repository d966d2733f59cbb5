"""The README's "Use a model" section (issue #17): where it is, that its commands parse and its feature snippet runs,
and that the preset list lives in docs/conversion.md (every preset, once) and no longer in the README."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import numpy as np
import soundfile
import torch

from common import load_script

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FAMILIES = ("audiomae", "avmae", "cavmae", "mae_st", "maskfeat", "mavil", "videomae", "videomae_v2")


def _section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.+?)\n```", section, re.S)


def _command(block: str) -> list[str]:
    line = re.sub(r"#.*", "", block.replace("\\\n", " "))
    return shlex.split(line)


def test_use_a_model_follows_set_up_and_covers_the_four_uses():
    titles = re.findall(r"^## (.+)$", README, re.M)
    assert titles[titles.index("Set up") + 1] == "Use a model", titles
    section = _section(README, "Use a model")
    python, bash = _blocks(section, "python"), _blocks(section, "bash")
    assert len(python) == 2 and len(bash) == 2
    for block in python + bash:
        assert 1 <= len(block.splitlines()) <= 10, block  # five to ten lines each (the first is a bare pipeline)
    assert 'pipeline("audio-classification"' in python[0] and 'pipeline("video-classification"' in python[0]
    assert 'pipeline("audio-video-classification"' in python[0]
    assert "AutoModel.from_pretrained" in python[1] and "AutoFeatureExtractor.from_pretrained" in python[1]
    assert "import hf_maskedav" in section and "trust_remote_code=True" in section


def test_fine_tuning_and_conversion_commands_parse():
    bash = _blocks(_section(README, "Use a model"), "bash")
    finetune, convert = (_command(block) for block in bash)
    assert finetune[:2] == ["accelerate", "launch"]
    module = load_script(ROOT / finetune[2], "readme_finetune")
    args = module.parse_args(finetune[3:])
    assert args.data_dir == "my_sounds/" and args.label_column == "label"

    assert convert[0] == "python" and convert[1] == "conversion/convert_audiomae.py"
    from hf_maskedav.conversion.audiomae import PRESETS
    from hf_maskedav.conversion.cli import build_parser

    module = load_script(ROOT / convert[1], "readme_convert")
    args = build_parser(module.SPEC).parse_args(convert[2:])
    assert args.preset in PRESETS and args.export_remote_code and args.push_to_hub


def test_features_snippet_runs_on_a_saved_encoder(tmp_path, monkeypatch):
    from hf_maskedav import AudioMAEConfig, AudioMAEFeatureExtractor, AudioMAEForPreTraining

    monkeypatch.chdir(tmp_path)
    config = AudioMAEConfig(max_length=32, num_mel_bins=16, patch_size=8, patch_stride=8, hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32,
                            decoder_num_attention_heads=4, decoder_intermediate_size=64)
    AudioMAEForPreTraining(config).save_pretrained("outputs/pretrain_audio")
    AudioMAEFeatureExtractor(num_mel_bins=16, max_length=32).save_pretrained("outputs/pretrain_audio")
    soundfile.write("dog_bark.wav", np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    namespace = {}
    exec(_blocks(_section(README, "Use a model"), "python")[1], namespace)
    assert namespace["embedding"].shape == (1, 32) and torch.isfinite(namespace["embedding"]).all()


def test_preset_table_moved_to_docs_conversion():
    assert "| preset |" not in README
    assert "docs/conversion.md#all-presets" in README
    conversion = (ROOT / "docs" / "conversion.md").read_text()
    table = _section(conversion, "All presets")
    listed = re.findall(r"^\| `([^`]+)` \| `convert_(\w+)\.py` \|", table, re.M)
    presets = [(name, family) for family in FAMILIES
               for name in importlib.import_module(f"hf_maskedav.conversion.{family}").PRESETS]
    assert sorted(listed) == sorted(presets)
    assert f"{len(presets)} released checkpoints" in README and f"{len(presets)} presets" in table
