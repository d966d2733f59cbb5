"""Shared training pieces: metrics, optimizer groups and schedule, atomic checkpoints, pictures, card, Hub, probe."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hf_maskedav import AudioMAEConfig, AudioMAEForAudioClassification, AudioMAEForPreTraining
from hf_maskedav.metrics import ACCURACY, MEAN_AVERAGE_PRECISION, load_metric
from hf_maskedav.training import (
    TrainingState,
    apply_linear_probe,
    cosine_schedule_with_warmup,
    fit_head_by_linear_probe,
    fit_linear_probe,
    latest_checkpoint,
    parameter_groups,
    push_to_hub,
    resolve_resume_path,
    save_checkpoint,
    save_model_and_processors,
    save_loss_curve,
    save_spectrogram_reconstruction,
    spectrogram_reconstruction_images,
    write_model_card,
)


def tiny_config(**overrides):
    fields = dict(
        max_length=32,
        num_mel_bins=32,
        patch_size=8,
        patch_stride=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_type="global",
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=64,
        num_labels=3,
    )
    fields.update(overrides)
    return AudioMAEConfig(**fields)


def test_mean_average_precision_matches_scikit_learn_and_loads_offline(monkeypatch):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 7)).round(1)  # rounding makes ties, which AP must handle as scikit-learn does
    targets = (rng.random((60, 7)) < 0.3).astype(float)
    targets[:, 6] = 0  # a class without positives is left out of the mean
    metric = load_metric("mean_average_precision")
    for start in range(0, 60, 25):  # accumulated batch by batch, as in an evaluation loop
        metric.add_batch(
            predictions=scores[start : start + 25].tolist(), references=targets[start : start + 25].tolist()
        )
    result = metric.compute(return_per_class=True)
    expected = [sklearn_metrics.average_precision_score(targets[:, k], scores[:, k]) for k in range(6)]
    np.testing.assert_allclose(result["average_precision_per_class"][:6], expected, rtol=1e-12)
    assert np.isnan(result["average_precision_per_class"][6])
    assert result["num_classes_without_positives"] == 1
    assert result["mean_average_precision"] == pytest.approx(np.mean(expected))
    perfect = load_metric(MEAN_AVERAGE_PRECISION).compute(
        predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]]
    )
    assert perfect["mean_average_precision"] == 1.0
    assert load_metric(ACCURACY).compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1]) == {"accuracy": 0.75}
    from hf_maskedav.training import accuracy, mean_average_precision

    assert mean_average_precision(scores, targets) == pytest.approx(np.mean(expected))
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == 0.75


def test_parameter_groups_layer_decay_and_no_decay():
    model = AudioMAEForAudioClassification(tiny_config())
    groups = parameter_groups(model, weight_decay=0.05, layer_decay=0.5)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(by_param) == len(named)
    scale = lambda name: by_param[id(named[name])]["lr_scale"]  # noqa: E731
    decay = lambda name: by_param[id(named[name])]["weight_decay"]  # noqa: E731
    # embeddings = layer 0, block i = i + 1, head = L + 1 (official lr_decay.get_layer_id_for_vit), L = 2
    assert scale("audiomae.embeddings.cls_token") == 0.5**3
    assert scale("audiomae.embeddings.patch_embed.proj.weight") == 0.5**3
    block0 = next(n for n in named if n.startswith("audiomae.layers.0.") and n.endswith("qkv_proj.weight"))
    block1 = next(n for n in named if n.startswith("audiomae.layers.1.") and n.endswith("qkv_proj.weight"))
    assert scale(block0) == 0.5**2 and scale(block1) == 0.5 and decay(block0) == 0.05
    assert scale("classifier.weight") == 1.0 and scale("fc_norm.weight") == 1.0
    assert decay("audiomae.embeddings.cls_token") == 0.0 and decay("classifier.bias") == 0.0
    assert decay("fc_norm.weight") == 0.0 and decay("classifier.weight") == 0.05
    plain = parameter_groups(AudioMAEForPreTraining(tiny_config()), weight_decay=0.1)
    assert {g["lr_scale"] for g in plain} == {1.0} and len(plain) == 2


def test_cosine_schedule_with_warmup_and_group_scales():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    optimizer = torch.optim.AdamW(
        [{"params": [params[0]], "lr_scale": 1.0}, {"params": [params[1]], "lr_scale": 0.25}], lr=1.0
    )
    scheduler = cosine_schedule_with_warmup(optimizer, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    first = [lr[0] for lr in lrs]
    assert first[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # linear warm-up
    assert first[4] == pytest.approx(1.0) and first[-1] > 0.1 and all(a >= b for a, b in zip(first[4:], first[5:]))
    assert lrs[9][1] == pytest.approx(0.25 * lrs[9][0])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # the end of the cosine: min_lr_ratio


class _FakeAccelerator:
    """What save_checkpoint needs from an Accelerator, for a single process."""

    is_main_process = True
    num_processes = 1

    def __init__(self):
        self.saved = []

    def wait_for_everyone(self):
        pass

    def save_state(self, path):
        os.makedirs(path)
        with open(os.path.join(path, "model.bin"), "w") as handle:
            handle.write("weights")
        self.saved.append(path)


def test_checkpoints_are_atomic_and_latest_ignores_incomplete(tmp_path):
    accelerator = _FakeAccelerator()
    for step in (2, 4, 6):
        save_checkpoint(
            accelerator, str(tmp_path), TrainingState(completed_steps=step, loss_history=[[1, 0.5]]), total_limit=2
        )
    # written under a temporary name, renamed when complete; the limit keeps the newest two
    assert all(os.path.basename(p).startswith(".checkpoint-") and p.endswith(".tmp") for p in accelerator.saved)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-4", "checkpoint-6"]
    # a crash mid-write leaves a temporary folder or a folder without training_state.json: never "latest"
    os.makedirs(tmp_path / ".checkpoint-8.tmp")
    os.makedirs(tmp_path / "checkpoint-10")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-6")
    assert resolve_resume_path("latest", str(tmp_path)) == str(tmp_path / "checkpoint-6")
    assert resolve_resume_path(None, str(tmp_path)) is None
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_resume_path(str(tmp_path / "checkpoint-10"), str(tmp_path))
    state = TrainingState.from_file(str(tmp_path / "checkpoint-6" / "training_state.json"))
    assert state.completed_steps == 6 and state.loss_history == [[1, 0.5]]
    # saving the same step again replaces it (resumed runs)
    save_checkpoint(accelerator, str(tmp_path), TrainingState(completed_steps=6, epoch=3), total_limit=None)
    assert TrainingState.from_file(str(tmp_path / "checkpoint-6" / "training_state.json")).epoch == 3


class _SavingAccelerator(_FakeAccelerator):
    """What save_model_and_processors needs from an Accelerator, for a single process."""

    save = staticmethod(torch.save)

    @staticmethod
    def unwrap_model(model):
        return model

    @staticmethod
    def get_state_dict(model):
        return model.state_dict()


def test_final_model_saved_beside_checkpoints_file_by_file(tmp_path):
    from hf_maskedav import AudioMAEFeatureExtractor

    folder = tmp_path / "run"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "checkpoint-2" / "training_state.json").write_text("{}")
    (folder / "train_log.jsonl").write_text("{}\n")
    # a sharded model of an earlier save: its shards must not outlive the new single file
    (folder / "model-00001-of-00002.safetensors").write_text("stale")
    (folder / "model.safetensors.index.json").write_text("{}")
    accelerator, extractor = _SavingAccelerator(), AudioMAEFeatureExtractor(num_mel_bins=32, max_length=32)
    first = AudioMAEForPreTraining(tiny_config())
    save_model_and_processors(accelerator, first, str(folder), [extractor], beside_other_files=True)
    assert sorted(os.listdir(folder)) == ["checkpoint-2", "config.json", "model.safetensors",
                                          "preprocessor_config.json", "train_log.jsonl"]
    loaded = AudioMAEForPreTraining.from_pretrained(folder)
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in loaded.state_dict().items())

    class Crashes:
        def save_pretrained(self, path):
            raise OSError("disk full")

    torch.manual_seed(5)
    second = AudioMAEForPreTraining(tiny_config())
    with pytest.raises(OSError, match="disk full"):  # the weights are written, the processor is not
        save_model_and_processors(accelerator, second, str(folder), [Crashes()], beside_other_files=True)
    kept = AudioMAEForPreTraining.from_pretrained(folder)  # the earlier model, whole
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in kept.state_dict().items())
    save_model_and_processors(accelerator, second, str(folder), [extractor], beside_other_files=True)
    assert ".model.tmp" not in os.listdir(folder) and (folder / "checkpoint-2" / "training_state.json").is_file()
    again = AudioMAEForPreTraining.from_pretrained(folder)
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in again.state_dict().items())


@pytest.mark.parametrize("beside_other_files", [True, False])
def test_final_model_save_waits_for_every_process(tmp_path, beside_other_files):
    """Under DDP every process calls save_pretrained, which creates and lists the target folder even where it writes
    nothing; the main process must not move that folder away before the others are done (a CI run's rank 1 failed
    with FileNotFoundError on ``.model.tmp``). Two threads play two processes, the second one late."""
    import threading
    import time

    barrier, errors = threading.Barrier(2, timeout=30), []

    class Late:
        def __init__(self, model):
            self.model = model

        def save_pretrained(self, path, **kwargs):
            time.sleep(0.5)
            return self.model.save_pretrained(path, **kwargs)

    class Process(_SavingAccelerator):
        def __init__(self, rank):
            super().__init__()
            self.is_main_process, self.num_processes, self.rank = rank == 0, 2, rank

        def wait_for_everyone(self):
            barrier.wait()

        def unwrap_model(self, model):
            return Late(model) if self.rank == 1 else model

    folder = tmp_path / "run"
    folder.mkdir()
    model = AudioMAEForPreTraining(tiny_config())

    def save(rank):
        try:
            save_model_and_processors(Process(rank), model, str(folder), beside_other_files=beside_other_files)
        except Exception as error:  # reported below with the rank
            errors.append((rank, error))
            barrier.abort()

    threads = [threading.Thread(target=save, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no empty "run.tmp" made again by the late process
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]  # nor "run/.model.tmp"
    loaded = AudioMAEForPreTraining.from_pretrained(folder)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_pictures_model_card_and_push(tmp_path):
    path = save_loss_curve([[i, 2.0 / (i + 1)] for i in range(1, 60)], str(tmp_path / "loss.png"))
    assert os.path.getsize(path) > 5000
    config = tiny_config()
    model = AudioMAEForPreTraining(config).eval()
    spectrogram = torch.randn(1, 32, 32)
    with torch.no_grad():
        out = model(spectrogram, noise=torch.rand(1, config.num_patches, generator=torch.Generator().manual_seed(0)))
    images = spectrogram_reconstruction_images(spectrogram[0], out.logits[0], out.mask[0], 8, norm_pix_loss=True)
    assert all(v.shape == (32, 32) for v in images.values())
    torch.testing.assert_close(torch.from_numpy(images["original"]), spectrogram[0])
    visible = ~np.isnan(images["masked"])
    np.testing.assert_array_equal(images["reconstruction"][visible], images["original"][visible])
    assert np.isnan(images["masked"]).mean() == pytest.approx(out.mask.mean().item())
    assert os.path.getsize(save_spectrogram_reconstruction(images, str(tmp_path / "rec.png"))) > 5000

    card = open(
        write_model_card(
            str(tmp_path),
            "me/tiny-audiomae",
            "audio-classification",
            "A tiny model.",
            base_model="me/pretrained",
            datasets=["ashraq/esc50"],
            metrics={"accuracy": 0.5},
            hyperparameters={"lr": 1e-3},
            command="accelerate launch x.py",
        )
    ).read()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: audio-classification")
    assert "base_model: me/pretrained" in card and "- ashraq/esc50" in card and "| accuracy | 0.5000 |" in card

    class FakeApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create", repo_id, kwargs))
            return type("Url", (), {"repo_id": repo_id})()

        def upload_folder(self, **kwargs):
            self.calls.append(("upload", kwargs))
            return type("Commit", (), {"commit_url": "https://hub/commit/1"})()

    with pytest.raises(FileNotFoundError, match="config.json"):
        push_to_hub(str(tmp_path), "me/x", api=FakeApi())
    model.save_pretrained(tmp_path)
    api = FakeApi()
    assert push_to_hub(str(tmp_path), "me/x", api=api) == "https://hub/commit/1"
    upload = api.calls[1][1]
    assert upload["repo_id"] == "me/x" and upload["folder_path"] == str(tmp_path)
    assert "checkpoint-*" in upload["ignore_patterns"] and "runs/**" in upload["ignore_patterns"]


def test_linear_probe_fits_separable_and_scores_chance_on_noise():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=gen) * 3
    labels = torch.arange(200) % 4
    features = centers[labels] + torch.randn(200, 16, generator=gen)
    probe = fit_linear_probe(features[:150], labels[:150], multi_label=False, num_classes=4)
    assert apply_linear_probe(probe, features[150:], labels[150:], multi_label=False) > 0.95
    noise = torch.randn(200, 16, generator=gen)
    chance = fit_linear_probe(noise[:150], labels[:150], multi_label=False, num_classes=4)
    assert apply_linear_probe(chance, noise[150:], labels[150:], multi_label=False) < 0.5
    multi = (torch.rand(200, 3, generator=gen) < 0.4).float()
    multi_features = multi @ torch.randn(3, 16, generator=gen) + 0.3 * torch.randn(200, 16, generator=gen)
    fitted = fit_linear_probe(multi_features[:150], multi[:150], multi_label=True, num_classes=3)
    assert apply_linear_probe(fitted, multi_features[150:], multi[150:], multi_label=True) > 0.9


def test_each_split_standardisation_undoes_a_shift_of_the_evaluation_domain(tmp_path):
    """--standardize each_split: a test set whose features are shifted and scaled as a whole (another recording set-up,
    new speakers) defeats a probe standardised with the training statistics and not one that standardises each split
    by its own; the evaluation features get the training split's mean and std; the run records the choice."""
    import argparse
    import json

    from hf_maskedav.training.probe import match_statistics, run_linear_probe

    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=gen) * 3
    labels = torch.arange(400) % 4
    features = centers[labels] + torch.randn(400, 16, generator=gen)
    train_x, train_y, eval_y = features[:200], labels[:200], labels[200:]
    shifted = features[200:] * 0.5 + 6 * torch.randn(16, generator=gen)  # the same classes, another domain
    moved = match_statistics(shifted, train_x)
    torch.testing.assert_close(moved.mean(0), train_x.double().mean(0))
    torch.testing.assert_close(moved.std(0), train_x.double().std(0))

    class Labels:
        multi_label, num_labels = False, 4

    def run(standardize):
        args = argparse.Namespace(readout="mean", standardize=standardize, weight_decays=None, seed=0,
                                  model_name_or_path="m", random_init=False, output_dir=str(tmp_path / standardize))
        return run_linear_probe(train_x, train_y, shifted, eval_y, Labels(), args, 0.0, {}, unit="clips",
                                log=lambda *a: None)

    assert run("train")["eval_accuracy"] < 0.6
    adapted = run("each_split")
    assert adapted["eval_accuracy"] > 0.95 and adapted["standardize"] == "each_split"
    assert json.loads((tmp_path / "each_split" / "probe_results.json").read_text())["standardize"] == "each_split"
    with pytest.raises(ValueError, match="at least 2 clips"):
        match_statistics(shifted[:1], train_x)


class _OneProcess:
    """The parts of an Accelerator that fit_head_by_linear_probe uses, for one process."""

    is_local_main_process = True

    @staticmethod
    def unwrap_model(model):
        return model

    @staticmethod
    def gather_for_metrics(values):
        return values


def test_head_set_by_linear_probe_is_the_probe_on_the_models_own_features():
    from hf_maskedav.data import BadSampleTracker

    torch.manual_seed(0)
    model = AudioMAEForAudioClassification(tiny_config(num_labels=3)).train()
    encoder_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("classifier")}
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(96) % 3
    patterns = torch.randn(3, 32, 32, generator=gen)
    spectrograms = patterns[labels] + 0.5 * torch.randn(96, 32, 32, generator=gen)
    batches = [{"input_values": spectrograms[i:i + 32], "labels": labels[i:i + 32]} for i in range(0, 96, 32)]
    before = model.eval()(input_values=spectrograms).logits.argmax(-1)
    model.train()

    result = fit_head_by_linear_probe(_OneProcess(), model, batches, BadSampleTracker(),
                                      lambda batch: {"input_values": batch["input_values"]}, multi_label=False,
                                      log=lambda *a: None)

    assert model.training  # the mode it was in
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.state_dict().items() if k in encoder_before)
    model.eval()
    with torch.no_grad():
        logits = model(input_values=spectrograms).logits
        pooled = model.fc_norm(model.audiomae(spectrograms.unsqueeze(1)).last_hidden_state[:, 1:].mean(1))
    # the folded head gives the probe's own logits on standardised features
    probe = fit_linear_probe(pooled, labels, multi_label=False, num_classes=3)
    expected = probe["head"]((pooled.double() - probe["mean"]) / probe["std"])
    torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-4)
    accuracy = float((logits.argmax(-1) == labels).float().mean())
    assert result["train_score"] == pytest.approx(accuracy) and accuracy > 0.9 and result["num_train"] == 96
    assert float((before == labels).float().mean()) < 0.7  # a random head does not read them


def _needle_tokens(count: int, length: int, width: int, gen: torch.Generator):
    """Tokens whose class sits in one token of each clip (at a random place, flagged by a large first channel) among
    noise tokens: what a small object is to a mean over the frame."""
    labels = torch.arange(count) % 4
    tokens = torch.randn(count, length, width, generator=gen)
    codes = torch.randn(4, width, generator=gen)
    codes[:, 0] = 0
    where = torch.randint(0, length, (count,), generator=gen)
    tokens[torch.arange(count), where] += 2 * codes[labels]
    tokens[torch.arange(count), where, 0] += 6
    return tokens, labels


def test_attentive_probe_reads_the_one_token_a_mean_dilutes():
    from hf_maskedav.training.probe import fit_attentive_probe

    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    gen = torch.Generator().manual_seed(0)
    tokens, labels = _needle_tokens(400, 64, 16, gen)
    train, test = slice(0, 300), slice(300, None)
    linear = fit_linear_probe(tokens[train].mean(1), labels[train], multi_label=False, num_classes=4)
    attentive = fit_attentive_probe(tokens[train], labels[train], multi_label=False, num_classes=4)
    assert apply_linear_probe(linear, tokens[test].mean(1), labels[test], multi_label=False) < 0.7
    assert apply_linear_probe(attentive, tokens[test], labels[test], multi_label=False) > 0.95
    # the folded keys and late value projection compute a one-query multi-head cross-attention
    head, x = attentive["head"], torch.randn(2, 5, 16, generator=gen)
    with torch.no_grad():
        hidden = head.norm(x)
        values = head.v_proj(hidden).view(2, 5, 4, 4).transpose(1, 2)  # [N, H, L, d]
        weights = (torch.einsum("nld,hd->nhl", hidden, head.key_query) / 2).softmax(-1)
        reference = head.classifier(head.o_proj((weights[..., None] * values).sum(2).reshape(2, 16)))
        assert torch.allclose(head(x), reference, atol=1e-5)
    assert set(attentive["validation_scores"]) == {1e-2, 1e-1, 1.0} and attentive["weight_decay"] in (1e-2, 1e-1, 1.0)
    # deterministic given the seed; noise labels stay near chance
    again, once_more = (fit_attentive_probe(tokens[train], labels[train], multi_label=False, num_classes=4,
                                            weight_decays=(0.1,), steps=100) for _ in range(2))
    assert torch.equal(again["head"].key_query, once_more["head"].key_query)
    noise = fit_attentive_probe(torch.randn(200, 16, 8, generator=gen), labels[:200], multi_label=False,
                                num_classes=4, weight_decays=(0.1,), steps=200)
    assert apply_linear_probe(noise, torch.randn(100, 16, 8, generator=gen), labels[:100], multi_label=False) < 0.45
    with pytest.raises(ValueError, match=r"tokens \[N, L, D\]"):
        fit_attentive_probe(tokens[:, 0], labels, multi_label=False, num_classes=4)
    # multi-label: each of 3 classes present or not, each present one written into a token of its own; scored by mAP
    present = (torch.rand(300, 3, generator=gen) < 0.5).float()
    multi = torch.randn(300, 32, 16, generator=gen)
    codes = torch.randn(3, 16, generator=gen)
    for k in range(3):
        multi[:, 2 * k] += present[:, k, None] * 3 * codes[k]
    fitted = fit_attentive_probe(multi[:200], present[:200], multi_label=True, num_classes=3, weight_decays=(0.1,))
    assert apply_linear_probe(fitted, multi[200:], present[200:], multi_label=True) > 0.9


def test_token_functions_pool_to_the_registered_features():
    """The attentive probe reads the same tokens the registered mean features pool (cls excluded), per family."""
    from hf_maskedav import AudioMAEConfig, AudioMAEModel
    from hf_maskedav.training.probe import resolve_feature_function

    model = AudioMAEModel(AudioMAEConfig(num_mel_bins=16, max_length=16, patch_size=8, patch_stride=8, hidden_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).eval()
    inputs = {"input_values": torch.randn(3, 16, 16)}
    tokens = resolve_feature_function("maskedav_audiomae", readout="attentive")(model, inputs)
    features = resolve_feature_function("maskedav_audiomae")(model, inputs)
    assert tokens.shape == (3, 4, 32) and torch.allclose(tokens.mean(1), features)
    with pytest.raises(ValueError, match="readout must be one of"):
        resolve_feature_function("maskedav_audiomae", readout="max")
    with pytest.raises(ValueError, match="no token function registered for model type 'bert'"):
        resolve_feature_function("bert", readout="attentive")


def test_accelerate_configs_parse():
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    folder = Path(__file__).resolve().parents[1] / "examples" / "accelerate_configs"
    expected = {
        "single_cpu": "NO",
        "cpu_ddp": "MULTI_GPU",
        "multi_gpu": "MULTI_GPU",
        "multi_node": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed_zero2": "DEEPSPEED",
    }
    for name, kind in expected.items():
        path = folder / f"{name}.yaml"
        config = load_config_from_file(str(path))
        assert config.distributed_type.value == kind, name
        assert "accelerate launch --config_file" in path.read_text(), f"{name}.yaml has no launch line"
    assert load_config_from_file(str(folder / "multi_node.yaml")).num_machines == 2
    assert load_config_from_file(str(folder / "deepspeed_zero2.yaml")).deepspeed_config["zero_stage"] == 2
    assert (
        "TransformerLayer"
        in load_config_from_file(str(folder / "fsdp.yaml")).fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
    )
