"""The ``audio-video-classification`` pipeline class on its own (no registration, no Auto mapping).

:mod:`hf_maskedav.pipelines.audio_video_classification` registers it with transformers; an ``--export_remote_code``
folder ships this module (flattened) and names it in ``config.json``'s ``custom_pipelines``, so that
``pipeline("audio-video-classification", model=folder, trust_remote_code=True)`` works where hf_maskedav is not
installed.
"""

from __future__ import annotations

import os

from transformers.pipelines.base import Pipeline


class AudioVideoClassificationPipeline(Pipeline):
    """Audio-visual classification of media files or (audio, video) array pairs.

    Inputs (one or a list):

    * a path to a media file with an audio and a video track (an .mp4 as AudioSet/VGGSound clips);
    * a dict ``{"audio": waveform, "sampling_rate": int, "video": frames, "video_fps": float (optional)}``.

    Call arguments: ``top_k`` (default 5), ``function_to_apply`` (``"softmax"``, ``"sigmoid"``, ``"none"``; default by
    ``problem_type``), ``modalities`` (``"audio"`` or ``"video"`` to use one track and the model's matching head).

    Returns a list of ``{"label", "score"}`` dicts per input.
    """

    _load_processor = True
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(
                "the audio-video-classification pipeline needs the model's processor (e.g. MAViLProcessor saved next "
                "to the weights with processor.save_pretrained(folder)), or pass processor=..."
            )

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, modalities=None):
        preprocess, postprocess = {}, {}
        if modalities is not None:
            preprocess["modalities"] = modalities
        if top_k is not None:
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in ("softmax", "sigmoid", "none"):
                raise ValueError(f"function_to_apply must be 'softmax', 'sigmoid' or 'none', got {function_to_apply!r}")
            postprocess["function_to_apply"] = function_to_apply
        return preprocess, {}, postprocess

    def __call__(self, inputs, **kwargs):
        """Classify one input or a list of inputs (see the class docstring)."""
        if inputs is None:
            raise ValueError("give a media file path or a {'audio', 'sampling_rate', 'video'} dict")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, modalities=None):
        if isinstance(inputs, (str, os.PathLike)):
            processed = self.processor(inputs, modalities=modalities, return_tensors="pt")
        elif isinstance(inputs, dict):
            unknown = set(inputs) - {"audio", "sampling_rate", "video", "video_fps"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}; expected audio, sampling_rate, video, video_fps")
            if modalities is None:
                modalities = [m for m in ("audio", "video") if inputs.get(m) is not None]
            processed = self.processor(
                audio=[inputs["audio"]] if inputs.get("audio") is not None else None,
                sampling_rate=inputs.get("sampling_rate"),
                videos=[inputs["video"]] if inputs.get("video") is not None else None,
                video_fps=inputs.get("video_fps"),
                modalities=modalities,
                return_tensors="pt",
            )
        else:
            raise TypeError(
                f"unsupported input of type {type(inputs).__name__}: give a media file path or a dict with 'audio', "
                "'sampling_rate' and 'video'"
            )
        if self.dtype is not None:
            processed = processed.to(dtype=self.dtype)
        return processed

    def _forward(self, model_inputs):
        return self.model(**model_inputs)

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None):
        config = self.model.config
        if function_to_apply is None:
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
                config.problem_type, "softmax"
            )
        logits = model_outputs["logits"][0].float()
        if function_to_apply == "softmax":
            scores = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        top_k = min(top_k, config.num_labels)
        values, ids = scores.topk(top_k)
        return [{"score": float(s), "label": config.id2label[int(i)]} for s, i in zip(values, ids)]


__all__ = ["AudioVideoClassificationPipeline"]
