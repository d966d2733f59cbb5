"""The efficacy protocol (benchmarks/efficacy.py) end to end on a tiny budget, and the small-data recipe's pieces:
per-clip fbank normalisation, the spectrogram jitter augmentation, the hand-made baseline features."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_maskedav import AudioMAEFeatureExtractor
from hf_maskedav.data import spectrogram_jitter
from hf_maskedav.training.probe import pooled_logmel_features, pooled_pixel_features

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import efficacy  # noqa: E402


def _clips():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    loud = (0.5 * np.sin(2 * np.pi * 440 * t[:8000]) + 0.01 * rng.standard_normal(8000)).astype(np.float32)
    quiet = (0.01 * np.sin(2 * np.pi * 880 * t) + 0.001 * rng.standard_normal(16000)).astype(np.float32)
    return [loud, quiet]


def test_per_clip_normalization_standardises_each_clip_and_pads_with_zeros():
    extractor = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=120, normalization="per_clip")
    values = extractor(_clips(), sampling_rate=16000, return_tensors="pt")["input_values"]
    frames_short = (8000 - 400) // 160 + 1  # 48 frames of the half-second clip
    short = values[0, :frames_short]
    assert abs(short.mean().item()) < 1e-4 and abs(short.std(unbiased=False).item() - 1) < 1e-3
    assert torch.all(values[0, frames_short:] == 0)
    # a 40 dB quieter clip lands on the same scale: its level no longer shifts the features
    long = values[1, :98]
    assert abs(long.mean().item()) < 1e-4 and abs(long.std(unbiased=False).item() - 1) < 1e-3
    dataset = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=120)(
        _clips(), sampling_rate=16000, return_tensors="pt")["input_values"]
    assert abs(dataset[0, :48].mean() - dataset[1, :98].mean()) > 0.3  # with fixed statistics it does
    with pytest.raises(ValueError, match="normalization"):
        AudioMAEFeatureExtractor(normalization="per_batch")


def test_per_clip_normalization_is_saved(tmp_path):
    AudioMAEFeatureExtractor(normalization="per_clip").save_pretrained(tmp_path)
    assert AudioMAEFeatureExtractor.from_pretrained(tmp_path).normalization == "per_clip"
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["normalization"] == "per_clip"


def _band_limited_speech_like_clip():
    """Half a second of noise band-limited to 0-3.5 kHz at 16 kHz (what 8-kHz recordings resampled look like): the
    mel bins above 4 kHz hold no energy at all and sit at the fbank's fixed floor."""
    rng = np.random.default_rng(1)
    noise = torch.from_numpy(rng.standard_normal(8000))
    spectrum = torch.fft.rfft(noise)
    spectrum[torch.fft.rfftfreq(8000, 1 / 16000) > 3500] = 0
    envelope = torch.hann_window(8000, periodic=False, dtype=torch.float64) + 0.05  # a louder middle, like a word
    return (0.3 * torch.fft.irfft(spectrum, n=8000) * envelope).float()


def test_top_db_floor_makes_per_clip_features_ignore_the_recording_level():
    clip = _band_limited_speech_like_clip()
    quiet = clip * 0.1  # the same recording 20 dB quieter (its peak still more than top_db above the fixed floor)

    def features(top_db):
        extractor = AudioMAEFeatureExtractor(
            num_mel_bins=64, max_length=48, normalization="per_clip", top_db=top_db, subtract_mean=False)
        return extractor([clip, quiet], sampling_rate=16000, return_tensors="pt")["input_values"]

    loud_plain, quiet_plain = features(None)
    # without a floor the empty band stays at log(eps) while the speech drops by 20 dB: normalised, they differ
    assert (loud_plain - quiet_plain).abs().max() > 0.3
    loud, quiet = features(40.0)
    torch.testing.assert_close(loud, quiet, atol=1e-3, rtol=1e-3)  # with it, a level change is a pure shift
    # the floor is 60 dB (13.8 in natural-log units) under the clip's peak, before the normalisation
    raw = AudioMAEFeatureExtractor(num_mel_bins=64, max_length=48, do_normalize=False, top_db=60.0, subtract_mean=False)
    fbank = raw([clip], sampling_rate=16000, return_tensors="pt")["input_values"][0]
    assert abs((fbank.max() - fbank.min()).item() - 60.0 * np.log(10) / 10) < 1e-3
    with pytest.raises(ValueError, match="top_db"):
        AudioMAEFeatureExtractor(top_db=0)


def test_top_db_is_saved_and_off_by_default(tmp_path):
    assert AudioMAEFeatureExtractor().top_db is None  # the official computation unless asked
    AudioMAEFeatureExtractor(normalization="per_clip", top_db=60.0).save_pretrained(tmp_path)
    assert AudioMAEFeatureExtractor.from_pretrained(tmp_path).top_db == 60.0
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["top_db"] == 60.0


def test_empty_top_mel_bins_finds_band_limited_audio():
    extractor = AudioMAEFeatureExtractor(num_mel_bins=64, max_length=48)
    clip = _band_limited_speech_like_clip()  # nothing above 3.5 kHz
    full_band = torch.from_numpy(np.random.default_rng(2).standard_normal(8000)).float() * 0.1
    band_limited, full, silent = extractor.empty_top_mel_bins([clip, full_band, torch.zeros(8000)], sampling_rate=16000)
    assert full == 0 and silent == 0  # a silent clip says nothing about the band
    # the Kaldi mel bins from 20 Hz to 8 kHz: those starting above ~3.6 kHz (the filter's lower edge) see nothing
    assert 10 <= band_limited <= 16
    with pytest.raises(ValueError, match="8000 Hz"):
        extractor.empty_top_mel_bins([clip], sampling_rate=8000)


@pytest.mark.parametrize("sampling_rate", [16000, 8000])
def test_mel_centre_frequencies_are_where_the_fbank_peaks(sampling_rate):
    from hf_maskedav.audio import kaldi_fbank, mel_centre_frequencies

    centres = mel_centre_frequencies(64, sampling_rate)
    time = torch.arange(sampling_rate // 2, dtype=torch.float64) / sampling_rate
    for index in (5, 30, 55):
        tone = torch.sin(2 * np.pi * float(centres[index]) * time).float()
        fbank = kaldi_fbank(tone[None], sampling_rate=sampling_rate, num_mel_bins=64)[0]
        assert int(fbank.mean(0).argmax()) == index


def test_band_limited_training_audio_gets_a_warning_naming_top_db():
    from hf_maskedav.training.recipes import warn_if_band_limited

    extractor = AudioMAEFeatureExtractor(num_mel_bins=64, max_length=48)
    band_limited = [{"waveform": _band_limited_speech_like_clip() * gain} for gain in (1.0, 0.3, 0.1)]
    full_band = [{"waveform": torch.from_numpy(np.random.default_rng(i).standard_normal(8000)).float()} for i in range(3)]
    said = []
    assert warn_if_band_limited(extractor, band_limited, said.append) >= 10
    assert len(said) == 1 and "band-limited audio" in said[0] and "--top_db 60" in said[0] and "3 of 3" in said[0]
    said.clear()
    assert warn_if_band_limited(extractor, full_band, said.append) == 0 and said == []
    extractor.top_db = 60.0  # the floor is already set: nothing to say
    assert warn_if_band_limited(extractor, band_limited, said.append) == 0 and said == []
    extractor.top_db = None  # video items carry their audio windows as "waveforms"
    video_items = [{"waveforms": [item["waveform"]], "pixel_values": None} for item in band_limited]
    assert warn_if_band_limited(extractor, video_items, said.append) >= 10 and len(said) == 1
    from hf_maskedav import AVMAEFeatureExtractor  # AV-MAE's log-mel has no floor option: nothing to check or say

    assert warn_if_band_limited(AVMAEFeatureExtractor(), video_items, said.append) == 0 and len(said) == 1

    class Stream(torch.utils.data.IterableDataset):  # a stream has no length: its first clips are read, no more
        def __init__(self, items):
            self.items, self.read = items, 0

        def __iter__(self):
            for item in self.items:
                self.read += 1
                yield item

    stream = Stream(band_limited * 10)
    assert warn_if_band_limited(extractor, stream, said.append, num_clips=4) >= 10 and stream.read == 4
    assert len(said) == 2 and "4 of 4" in said[1]
    assert warn_if_band_limited(extractor, Stream([]), said.append) == 0 and len(said) == 2  # an empty stream: no clip


def test_spectrogram_jitter_moves_the_clip_and_keeps_the_padding():
    extractor = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=120, normalization="per_clip")
    values = extractor(_clips(), sampling_rate=16000, return_tensors="pt")["input_values"]
    assert spectrogram_jitter(values) is values  # everything off: unchanged
    torch.manual_seed(0)
    shifted = [spectrogram_jitter(values, time_shift=True) for _ in range(8)]
    starts = {int((s[0].abs().sum(-1) > 0).nonzero()[0]) for s in shifted}
    assert len(starts) > 1 and all(0 <= s <= 120 - 48 for s in starts)
    for s in shifted:  # the clip itself is moved, not changed
        start = int((s[0].abs().sum(-1) > 0).nonzero()[0])
        torch.testing.assert_close(s[0, start:start + 48], values[0, :48])
    stretched = spectrogram_jitter(values, time_stretch=0.5, generator=torch.Generator().manual_seed(3))
    length = int((stretched[0].abs().sum(-1) > 0).sum())
    assert length != 48 and 48 / 1.5 - 1 <= length <= 48 * 1.5 + 1
    pitched = spectrogram_jitter(values, mel_shift=3.0, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(pitched[0, :48], values[0, :48])
    assert torch.all(pitched[0, 48:] == 0)
    with pytest.raises(ValueError, match="batch, frames, mel_bins"):
        spectrogram_jitter(values[0], time_shift=True)


def test_handmade_features_pool_the_clip_only():
    extractor = AudioMAEFeatureExtractor(num_mel_bins=32, max_length=120)
    values = extractor(_clips(), sampling_rate=16000, return_tensors="pt")["input_values"]
    features = pooled_logmel_features(None, {"input_values": values})
    assert features.shape == (2, 64)
    torch.testing.assert_close(features[0, :32], values[0, :48].mean(0))  # padding frames left out
    pixels = torch.rand(3, 4, 3, 16, 16)
    assert pooled_pixel_features(None, {"pixel_values": pixels}).shape == (3, 3 * 3 * 16)


def test_protocol_end_to_end_on_a_tiny_budget(tmp_path):
    """Every step of the audio protocol runs the real scripts and lands in one table with its command; the
    pretraining budget is a cap that the user's own length (here --max_train_steps) ends earlier."""
    out = tmp_path / "efficacy"
    tiny = "--demo_num_clips 32"
    code = efficacy.main([
        "--modality", "audio", "--pretrain_minutes", "5", "--finetune_minutes", "0.02", "--seeds", "0",
        "--skip", "scratch", "--output_dir", str(out),
        "--pretrain_args", f"{tiny} --per_device_train_batch_size 8 --num_threads 1 --max_train_steps 2",
        "--finetune_args", f"{tiny} --per_device_train_batch_size 8 --num_threads 1 --time_shift --mel_shift 2",
        "--probe_args", tiny,
    ])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    names = [c["name"] for c in results["commands"]]
    assert names == ["pretrain", "probe_pretrained", "probe_random_seed0", "handmade_audio", "finetune_pretrained"]
    assert 0 <= results["probes"]["encoder"]["pretrained"] <= 1 and len(results["probes"]["encoder"]["random"]) == 1
    assert 0 <= results["finetune"]["finetune_pretrained"] <= 1
    summary = json.loads((out / "pretrain" / "train_summary.json").read_text())
    assert summary["max_train_minutes"] == 5 and summary["completed_steps"] == 2
    assert not summary["stopped_by_time_budget"]
    table = (out / "results.md").read_text()
    assert table.count("\n| ") == 1 + len(names)  # header + one row per command
    assert "python examples/finetune_audio.py" in table and "--max_train_minutes 0.02" in table
    assert "pretraining (2 steps, labels unused)" in table


def test_protocol_refuses_a_used_output_dir(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(SystemExit, match="not empty"):
        efficacy.main(["--modality", "audio", "--output_dir", str(tmp_path)])


def _script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("modality", sorted(efficacy.SCRIPTS))
def test_finetune_starts_parse_with_each_fine_tuning_script(modality, tmp_path):
    """Both fine-tuning runs' options are ones the modality's script accepts (the video protocol once passed the audio
    script's --feature_extractor_name to finetune_video.py, which only failed after 15 minutes of pretraining)."""
    script = _script(efficacy.SCRIPTS[modality]["finetune"].removesuffix(".py"))
    folder = str(tmp_path / "pretrain")
    for name, start in efficacy.finetune_starts(modality, folder):
        args = script.parse_args([*start, "--output_dir", str(tmp_path / name), "--max_train_minutes", "1"])
        if name == "finetune_scratch":
            processor = efficacy.PROCESSOR_OPTION[modality].removeprefix("--")
            assert args.config_name == folder and getattr(args, processor) == folder
        else:
            assert args.model_name_or_path == folder


def test_finetune_seeds_alternate_the_starts_and_compare_their_means(tmp_path):
    folder = str(tmp_path / "pretrain")
    default = efficacy.finetune_runs("audio", folder, None)
    assert [(name, kind) for name, kind, _, _ in default] == [("finetune_pretrained",) * 2, ("finetune_scratch",) * 2]
    assert all(seed is None and "--seed" not in options for _, _, seed, options in default)  # the script's own seed
    runs = efficacy.finetune_runs("audio", folder, [1, 2])
    assert [name for name, _, _, _ in runs] == ["finetune_pretrained_seed1", "finetune_scratch_seed1",
                                            "finetune_pretrained_seed2", "finetune_scratch_seed2"]
    assert [options[-2:] for _, _, _, options in runs] == [["--seed", "1"], ["--seed", "1"], ["--seed", "2"], ["--seed", "2"]]
    assert [seed for _, _, seed, _ in runs] == [1, 1, 2, 2]
    script = _script("finetune_audio")
    for name, _, _, options in runs:
        assert script.parse_args([*options, "--output_dir", str(tmp_path / name)]).seed == int(name[-1])
    compared = efficacy.compare_seeds([0.736, 0.792, 0.770], [0.687, 0.598, 0.694])
    assert compared["pretrained"] == pytest.approx(0.766) and compared["scratch"] == pytest.approx(0.65967, abs=1e-5)
    assert compared["gap"] == pytest.approx(10.63, abs=0.01)
    assert compared["gaps"] == pytest.approx([4.9, 19.4, 7.6])
    assert efficacy.compare_seeds([0.7], [0.6]) is None and efficacy.compare_seeds([0.7, None], [0.6, 0.5]) is None


def _stand_in_scripts(monkeypatch, output_of):
    """Replace the protocol's runner: each run writes what its script would into its --output_dir (probes
    ``probe_results.json``, retrieval ``retrieval_results.json``, training runs ``train_summary.json``), the content from ``output_of(name, script,
    options)``, and is recorded as a command; the real scripts run in the end-to-end test above."""

    def fake_run(self, name, script, options, launched=False):
        folder = Path(options[options.index("--output_dir") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        written = ("probe_results.json" if name.startswith(("probe", "handmade"))
                   else "retrieval_results.json" if name.startswith("retrieval") else "train_summary.json")
        (folder / written).write_text(json.dumps(output_of(name, script, options)))
        self.commands.append((name, self.command(script, options, launched)[1], 1.0))
        return 1.0

    monkeypatch.setattr(efficacy.Runner, "__call__", fake_run)


def test_protocol_table_gives_each_seed_and_the_means(tmp_path, monkeypatch):
    """The table with --finetune_seeds: one row per run (its seed named), then the means."""
    scores = {"finetune_pretrained_seed1": 0.75, "finetune_scratch_seed1": 0.60,
              "finetune_pretrained_seed2": 0.70, "finetune_scratch_seed2": 0.66}
    order = []

    def output_of(name, script, options):
        order.append(name)
        if name == "pretrain":
            return {"completed_steps": 10, "first_loss": 1.0, "final_loss_mean_last_10": 0.5}
        if name.startswith("probe"):
            return {"eval_accuracy": 0.5}
        assert options[options.index("--seed") + 1] == name[-1]
        return {"completed_steps": 7, "test_accuracy": scores[name]}

    _stand_in_scripts(monkeypatch, output_of)
    out = tmp_path / "efficacy"
    assert efficacy.main(["--modality", "audio", "--skip", "random", "handmade", "--finetune_seeds", "1", "2",
                          "--output_dir", str(out)]) == 0
    assert order == ["pretrain", "probe_pretrained", *scores]  # the two starts alternate, seed by seed
    table = (out / "results.md").read_text()
    assert "| fine-tuning from pretraining, seed 2 (7 steps) | **70.0%** |" in table
    assert "| fine-tuning from scratch, seed 1 (7 steps) | 60.0% |" in table
    assert ("| fine-tuning, mean of 2 seeds: pretraining vs scratch | **72.5%** vs 63.0% (+9.5 points; per seed +15.0, "
            "+4.0) | | |") in table
    means = json.loads((out / "results.json").read_text())["finetune"]["seed_means"]
    assert means["gaps"] == pytest.approx([15.0, 4.0]) and means["gap"] == pytest.approx(9.5)


def _probe_commands(monkeypatch, tmp_path, options):
    """Run the protocol's probes (seed 0, no fine-tuning) with stand-in scripts: every probe's options as its script
    parses them, by run name, and the table."""
    probes = {}

    def output_of(name, script, script_options):
        if name == "pretrain":
            return {"completed_steps": 3}
        probes[name] = _script(script.removesuffix(".py")).parse_args(script_options)
        return {"eval_accuracy": 0.5}

    _stand_in_scripts(monkeypatch, output_of)
    out = tmp_path / "efficacy"
    assert efficacy.main([*options, "--seeds", "0", "--skip", "finetune", "--output_dir", str(out)]) == 0
    return probes, (out / "results.md").read_text()


def test_probe_readout_goes_to_the_encoder_probes_only(tmp_path, monkeypatch):
    """--probe_readout attentive reaches the pretrained and random-init probes (rows named so); the hand-made baseline,
    a pooled feature, stays a linear probe; every probe command parses with the probe script."""
    probes, table = _probe_commands(monkeypatch, tmp_path, ["--modality", "video", "--probe_readout", "attentive"])
    assert {name: args.readout for name, args in probes.items()} == {
        "probe_pretrained": "attentive", "probe_random_seed0": "attentive", "handmade_video": "mean"}
    assert "| attentive probe, pretrained | **50.0%** |" in table and "| attentive probe, random init seed 0 |" in table


@pytest.mark.parametrize("modality", sorted(efficacy.SCRIPTS))
def test_step_budgets_replace_the_clock(modality, tmp_path, monkeypatch):
    """--pretrain_steps / --finetune_steps give each script --max_train_steps and no minute cap (a result that compares
    between machines); minutes given as well stay a cap; the table's header names the budgets."""
    parsed = {}

    def output_of(name, script, options):
        if name.startswith("retrieval"):
            return {f"{key}R@{k}": 0.1 for key in ("audio_to_video_", "chance_") for k in (1, 5, 10)}
        if not name.startswith(("probe", "handmade")):
            parsed[name] = _script(script.removesuffix(".py")).parse_args(options)
        return {"completed_steps": 3, "test_accuracy": 0.5, "eval_accuracy": 0.5,
                "eval_history": [[3, {"audio_visual": 0.5}]]}

    _stand_in_scripts(monkeypatch, output_of)
    out = tmp_path / "efficacy"
    assert efficacy.main(["--modality", modality, "--skip", "random", "handmade", "--pretrain_steps", "20000",
                          "--finetune_steps", "1900", "--finetune_minutes", "9", "--output_dir", str(out)]) == 0
    budgets = {name: (args.max_train_steps, args.max_train_minutes) for name, args in parsed.items()}
    assert budgets == {"pretrain": (20000, None), "finetune_pretrained": (1900, 9.0), "finetune_scratch": (1900, 9.0)}
    assert "budgets: pretraining 20,000 steps, fine-tuning 1,900 steps within 9 min" in (out / "results.md").read_text()
    # without steps, the clock's defaults
    assert (efficacy.parse_args(["--modality", modality]).pretrain_minutes,
            efficacy.parse_args(["--modality", modality]).finetune_minutes) == (15.0, 5.0)
    with pytest.raises(SystemExit):
        efficacy.parse_args(["--modality", modality, "--pretrain_steps", "0"])


def test_launch_args_reach_the_training_runs_only(tmp_path, monkeypatch):
    """--launch_args runs pretraining and both fine-tunings through `accelerate launch` (several GPUs, or CPU processes),
    probes stay one plain process; the table shows each command as run."""
    _stand_in_scripts(monkeypatch, lambda name, script, options: {"completed_steps": 3, "test_accuracy": 0.5,
                                                                  "eval_accuracy": 0.5})
    out = tmp_path / "efficacy"
    assert efficacy.main(["--modality", "audio", "--seeds", "0", "--skip", "handmade", "--launch_args",
                          "--multi_gpu --num_processes 2", "--output_dir", str(out)]) == 0
    commands = {c["name"]: c["command"] for c in json.loads((out / "results.json").read_text())["commands"]}
    launched = "accelerate launch --multi_gpu --num_processes 2 examples/"
    assert commands["pretrain"].startswith(launched + "pretrain_audio.py ")
    assert commands["finetune_pretrained"].startswith(launched + "finetune_audio.py ")
    assert commands["finetune_scratch"].startswith(launched + "finetune_audio.py ")
    assert commands["probe_pretrained"].startswith("python examples/linear_probe.py ")
    assert commands["probe_random_seed0"].startswith("python examples/linear_probe.py ")
    runner = efficacy.Runner(str(tmp_path), "--num_processes 2")
    argv, _ = runner.command("pretrain_audio.py", ["--seed", "1"], launched=True)
    assert argv[:5] == [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2"]
    assert argv[5:] == [str(ROOT / "examples" / "pretrain_audio.py"), "--seed", "1"]
    assert runner.command("linear_probe.py", [])[0] == [sys.executable, str(ROOT / "examples" / "linear_probe.py")]
    assert efficacy.Runner(str(tmp_path)).command("pretrain_audio.py", [], launched=True)[0][0] == sys.executable


def test_probe_standardize_reaches_every_linear_probe(tmp_path, monkeypatch):
    """--probe_standardize each_split goes to the pretrained, random-init and hand-made probes (rows say so); the probe
    scripts refuse it with the attentive read-out, and so does the protocol."""
    probes, table = _probe_commands(monkeypatch, tmp_path, ["--modality", "audio", "--probe_standardize", "each_split"])
    assert {name: args.standardize for name, args in probes.items()} == {
        "probe_pretrained": "each_split", "probe_random_seed0": "each_split", "handmade_audio": "each_split"}
    assert "| linear probe, each split standardised by its own statistics, pretrained | **50.0%** |" in table
    assert "| hand-made baseline, each split standardised by its own statistics: pooled log-mel" in table
    with pytest.raises(SystemExit):
        efficacy.parse_args(["--modality", "audio", "--probe_standardize", "each_split", "--probe_readout",
                             "attentive"])
    for script in ("linear_probe", "linear_probe_video"):
        with pytest.raises(SystemExit):
            _script(script).parse_args(["--model_name_or_path", "x", "--standardize", "each_split",
                                        "--readout", "attentive"])


def test_finetune_score_reads_each_script_summary():
    """finetune_audiovisual.py logs one score per head ([step, {head: score}]); the protocol once formatted that dict
    as a number and crashed after the pretrained run."""
    history = [[37, {"audio_visual": 0.15, "audio": 0.17, "video": 0.11}],
               [670, {"audio_visual": 0.53, "audio": 0.49, "video": 0.22}]]
    assert efficacy.finetune_score("audio_visual", {"eval_history": history}) == (
        0.53, {"audio_visual": 0.53, "audio": 0.49, "video": 0.22})
    assert efficacy.finetune_score("audio_visual", {"eval_history": [[5, {"video": 0.3}]]}) == (0.3, {"video": 0.3})
    assert efficacy.finetune_score("audio_visual", {"eval_history": []}) == (None, {})
    assert efficacy.finetune_score("video", {"test_accuracy": 0.32}) == (0.32, {})


@pytest.mark.parametrize("name", ["pretrain_audio", "finetune_audio"])
def test_recipe_flag_sets_defaults_and_explicit_options_win(name):
    from hf_maskedav.training.recipes import RECIPES

    module = _script(name)
    plain, recipe = module.parse_args([]), module.parse_args(["--recipe", "small-data"])
    for key, value in RECIPES["small-data"][name].items():
        assert getattr(recipe, key) == value
        assert getattr(plain, key) != value or key == "mask_ratio"  # the recipe really changes the defaults
    assert module.parse_args(["--recipe", "small-data", "--learning_rate", "5e-4"]).learning_rate == 5e-4
    with pytest.raises(SystemExit):
        module.parse_args(["--recipe", "no-such-recipe"])
