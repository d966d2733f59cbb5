"""What the demo does, without the web page: load one model, tell what it can show, and compute it.

:class:`Demo` is used by the Gradio page (:mod:`hf_maskedav.app.ui`) and can be used on its own (tests, notebooks):

* a classifier (audio, video or audio-video) -> :meth:`Demo.classify`: the task's ``pipeline(...)`` on the file, so
  the scores are the pipeline's (softmax, or independent sigmoid scores for a multi-label model, as the pipeline
  chooses from ``config.problem_type``);
* a pretraining model (any family) -> :meth:`Demo.reconstruct`: a PNG with the input, the masked input and the
  reconstruction, for a mask ratio and a seed;
* a MAViL / CAV-MAE encoder (or a MAViL pretraining model, which has the contrastive projections) ->
  :meth:`Demo.retrieve`: audio->video or video->audio ranking over a gallery of clips.

Errors a person can fix (a file that is not audio or video, an audio-only file given to a video model...) are raised
as :class:`DemoInputError` with a one-paragraph message; the page shows that message.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

from ..registration import FAMILIES, is_audio_visual, model_types

CLASSIFICATION_TASKS = {
    "ForAudioClassification": "audio-classification",
    "ForVideoClassification": "video-classification",
    "ForAudioVisualClassification": "audio-video-classification",
}
# model_type -> family name and the audio-visual model types, from the family table (hf_maskedav.registration)
FAMILY_NAMES = {model_type: FAMILIES[family]["name"] for model_type, family in model_types().items()}
AUDIO_VISUAL = tuple(model_type for model_type, family in model_types().items() if is_audio_visual(family))
RETRIEVAL_FAMILIES = ("maskedav_mavil", "maskedav_cavmae")  # the encoders with a retrieval page (not AV-MAE's)
# the config attributes a mask-ratio slider sets, per family: one per modality
MASK_RATIO_ATTRIBUTES = {
    model_type: ("audio_mask_ratio", "video_mask_ratio") if model_type in AUDIO_VISUAL else ("mask_ratio",)
    for model_type in FAMILY_NAMES
}
MODES = ("classification", "reconstruction", "retrieval")


class DemoInputError(ValueError):
    """A problem with what the person gave (the file, the choice): the message is shown in the page as it is."""


@dataclass
class Reconstruction:
    """One reconstruction picture: ``path`` to a PNG, its ``size`` (width, height) and what the mask hid."""

    path: str
    size: tuple[int, int]
    caption: str


def detect_mode(config) -> tuple[str, str | None]:
    """``(mode, pipeline task)`` for a config: classification (with its task), reconstruction or retrieval."""
    architectures = list(getattr(config, "architectures", None) or [])
    model_type = config.model_type
    if model_type not in FAMILY_NAMES:
        raise DemoInputError(
            f"model type {model_type!r} is not one of this package's families ({', '.join(FAMILY_NAMES.values())})"
        )
    if model_type == "maskedav_maskfeat" and not getattr(config, "is_video", True):
        raise DemoInputError("MaskFeat image models are not part of the demo (its pages take video files)")
    for architecture in architectures:
        for suffix, task in CLASSIFICATION_TASKS.items():
            if architecture.endswith(suffix):
                return "classification", task
        if architecture.endswith("ForPreTraining"):
            return "reconstruction", None
    if model_type in RETRIEVAL_FAMILIES:
        return "retrieval", None
    if architectures:
        raise DemoInputError(
            f"{architectures[0]}: a bare encoder of {FAMILY_NAMES[model_type]} has nothing to show; give a "
            "classifier, a pretraining checkpoint, or a MAViL / CAV-MAE encoder"
        )
    raise DemoInputError("config.json names no architecture: cannot tell whether this is a classifier or not")


def _describe_error(error: Exception) -> str:
    """The message of an error raised while reading the person's file, made to stand on its own in the page."""
    message = str(error).strip() or type(error).__name__
    return message.splitlines()[0] if len(message) > 600 else message


def _checked_path(path) -> str:
    if path is None or (isinstance(path, str) and not path):
        raise DemoInputError("no file given: upload an audio or video file first")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DemoInputError(f"{os.path.basename(path)}: file not found")
    if os.path.getsize(path) == 0:
        raise DemoInputError(f"{os.path.basename(path)}: the file is empty")
    return path


class Demo:
    """One model and what the demo shows for it.

    Args:
        model: a local folder or a Hub id (the only thing downloaded).
        mode: force ``"classification"``, ``"reconstruction"`` or ``"retrieval"`` (default: from the config).
        top_k: how many labels a classification shows.
        device: ``"cpu"`` by default.
    """

    def __init__(self, model: str, mode: str | None = None, top_k: int = 5, device: str = "cpu"):
        import hf_maskedav  # noqa: F401 (registers the families with transformers)
        from transformers import AutoConfig

        self.model_id = str(model)
        self.device = torch.device(device)
        self.config = AutoConfig.from_pretrained(self.model_id)
        self.family = FAMILY_NAMES.get(self.config.model_type, self.config.model_type)
        detected, task = detect_mode(self.config)
        if mode is not None and mode not in MODES:
            raise DemoInputError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode or detected
        self.task = task
        self.top_k = top_k
        self.pipeline = None
        self.model = None
        self.processor = None
        if self.mode == "classification":
            self._load_classifier()
        elif self.mode == "reconstruction":
            self._load_pretraining()
        else:
            self._load_encoder()

    # ---- loading ----------------------------------------------------------------------------------------------------

    def _load_classifier(self) -> None:
        from transformers import pipeline

        if self.task is None:
            raise DemoInputError("this checkpoint is not a classifier")
        self.pipeline = pipeline(self.task, model=self.model_id, device=self.device)
        self.model = self.pipeline.model
        self.multi_label = self.config.problem_type == "multi_label_classification"

    def _load_pretraining(self) -> None:
        from transformers import AutoModelForPreTraining

        self.model = AutoModelForPreTraining.from_pretrained(self.model_id).to(self.device).eval()
        self._load_processor()

    def _load_encoder(self) -> None:
        from transformers import AutoModel, AutoModelForPreTraining

        architectures = self.config.architectures or []
        loader = AutoModelForPreTraining if any(a.endswith("ForPreTraining") for a in architectures) else AutoModel
        if self.config.model_type not in RETRIEVAL_FAMILIES:
            raise DemoInputError(f"retrieval needs a MAViL or CAV-MAE model, this is {self.family}")
        self.model = loader.from_pretrained(self.model_id).to(self.device).eval()
        if not hasattr(self.model, "get_retrieval_embeddings"):
            raise DemoInputError(f"{type(self.model).__name__} has no retrieval embeddings")
        self._load_processor()

    def _load_processor(self) -> None:
        from transformers import AutoFeatureExtractor, AutoProcessor, AutoVideoProcessor

        model_type = self.config.model_type
        if model_type in AUDIO_VISUAL:
            self.processor = AutoProcessor.from_pretrained(self.model_id)
        elif model_type == "maskedav_audiomae":
            self.processor = AutoFeatureExtractor.from_pretrained(self.model_id)
        else:
            self.processor = AutoVideoProcessor.from_pretrained(self.model_id)

    # ---- what the page needs to know --------------------------------------------------------------------------------

    @property
    def accepts(self) -> str:
        """``"audio"``, ``"video"`` or ``"audio-video"``: what kind of file the model reads."""
        if self.config.model_type in AUDIO_VISUAL:
            return "audio-video"
        return "audio" if self.config.model_type == "maskedav_audiomae" else "video"

    @property
    def default_mask_ratio(self) -> float:
        names = MASK_RATIO_ATTRIBUTES[self.config.model_type]
        return float(getattr(self.config, names[-1]))

    def describe(self) -> str:
        what = {
            "classification": f"{self.task} over {self.config.num_labels} labels"
            + (" (multi-label: independent scores)" if getattr(self, "multi_label", False) else ""),
            "reconstruction": "masked reconstruction",
            "retrieval": "audio<->video retrieval",
        }[self.mode]
        return f"{self.family} ({type(self.model).__name__}) from {self.model_id}: {what}"

    # ---- classification ---------------------------------------------------------------------------------------------

    def classify(self, path) -> list[dict]:
        """The pipeline's top-k ``[{"label", "score"}]`` for a file."""
        if self.mode != "classification":
            raise DemoInputError("this model is not a classifier")
        path = _checked_path(path)
        try:
            return self.pipeline(path, top_k=min(self.top_k, self.config.num_labels))
        except (ValueError, RuntimeError, OSError, TypeError) as error:
            message = _describe_error(error)
            if self.task == "audio-classification" and "audio" not in message.lower():
                message = f"could not be read as audio ({message})"
            raise DemoInputError(f"{os.path.basename(path)}: {message}") from error

    # ---- model inputs -----------------------------------------------------------------------------------------------

    def _inputs(self, path: str) -> dict:
        """Processor output (batch of one) for the file, as the model reads it."""
        model_type = self.config.model_type
        name = os.path.basename(path)
        try:
            if model_type in AUDIO_VISUAL:
                inputs = self.processor(path, return_tensors="pt")
            elif model_type == "maskedav_audiomae":
                from ..data.audio_decoding import decode_audio

                rate = self.processor.sampling_rate
                waveform = decode_audio(path, sampling_rate=rate)
                inputs = self.processor(waveform.numpy(), sampling_rate=rate, return_tensors="pt")
            else:
                inputs = self.processor(path, return_tensors="pt")
        except (ValueError, RuntimeError, OSError, TypeError) as error:
            raise DemoInputError(f"{name}: {_describe_error(error)}") from error
        return {k: v.to(self.device) for k, v in dict(inputs).items() if isinstance(v, torch.Tensor)}

    # ---- reconstruction ---------------------------------------------------------------------------------------------

    def reconstruct(self, path, mask_ratio: float | None = None, seed: int = 0, output_dir: str | None = None
                    ) -> list[Reconstruction]:
        """Input, masked input and reconstruction pictures (one per modality) for a file.

        Args:
            mask_ratio: set on every ratio of the config for this call (the model's own ratio by default).
            seed: seeds the mask (and nothing else).
            output_dir: where the PNGs go (a new temporary folder by default).
        """
        if self.mode != "reconstruction":
            raise DemoInputError("this model is not a pretraining checkpoint")
        path = _checked_path(path)
        ratio = self.default_mask_ratio if mask_ratio is None else float(mask_ratio)
        if not 0.0 < ratio < 1.0:
            raise DemoInputError(f"the mask ratio must be between 0 and 1 (exclusive), got {ratio}")
        if getattr(self.config, "reconstruction_target", "pixels") != "pixels":  # a MAViL stage-2 checkpoint
            raise DemoInputError(
                "this MAViL checkpoint predicts teacher features (stage 2), not pixels and spectrograms: there "
                "is no reconstruction to draw; use a stage-1 checkpoint"
            )
        inputs = self._inputs(path)
        names = MASK_RATIO_ATTRIBUTES[self.config.model_type]
        saved = {name: getattr(self.model.config, name) for name in names}
        try:
            for name in names:
                setattr(self.model.config, name, ratio)
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                output = self.model(**inputs)
        except (ValueError, RuntimeError) as error:
            raise DemoInputError(f"{os.path.basename(path)}: {_describe_error(error)}") from error
        finally:
            for name, value in saved.items():
                setattr(self.model.config, name, value)
        output_dir = output_dir or tempfile.mkdtemp(prefix="hf_maskedav_demo_")
        os.makedirs(output_dir, exist_ok=True)
        stem = f"{os.path.splitext(os.path.basename(path))[0]}_r{int(round(ratio * 100))}_s{int(seed)}"
        return self._pictures(inputs, output, ratio, seed, output_dir, stem)

    def _pictures(self, inputs, output, ratio, seed, output_dir, stem) -> list[Reconstruction]:
        from ..training.plotting import (
            mae_st_reconstruction_frames,
            maskfeat_hog_rows,
            mavil_video_reconstruction_frames,
            save_frame_grid,
            save_spectrogram_reconstruction,
            spectrogram_reconstruction_images,
            videomae_reconstruction_frames,
        )

        model, config, model_type = self.model, self.model.config, self.config.model_type
        title = f"{self.family}, mask ratio {ratio:.2f}, seed {seed}"
        pictures = []

        def video_picture(rows, hidden):
            file = os.path.join(output_dir, f"{stem}_video.png")
            row_titles = {"original": "input", "masked": "masked input", "reconstruction": "reconstruction"}
            ordered = {k: rows[k] for k in ("original", "masked", "reconstruction")} if "original" in rows else rows
            save_frame_grid(ordered, file, title=f"{title}: video", row_titles=row_titles)
            pictures.append(_picture(file, f"video: {hidden}"))

        def audio_picture(spectrogram, logits, mask, patch_size, norm_pix_loss):
            images = spectrogram_reconstruction_images(spectrogram, logits, mask, patch_size, norm_pix_loss)
            file = os.path.join(output_dir, f"{stem}_audio.png")
            save_spectrogram_reconstruction(images, file, title=f"{title}: audio")
            pictures.append(_picture(file, f"audio: {_hidden(mask)}"))

        if model_type == "maskedav_audiomae":
            audio_picture(inputs["input_values"][0].cpu(), output.logits[0].cpu(), output.mask[0].cpu(),
                          config.patch_size, config.norm_pix_loss)
        elif model_type in ("maskedav_videomae", "maskedav_mae_st", "maskedav_maskfeat"):
            clip = inputs["pixel_values"][0].cpu()
            mean, std = self.processor.image_mean, self.processor.image_std
            if model_type == "maskedav_videomae":
                rows = videomae_reconstruction_frames(model, clip, output)
            elif model_type == "maskedav_mae_st":
                rows = mae_st_reconstruction_frames(model, clip, output, mean, std)
            else:
                rows = maskfeat_hog_rows(model, clip, output, mean, std)
            video_picture(rows, _hidden(output.mask[0]))
        elif model_type == "maskedav_mavil":
            mean, std = self.processor.video_processor.image_mean, self.processor.video_processor.image_std
            rows = mavil_video_reconstruction_frames(model, inputs["pixel_values"][0].cpu(), output, mean, std)
            video_picture(rows, _hidden(output.video_mask[0]))
            audio_picture(inputs["input_values"][0].cpu(), output.audio_logits[0].cpu(), output.audio_mask[0].cpu(),
                          config.audio_patch_size, config.audio_norm_pix_loss)
        else:  # CAV-MAE, AV-MAE: the model's own patchify functions tell where every patch value comes from
            if model_type == "maskedav_cavmae":
                patchify = {"audio": model.patchify_audio, "video": model.patchify_video}
            else:
                patchify = {name: (lambda values, name=name: _raw_targets(model, name, values))
                            for name in ("audio", "video")}
            video_processor = self.processor.video_processor
            rows = _views_from_patchify(patchify["video"], inputs["pixel_values"], output.video_logits,
                                        output.video_mask, config.norm_pix_loss)
            video_picture(_frames_from_views(rows, video_processor.image_mean, video_processor.image_std),
                          _hidden(output.video_mask[0]))
            views = _views_from_patchify(patchify["audio"], inputs["input_values"], output.audio_logits,
                                         output.audio_mask, config.norm_pix_loss)
            file = os.path.join(output_dir, f"{stem}_audio.png")
            save_spectrogram_reconstruction(_crop_spectrograms(views), file, title=f"{title}: audio")
            pictures.append(_picture(file, f"audio: {_hidden(output.audio_mask[0])}"))
        return pictures

    # ---- retrieval --------------------------------------------------------------------------------------------------

    def embed(self, path) -> tuple[torch.Tensor, torch.Tensor]:
        """l2-normalised ``(audio, video)`` retrieval embeddings of one clip (each modality on its own encoder)."""
        if self.mode != "retrieval":
            raise DemoInputError("this model is not a MAViL / CAV-MAE encoder")
        path = _checked_path(path)
        inputs = self._inputs(path)
        with torch.no_grad():
            audio, video = self.model.get_retrieval_embeddings(inputs["input_values"], inputs["pixel_values"])
        return (torch.nn.functional.normalize(audio[0].float().cpu(), dim=-1),
                torch.nn.functional.normalize(video[0].float().cpu(), dim=-1))

    def retrieve(self, paths, query: int, direction: str = "audio->video") -> list[dict]:
        """Rank the gallery's clips for clip ``query``: its audio against every video (or the reverse).

        Returns ``[{"name", "index", "score"}]`` best first (cosine similarity).
        """
        paths = [p for p in (paths or []) if p]
        if len(paths) < 2:
            raise DemoInputError("retrieval needs a gallery of at least two clips (each with sound and picture)")
        if not 0 <= int(query) < len(paths):
            raise DemoInputError(f"the query must be one of the {len(paths)} clips, got {query}")
        if direction not in ("audio->video", "video->audio"):
            raise DemoInputError(f"direction must be 'audio->video' or 'video->audio', got {direction!r}")
        embeddings = [self.embed(p) for p in paths]
        audio = torch.stack([a for a, _ in embeddings])
        video = torch.stack([v for _, v in embeddings])
        queries, candidates = (audio, video) if direction == "audio->video" else (video, audio)
        scores = candidates @ queries[int(query)]
        order = torch.argsort(scores, descending=True).tolist()
        return [{"name": os.path.basename(paths[i]), "index": i, "score": float(scores[i])} for i in order]


def _raw_targets(model, name: str, values: torch.Tensor) -> torch.Tensor:
    """AV-MAE's target patches without the per-patch normalisation."""
    normalise = model.config.norm_pix_loss
    model.config.norm_pix_loss = False
    try:
        return model.targets(name, values)
    finally:
        model.config.norm_pix_loss = normalise


def _views_from_patchify(patchify, values, predicted, mask, norm_pix_loss: bool, eps: float = 1e-6):
    """``{"original", "masked", "reconstruction"}`` shaped like ``values[0]``, from the model's own patchify function.

    The function is run on the index of every input value: since patchify only moves values, that tells where each
    patch value came from, so predictions are put back at the right place whatever the family's layout. Values no
    patch covers, and masked ones in ``"masked"``, are NaN. ``norm_pix_loss`` predictions are mapped back with each
    input patch's mean and standard deviation (unbiased, as ``normalize_per_patch``).
    """
    example = values[:1].detach().float().cpu()
    index = torch.arange(example.numel(), dtype=torch.float32).view_as(example)
    with torch.no_grad():
        positions = patchify(index)[0].round().long().flatten()
        patches = patchify(example)[0]
    prediction = predicted[0].detach().float().cpu()
    if norm_pix_loss:
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        prediction = prediction * (var + eps) ** 0.5 + mean
    visible = (torch.as_tensor(mask[0]).detach().float().cpu() < 0.5)[:, None]
    nan = torch.full_like(patches, float("nan"))

    def place(patch_values):
        out = torch.full((example.numel(),), float("nan"))
        out[positions] = patch_values.flatten()
        return out.view_as(example)[0]

    return {"original": place(patches), "masked": place(torch.where(visible, patches, nan)),
            "reconstruction": place(torch.where(visible, patches, prediction))}


def _frames_from_views(views, mean, std) -> dict[str, np.ndarray]:
    """Normalised ``[T, C, H, W]`` (or ``[C, H, W]``) views -> ``[T', H, W, 3]`` pixels in [0, 1] for the frames the
    patches cover, masked patches grey."""
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    frames = {}
    covered = None
    for name, view in views.items():
        view = view.reshape(-1, *view.shape[-3:])
        if covered is None:
            covered = torch.isfinite(views["original"].reshape(view.shape)).flatten(1).any(dim=1)
        pixels = (view * std + mean).clamp(0, 1)
        pixels = torch.where(torch.isnan(pixels), torch.full_like(pixels, 0.6), pixels)[covered]
        frames[name] = pixels.permute(0, 2, 3, 1).numpy()
    return frames


def _crop_spectrograms(views) -> dict[str, np.ndarray]:
    """``[T, F]`` views -> the part the patches cover (frames past the patch grid dropped)."""
    original = views["original"].reshape(views["original"].shape[-2:])
    rows = torch.isfinite(original).any(dim=1)
    cols = torch.isfinite(original).any(dim=0)
    return {name: view.reshape(original.shape)[rows][:, cols].numpy() for name, view in views.items()}


def _hidden(mask) -> str:
    mask = torch.as_tensor(mask).float()
    return f"{int(mask.sum())} of {mask.numel()} patches masked"


def _picture(path: str, caption: str) -> Reconstruction:
    from PIL import Image

    with Image.open(path) as image:
        size = image.size
    return Reconstruction(path=path, size=size, caption=caption)


def format_scores(results: list[dict], multi_label: bool = False) -> str:
    """Plain-text table of classification results, as the page shows them (``label: score``)."""
    kind = "independent scores (multi-label)" if multi_label else "probabilities"
    return "\n".join([f"top {len(results)}, {kind}:"] + [f"{r['label']}: {r['score']:.4f}" for r in results])


__all__ = ["Demo", "DemoInputError", "Reconstruction", "detect_mode", "format_scores"]
