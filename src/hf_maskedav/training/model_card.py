"""Model cards (README.md with Hub metadata) written next to a trained model: audio, video or audio-visual (the usage
section loads the right processor: feature extractor, video processor, or the MAViL processor for .mp4 files with
sound)."""

from __future__ import annotations

import os
import sys


def _yaml_list(key: str, values) -> list[str]:
    values = [v for v in (values or []) if v]
    if not values:
        return []
    return [f"{key}:"] + [f"- {v}" for v in values]


MODALITY_TAGS = {"audio": [], "video": ["video"], "audio-visual": ["video", "audio", "audio-visual"]}


def _usage(model_name: str, task: str, modality: str) -> list[str]:
    """The card's usage section: a pipeline for a classifier the pipelines know, else the processor and the model."""
    lines = ["## Usage", "", "```python", "import hf_maskedav  # registers the model classes with the transformers Auto classes"]
    if modality == "audio-visual":
        head = "AutoModelForAudioVisualClassification" if task != "feature-extraction" else "AutoModel"
        source = "hf_maskedav.pipelines" if head != "AutoModel" else "transformers"
        lines += ["from transformers import AutoProcessor", f"from {source} import {head}", "",
                  f'processor = AutoProcessor.from_pretrained("{model_name}")',
                  f'model = {head}.from_pretrained("{model_name}")',
                  'inputs = processor("clip.mp4")  # an .mp4 with an audio track -> input_values + pixel_values']
        lines += ["logits = model(**inputs).logits" if head != "AutoModel" else
                  "audio, video = model.get_retrieval_embeddings(**inputs)  # l2-normalised clip embeddings"]
    elif task in ("audio-classification", "video-classification"):
        sample = "clip.wav" if modality == "audio" else "clip.mp4"
        lines += ["from transformers import pipeline", "",
                  f'classifier = pipeline("{task}", model="{model_name}")', f'classifier("{sample}")']
    elif modality == "video":
        lines += ["from transformers import AutoModel, AutoVideoProcessor", "",
                  f'processor = AutoVideoProcessor.from_pretrained("{model_name}")',
                  f'model = AutoModel.from_pretrained("{model_name}")',
                  'inputs = processor("clip.mp4", return_tensors="pt")',
                  "features = model(**inputs).last_hidden_state"]
    else:
        lines += ["from transformers import AutoFeatureExtractor, AutoModel", "",
                  f'feature_extractor = AutoFeatureExtractor.from_pretrained("{model_name}")',
                  f'model = AutoModel.from_pretrained("{model_name}")',
                  'inputs = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")',
                  "features = model(**inputs).last_hidden_state"]
    return lines + ["```", ""]


def write_model_card(
    output_dir: str,
    model_name: str,
    task: str,
    summary: str,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    metrics: dict | None = None,
    hyperparameters: dict | None = None,
    tags: list[str] | None = None,
    command: str | None = None,
    notes: str | None = None,
    license: str | None = None,
    modality: str = "audio",
) -> str:
    """Write ``output_dir/README.md``: Hub metadata (library, pipeline tag, base model, datasets, metrics) and a
    human-readable description of how the model was trained and how to use it.

    Args:
        model_name: the title (e.g. the Hub repo id).
        task: ``"audio-classification"``, ``"video-classification"`` or ``"feature-extraction"`` (pre-trained
            encoders).
        summary: one paragraph on what the model is.
        base_model: the checkpoint it was fine-tuned from.
        datasets: training data names (Hub ids go into the metadata).
        metrics: final evaluation figures ``{name: value}``.
        hyperparameters: training settings worth reporting.
        command: the command line that trained it (defaults to this process's).
        notes: extra Markdown (limitations...).
        modality: ``"audio"``, ``"video"`` or ``"audio-visual"``: the usage example and the modality tags.
    """
    command = command if command is not None else " ".join(["python"] + sys.argv)
    header = ["---", "library_name: transformers", f"pipeline_tag: {task}"]
    if license:
        header.append(f"license: {license}")
    if base_model and not os.path.isdir(base_model):
        header.append(f"base_model: {base_model}")
    header += _yaml_list("datasets", [d for d in (datasets or []) if "/" in d and not os.path.exists(d)])
    header += _yaml_list("tags", ["hf_maskedav", *MODALITY_TAGS[modality], *(tags or [])])
    header.append("---")

    lines = header + ["", f"# {model_name}", "", summary, ""]
    lines += _usage(model_name, task, modality)
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        lines.append("")
    lines += ["## Training", ""]
    if base_model:
        lines.append(f"Initialised from `{base_model}`.")
    if datasets:
        lines.append("Data: " + ", ".join(f"`{d}`" for d in datasets) + ".")
    if hyperparameters:
        lines += ["", "| hyperparameter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in hyperparameters.items()]
    lines += ["", "Command:", "", "```bash", command, "```", ""]
    if notes:
        lines += [notes, ""]
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "README.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines))
    return path


__all__ = ["write_model_card"]
