"""MAViL: common model checks, both pretraining stages (and how the stage-2 teacher is held), the refused AV-MAE
switches, the saved state-dict layout, heads, retrieval, conversion helpers and initialisation from Audio-MAE. Tiny
sizes throughout (a few seconds on 2 CPU cores). (Georgescu et al.'s AV-MAE variants are tested with models/avmae.)"""

import copy

import pytest
import torch

from hf_maskedav import (
    AudioMAEConfig,
    AudioMAEModel,
    MAViLConfig,
    MAViLForAudioVisualClassification,
    MAViLForPreTraining,
    MAViLModel,
)
from hf_maskedav.layers import FixedPositionTable
from hf_maskedav.models.mavil import MAViLForStage2PreTraining

from common import ModelTesterMixin

N = 4  # batch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; several threads on a busy 2-core machine are ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**overrides):
    fields = dict(
        max_length=32, num_mel_bins=16, audio_patch_size=8,  # 4 x 2 audio tokens
        num_frames=4, image_size=16, video_patch_size=8, tubelet_size=2,  # 2 x 2 x 2 video tokens
        hidden_size=32, num_attention_heads=4, intermediate_size=64,
        audio_num_hidden_layers=1, video_num_hidden_layers=1, fusion_num_hidden_layers=1,
        decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
        audio_mask_ratio=0.5, video_mask_ratio=0.5, num_labels=3,
    )
    fields.update(overrides)
    return MAViLConfig(**fields)


def batch(config, seed=0, n=N):
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn(n, config.max_length, config.num_mel_bins, generator=gen)
    video = torch.randn(n, config.num_frames, config.num_channels, config.image_size, config.image_size, generator=gen)
    return audio, video


def noises(config, seed=1, n=N):
    gen = torch.Generator().manual_seed(seed)
    la, lv = config.num_audio_patches, config.num_video_patches
    return {
        "audio_noise": torch.rand(n, la, generator=gen),
        "video_noise": torch.rand(n, lv, generator=gen),
        "audio_noise_view2": torch.rand(n, la, generator=gen),
        "video_noise_view2": torch.rand(n, lv, generator=gen),
    }


class MAViLTesterBase(ModelTesterMixin):
    all_model_classes = (MAViLModel, MAViLForPreTraining, MAViLForAudioVisualClassification)
    overrides: dict = {}

    def get_config(self):
        return tiny_config(mask_time_prob=0.25, mask_freq_prob=0.5, mask_video_prob=0.5, **self.overrides)

    def get_inputs(self, model_class):
        config = self.get_config()
        audio, video = batch(config, n=2)
        inputs = {"input_values": audio, "pixel_values": video}
        pinned = noises(config, n=2)
        if model_class is MAViLModel:
            inputs.update(audio_noise=pinned["audio_noise"], video_noise=pinned["video_noise"])
        elif model_class is MAViLForPreTraining:
            inputs.update(pinned)
        else:
            gen = torch.Generator().manual_seed(2)
            inputs.update(
                labels=torch.tensor([0, 2]),
                time_noise=torch.rand(2, config.audio_grid_size[0], generator=gen),
                freq_noise=torch.rand(2, config.audio_grid_size[1], generator=gen),
                video_noise=torch.rand(2, config.num_video_patches, generator=gen),
            )
        return inputs


class TestMAViL(MAViLTesterBase):
    overrides = {"contrastive_projection_dim": 16}


class TestMAViLStoredTables(MAViLTesterBase):
    all_model_classes = (MAViLForAudioVisualClassification,)
    overrides = {"position_tables": "stored", "audio_position_table": "time_major", "classifier_heads": ["audio_visual"]}


# ---------------------------------------------------------------------------------------------------------------------
# Training: every loss term goes down
# ---------------------------------------------------------------------------------------------------------------------


def _train(model, steps, inputs, lr=3e-3):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = []
    model.train()
    for _ in range(steps):
        out = model(**inputs)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in out.items() if k.endswith("loss") and v is not None})
    return history


def _decreased(history, name):
    first = sum(h[name] for h in history[:3]) / 3
    last = sum(h[name] for h in history[-3:]) / 3
    return last < first, (first, last)


def test_stage1_then_stage2_every_loss_term_decreases():
    torch.manual_seed(0)
    config = tiny_config(inter_contrastive_weight=1.0, intra_contrastive_weight=1.0)
    audio, video = batch(config)
    inputs = {"input_values": audio, "pixel_values": video, **noises(config)}
    stage1 = MAViLForPreTraining(config)
    history = _train(stage1, 15, inputs)
    terms = [
        "loss", "audio_reconstruction_loss", "video_reconstruction_loss", "inter_contrastive_loss",
        "audio_intra_contrastive_loss", "video_intra_contrastive_loss",
    ]
    assert set(terms) <= set(history[0])
    for name in terms:
        ok, values = _decreased(history, name)
        assert ok, f"stage 1 {name} did not decrease: {values}"

    # stage 2: a frozen copy of the stage-1 model is the teacher; the student predicts its fused features (a fresh
    # student here, so that every term starts far from its minimum)
    student = MAViLForPreTraining.from_previous_stage(stage1, init_from_previous=False)
    assert type(student) is MAViLForStage2PreTraining and student.config.reconstruction_target == "teacher"
    teacher_before = copy.deepcopy(student.teacher.state_dict())
    history = _train(student, 12, inputs)
    for name in terms:
        ok, values = _decreased(history, name)
        assert ok, f"stage 2 {name} did not decrease: {values}"
    for key, value in student.teacher.state_dict().items():  # the teacher stays frozen
        torch.testing.assert_close(value, teacher_before[key], msg=key)
    assert not any(k.startswith(("teacher", "_teacher")) for k in student.state_dict())


# ---------------------------------------------------------------------------------------------------------------------
# Pretraining semantics
# ---------------------------------------------------------------------------------------------------------------------


def test_pretraining_masks_and_shapes():
    config = tiny_config(audio_mask_ratio=0.75, video_mask_ratio=0.5)
    model = MAViLForPreTraining(config).eval()
    audio, video = batch(config)
    pinned = noises(config)
    out = model(audio, video, **pinned)
    la, lv = config.num_audio_patches, config.num_video_patches
    assert out.audio_logits.shape == (N, la, config.audio_patch_dim)
    assert out.video_logits.shape == (N, lv, config.video_patch_dim)
    assert torch.equal(out.audio_mask.sum(1), torch.full((N,), float(la - int(la * 0.25))))
    assert torch.equal(out.video_mask.sum(1), torch.full((N,), float(lv - int(lv * 0.5))))
    # the smallest noise is kept, 1 = masked
    kept = torch.argsort(pinned["audio_noise"], dim=1)[:, : int(la * 0.25)]
    assert (out.audio_mask.gather(1, kept) == 0).all()
    # fused sequence = [cls_a, kept audio, cls_v, kept video]
    assert out.last_hidden_state.shape == (N, 1 + int(la * 0.25) + 1 + int(lv * 0.5), config.hidden_size)
    again = model(audio, video, **pinned)
    torch.testing.assert_close(again.loss, out.loss)
    # the reconstruction loss is the MSE over masked tokens only, against per-patch normalised targets
    from hf_maskedav.layers import normalize_per_patch

    target = normalize_per_patch(model.patchify_audio(audio[:, None]))
    per_token = (out.audio_logits - target).pow(2).mean(-1)
    torch.testing.assert_close(out.audio_reconstruction_loss, (per_token * out.audio_mask).sum() / out.audio_mask.sum())


def test_loss_terms_switch_off_with_zero_weight():
    config = tiny_config(inter_contrastive_weight=0.0, intra_contrastive_weight=0.0)
    model = MAViLForPreTraining(config)
    out = model(*batch(config))
    assert out.inter_contrastive_loss is None and out.audio_intra_contrastive_loss is None
    assert model.loss_terms == ("audio_reconstruction_loss", "video_reconstruction_loss")
    both = MAViLForPreTraining(tiny_config())
    assert set(both.loss_terms) == {k for k, v in both(*batch(config)).items() if k.endswith("_loss") and v is not None}
    torch.testing.assert_close(out.loss, out.audio_reconstruction_loss + out.video_reconstruction_loss)


def test_total_loss_is_weighted_sum():
    config = tiny_config(
        audio_reconstruction_weight=0.3, video_reconstruction_weight=0.7, inter_contrastive_weight=0.2,
        intra_contrastive_weight=0.1,
    )
    out = MAViLForPreTraining(config)(*batch(config), **noises(config))
    expected = (
        0.3 * out.audio_reconstruction_loss + 0.7 * out.video_reconstruction_loss + 0.2 * out.inter_contrastive_loss
        + 0.1 * (out.audio_intra_contrastive_loss + out.video_intra_contrastive_loss)
    )
    torch.testing.assert_close(out.loss, expected)


def test_avmae_switches_are_refused_with_a_pointer_to_avmae():
    """Georgescu et al.'s AV-MAE lives in models/avmae: a config that asks MAViL for one of its switches fails,
    naming the switch; MAViL's own value (what every saved MAViL config carries) loads and is dropped."""
    for name, value in (
        ("decoder_type", "joint"), ("decoder_type", "shared"), ("inpainting", "audio_to_video"),
        ("share_modality_encoders", True), ("use_cls_token", False), ("use_modality_embeddings", True),
    ):
        with pytest.raises(ValueError, match=rf"{name} is a switch of .*AVMAEConfig"):
            tiny_config(**{name: value})
    config = tiny_config(decoder_type="separate", inpainting="none", share_modality_encoders=False, use_cls_token=True,
                         use_modality_embeddings=False)
    assert not {"decoder_type", "inpainting", "share_modality_encoders", "use_cls_token"} & set(config.to_dict())
    assert config.to_dict() == tiny_config().to_dict()


def test_encoder_variants():
    early = MAViLModel(tiny_config(audio_num_hidden_layers=0, video_num_hidden_layers=0, fusion_num_hidden_layers=2))
    late = MAViLModel(tiny_config(fusion_num_hidden_layers=0))
    config = tiny_config()
    audio, video = batch(config)
    for model in (early, late):
        out = model(audio, video, output_hidden_states=True)
        assert out.last_hidden_state.shape == (N, 2 + config.num_audio_patches + config.num_video_patches, 32)
    # late fusion: the fused output is just the two encoder outputs side by side
    out = late(audio, video)
    torch.testing.assert_close(out.last_hidden_state, torch.cat([out.audio_last_hidden_state, out.video_last_hidden_state], 1))
    with pytest.raises(ValueError, match="read both modalities"):
        late(audio, fuse=True)


def test_saved_layout_is_the_released_one():
    """The state-dict keys every saved MAViL checkpoint has (converted av-superb files, our pretraining outputs): the
    classes may be rearranged, the keys may not (a load-time rename would be needed; none is)."""
    config = tiny_config(contrastive_projection_dim=8, position_tables="stored")
    keys = set(MAViLForPreTraining(config).state_dict())
    layer = ["norm1", "attention.qkv_proj", "attention.o_proj", "norm2", "mlp.fc1", "mlp.fc2"]
    expected = {f"mavil.{m}_embeddings.{k}" for m in ("audio", "video")
                for k in ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "position_embeddings.table")}
    expected |= {f"mavil.{stack}.0.{part}.{p}" for stack in ("audio_layers", "video_layers", "fusion_layers")
                 for part in layer for p in ("weight", "bias")}
    for m in ("audio", "video"):
        expected |= {f"decoder.{m}.{k}" for k in ("embed.weight", "embed.bias", "mask_token", "pixel_head.weight",
                                                  "pixel_head.bias")}
        expected |= {f"decoder.{m}_layers.0.{part}.{p}" for part in layer for p in ("weight", "bias")}
        expected |= {f"decoder.{m}_norm.{p}" for p in ("weight", "bias")} | {f"{m}_projection.{p}" for p in ("weight", "bias")}
    assert keys == expected
    # an old-layout state dict (the same names) loads strictly into every class, heads included
    MAViLForPreTraining(config).load_state_dict({k: v.clone() for k, v in MAViLForPreTraining(config).state_dict().items()})
    stage2 = MAViLForPreTraining.from_previous_stage(MAViLForPreTraining(config))
    assert {k for k in stage2.state_dict() if "head" in k} == {
        f"decoder.{m}.teacher_head.{p}" for m in ("audio", "video") for p in ("weight", "bias")
    }


def test_stage2_needs_a_teacher_and_checks_it(tmp_path):
    config = tiny_config(reconstruction_target="teacher")
    student = MAViLForStage2PreTraining(config)
    with pytest.raises(ValueError, match="needs a teacher"):
        student(*batch(config))
    assert MAViLForStage2PreTraining(tiny_config()).config.reconstruction_target == "teacher"  # the class is stage 2
    with pytest.raises(ValueError, match="MAViLForStage2PreTraining"):
        MAViLForPreTraining(config)(*batch(config))  # stage 1 refuses a stage-2 configuration
    teacher_model = MAViLForPreTraining(tiny_config())
    teacher_model.save_pretrained(tmp_path / "teacher")
    from_path = MAViLForStage2PreTraining(config, teacher=str(tmp_path / "teacher"))
    assert isinstance(from_path.teacher, MAViLModel) and not from_path.teacher.training
    assert all(not p.requires_grad for p in from_path.teacher.parameters())
    out = from_path(*batch(config))
    assert out.audio_logits.shape[-1] == config.hidden_size
    with pytest.raises(ValueError, match="shares parameters"):
        student.set_teacher(student.mavil)
    with pytest.raises(ValueError, match="-d"):
        student.set_teacher(MAViLModel(tiny_config(hidden_size=48, num_attention_heads=4)))
    # average of the last k normalised fusion layers
    deep = tiny_config(reconstruction_target="teacher", teacher_num_target_layers=2, fusion_num_hidden_layers=2)
    model = MAViLForStage2PreTraining(deep, teacher=MAViLForPreTraining(tiny_config(fusion_num_hidden_layers=2)))
    assert torch.isfinite(model(*batch(deep)).loss)
    # the next iteration: the previous student becomes the teacher
    iteration2 = MAViLForPreTraining.from_previous_stage(from_path)
    for key, value in from_path.state_dict().items():
        torch.testing.assert_close(iteration2.state_dict()[key], value)


def test_stage2_teacher_is_held_outside_the_student(tmp_path):
    """Not saved with the student, never trained, moved and cast with it, eval whatever the student's mode; a saved
    student loads back (as MAViLForPreTraining too: features, retrieval, the next stage), whose stage-1 forward
    refuses it."""
    student = MAViLForPreTraining.from_previous_stage(MAViLForPreTraining(tiny_config()))
    teacher = student.teacher
    assert not any("teacher." in k or k.startswith("_teacher") for k in student.state_dict())
    assert {id(p) for p in teacher.parameters()}.isdisjoint(id(p) for p in student.parameters())
    assert all(not p.requires_grad for p in teacher.parameters())
    student.train()
    assert student.training and not teacher.training
    student.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in teacher.parameters())
    student.to(torch.float32)
    config = student.config
    audio, video = batch(config)
    student(audio, video, **noises(config)).loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    student.save_pretrained(tmp_path / "student")
    assert set(load_safetensors(tmp_path / "student")) == set(student.state_dict())
    reloaded = MAViLForStage2PreTraining.from_pretrained(tmp_path / "student")
    assert reloaded.teacher is None
    as_stage1 = MAViLForPreTraining.from_pretrained(tmp_path / "student")
    for key, value in student.state_dict().items():
        torch.testing.assert_close(as_stage1.state_dict()[key], value)
    with pytest.raises(ValueError, match="MAViLForStage2PreTraining"):
        as_stage1(audio, video)


def load_safetensors(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# ---------------------------------------------------------------------------------------------------------------------
# Heads and retrieval
# ---------------------------------------------------------------------------------------------------------------------


def test_heads_follow_the_inputs():
    config = tiny_config()
    model = MAViLForAudioVisualClassification(config).eval()
    audio, video = batch(config)
    with torch.no_grad():
        both = model(audio, video)
        audio_only = model(input_values=audio)
        video_only = model(pixel_values=video)
    torch.testing.assert_close(both.logits, both.audio_visual_logits)
    torch.testing.assert_close(audio_only.logits, both.audio_logits)  # uni-modal heads do not use fusion
    torch.testing.assert_close(video_only.logits, both.video_logits)
    assert audio_only.video_logits is None and audio_only.audio_visual_logits is None
    # the A+V head: LayerNorm + linear on [mean fused audio tokens, mean fused video tokens], cls excluded
    with torch.no_grad():
        fused = model.mavil(audio, video)
        la = 1 + config.num_audio_patches
        pooled = torch.cat([fused.last_hidden_state[:, 1:la].mean(1), fused.last_hidden_state[:, la + 1 :].mean(1)], -1)
        expected = model.audio_visual_classifier(model.audio_visual_norm(pooled))
    torch.testing.assert_close(both.audio_visual_logits, expected)
    av_only = MAViLForAudioVisualClassification(tiny_config(classifier_heads=["audio_visual"]))
    with pytest.raises(ValueError, match="none of which can classify audio only"):
        av_only(input_values=audio)


def test_multi_label_loss_is_bce_summed_over_heads():
    config = tiny_config(problem_type="multi_label_classification", classifier_heads=["audio_visual", "audio"])
    model = MAViLForAudioVisualClassification(config).eval()
    labels = torch.tensor([[1.0, 0.0, 1.0]] * N)
    out = model(*batch(config), labels=labels)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(out.loss, bce(out.audio_visual_logits, labels) + bce(out.audio_logits, labels))


def test_finetune_token_dropping_probabilities_per_call():
    """The authors pass mask_t_prob / mask_f_prob / mask_v_prob per forward call; ours default to the config."""
    config = tiny_config()
    model = MAViLForAudioVisualClassification(config).eval()
    configured = MAViLForAudioVisualClassification(tiny_config(mask_time_prob=0.5, mask_freq_prob=0.5, mask_video_prob=0.5))
    configured.load_state_dict(model.state_dict())
    configured.eval()
    audio, video = batch(config)
    gen = torch.Generator().manual_seed(3)
    noise = dict(time_noise=torch.rand(N, 4, generator=gen), freq_noise=torch.rand(N, 2, generator=gen),
                 video_noise=torch.rand(N, config.num_video_patches, generator=gen))
    probs = dict(mask_time_prob=0.5, mask_freq_prob=0.5, mask_video_prob=0.5)
    with torch.no_grad():
        per_call = model(audio, video, **noise, **probs, output_hidden_states=True)
        from_config = configured(audio, video, **noise, output_hidden_states=True)
        unmasked = model(audio, video, **noise, output_hidden_states=True)  # the config's 0.0: nothing dropped
    torch.testing.assert_close(per_call.logits, from_config.logits)
    assert per_call.audio_hidden_states[-1].shape[1] == 1 + 2 and per_call.video_hidden_states[-1].shape[1] == 1 + 4
    assert unmasked.audio_hidden_states[-1].shape[1] == 1 + 8
    assert config.mask_time_prob == 0.0  # nothing was changed on the config


def test_finetune_token_dropping_only_in_training():
    config = tiny_config(mask_time_prob=0.5, mask_freq_prob=0.5, mask_video_prob=0.5)
    model = MAViLForAudioVisualClassification(config).eval()
    audio, video = batch(config)
    with torch.no_grad():
        torch.testing.assert_close(model(audio, video).logits, model(audio, video).logits)
        model.train()
        out = model(audio, video, output_hidden_states=True)
    # 4 x 2 audio grid -> 2 rows x 1 column kept; 8 video tokens -> 4 kept (+ cls each)
    assert out.audio_hidden_states[-1].shape[1] == 1 + 2
    assert out.video_hidden_states[-1].shape[1] == 1 + 4


def test_retrieval_embeddings():
    config = tiny_config()
    model = MAViLModel(config).eval()
    audio, video = batch(config)
    with torch.no_grad():
        a, v = model.get_retrieval_embeddings(audio, video)
        a2, _ = model.get_retrieval_embeddings(audio, torch.randn_like(video))
        pooled = model(input_values=audio).audio_last_hidden_state[:, 1:].mean(1)
    assert a.shape == v.shape == (N, config.hidden_size)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(N))
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(N))
    torch.testing.assert_close(a, a2)  # each modality is encoded on its own
    torch.testing.assert_close(a, torch.nn.functional.normalize(pooled, dim=-1))
    ranking = (a @ v.T).argsort(dim=1, descending=True)  # audio -> video
    assert sorted(ranking[0].tolist()) == list(range(N))
    # a pretraining model with projections ranks in the projected space
    pre = MAViLForPreTraining(tiny_config(contrastive_projection_dim=8)).eval()
    with torch.no_grad():
        pa, pv = pre.get_retrieval_embeddings(audio, video)
    assert pa.shape == pv.shape == (N, 8)


# ---------------------------------------------------------------------------------------------------------------------
# Inputs, config, tables
# ---------------------------------------------------------------------------------------------------------------------


def test_clear_errors_for_bad_inputs():
    config = tiny_config()
    model = MAViLModel(config)
    audio, video = batch(config)
    with pytest.raises(ValueError, match="permute"):
        model(audio, video.transpose(1, 2))
    with pytest.raises(ValueError, match="mel bins"):
        model(audio.transpose(1, 2))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(audio, video[:2])
    with pytest.raises(ValueError, match="audio_noise must have shape"):
        model(audio, video, audio_noise=torch.rand(N, 3))
    with pytest.raises(ValueError, match="needs both"):
        MAViLForPreTraining(config)(audio, None)
    with pytest.raises(Exception, match="divisible"):
        tiny_config(hidden_size=40, num_attention_heads=4)
    with pytest.raises(Exception, match="classifier_heads"):
        tiny_config(classifier_heads=["audio", "speech"])


def test_fixed_tables_and_stored_tables():
    from hf_maskedav.layers import audiomae_position_table, sincos_2d_table

    model = MAViLModel(tiny_config())
    table = model.audio_embeddings.position_embeddings
    assert isinstance(table, FixedPositionTable)
    torch.testing.assert_close(table.table[0], audiomae_position_table(32, 4, 2))
    assert not any("position_embeddings" in k for k in model.state_dict())
    stored = MAViLModel(tiny_config(position_tables="stored", audio_position_table="time_major"))
    assert "audio_embeddings.position_embeddings.table" in stored.state_dict()
    torch.testing.assert_close(stored.audio_embeddings.position_embeddings.table[0], sincos_2d_table(32, 4, 2, cls_token=True))
    assert not any("position" in n for n, _ in stored.named_parameters())  # stored, never trained


def test_stored_tables_keep_loaded_values(tmp_path):
    config = tiny_config(position_tables="stored", classifier_heads=["audio_visual"])
    model = MAViLForAudioVisualClassification(config)
    custom = torch.randn_like(model.mavil.video_embeddings.position_embeddings.table)
    model.mavil.video_embeddings.position_embeddings.table.copy_(custom)
    model.save_pretrained(tmp_path)
    reloaded = MAViLForAudioVisualClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.mavil.video_embeddings.position_embeddings.table, custom)


def test_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining

    from hf_maskedav.pipelines import AutoModelForAudioVisualClassification

    config = tiny_config()
    MAViLForPreTraining(config).save_pretrained(tmp_path / "pre")
    assert type(AutoConfig.from_pretrained(tmp_path / "pre")) is MAViLConfig
    assert type(AutoModel.from_pretrained(tmp_path / "pre")) is MAViLModel
    assert type(AutoModelForPreTraining.from_pretrained(tmp_path / "pre")) is MAViLForPreTraining
    MAViLForAudioVisualClassification(config).save_pretrained(tmp_path / "cls")
    for auto in (AutoModelForAudioClassification, AutoModelForAudioVisualClassification):
        assert type(auto.from_pretrained(tmp_path / "cls")) is MAViLForAudioVisualClassification


# ---------------------------------------------------------------------------------------------------------------------
# Initialisation from Audio-MAE
# ---------------------------------------------------------------------------------------------------------------------


def test_from_unimodal_audiomae(tmp_path):
    audio_config = AudioMAEConfig(
        max_length=32, num_mel_bins=16, patch_size=8, patch_stride=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, decoder_type="global", decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
    )
    torch.manual_seed(0)
    audiomae = AudioMAEModel(audio_config).eval()
    audiomae.save_pretrained(tmp_path / "audiomae")
    model, info = MAViLForPreTraining.from_unimodal_pretrained(
        audio=str(tmp_path / "audiomae"), output_loading_info=True, fusion_num_hidden_layers=1,
        decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
        num_frames=4, image_size=16, video_patch_size=8,
    )
    assert model.config.audio_num_hidden_layers == 2 and model.config.audio_position_table == "audiomae"
    assert any("norm.weight" in s for s in info["skipped"])
    assert "audio_layers.1.mlp.fc2.weight" in info["loaded"]
    audio = torch.randn(2, 32, 16)
    with torch.no_grad():
        ours = model.mavil(input_values=audio).audio_last_hidden_state
        reference = audiomae(audio, output_hidden_states=True).hidden_states[-1]  # last layer, before the final norm
    torch.testing.assert_close(ours, reference)
    with pytest.raises(TypeError, match="MAE-ST or VideoMAE"):
        MAViLForPreTraining.from_unimodal_pretrained(audio=audiomae, video=audiomae)


def _video_kwargs():
    return dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16,
                patch_size=8, num_frames=4, tubelet_size=2)


def test_from_unimodal_mae_st_and_videomae(tmp_path):
    from hf_maskedav import MAESTConfig, MAESTModel, MaskedAVVideoMAEConfig, MaskedAVVideoMAEModel

    torch.manual_seed(0)
    mae_st = MAESTModel(MAESTConfig(pred_t_dim=4, **_video_kwargs())).eval()
    with torch.no_grad():  # non-trivial learned positions
        for param in mae_st.embeddings.position_embeddings.parameters():
            param.normal_()
    mae_st.save_pretrained(tmp_path / "mae_st")
    video = torch.randn(2, 4, 3, 16, 16)
    model = MAViLModel.from_unimodal_pretrained(video=str(tmp_path / "mae_st"), decoder_hidden_size=32,
                                                decoder_num_attention_heads=4, max_length=32, num_mel_bins=16,
                                                audio_patch_size=8, fusion_num_hidden_layers=1).eval()
    assert model.config.position_tables == "stored" and model.config.video_num_hidden_layers == 2
    with torch.no_grad():
        ours = model(pixel_values=video).video_last_hidden_state
        reference = mae_st(video, output_hidden_states=True).hidden_states[-1]  # before MAE-ST's final norm
    torch.testing.assert_close(ours, reference)

    videomae = MaskedAVVideoMAEModel(MaskedAVVideoMAEConfig(**_video_kwargs())).eval()
    with torch.no_grad():
        for layer in videomae.layers:
            layer.attention.q_bias.normal_()
            layer.attention.v_bias.normal_()
    model, info = MAViLModel.from_unimodal_pretrained(video=videomae, output_loading_info=True,
                                                      max_length=32, num_mel_bins=16, audio_patch_size=8,
                                                      decoder_hidden_size=32, decoder_num_attention_heads=4)
    from hf_maskedav.layers import run_layers

    # VideoMAE has no cls token (MAViL's starts fresh): MAViL's video layers run on VideoMAE's own embedded tokens
    with torch.no_grad():
        tokens = videomae(video, output_hidden_states=True).hidden_states
        ours = run_layers(model.video_layers, tokens[0])[0]
        reference = tokens[-1]
    torch.testing.assert_close(ours, reference)  # q/v biases folded into the fused bias compute the same thing
    assert "video_embeddings.cls_token" in info["initialised"]
    assert any("norm" in s for s in info["skipped"])
