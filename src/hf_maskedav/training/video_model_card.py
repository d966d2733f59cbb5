"""Model cards for video and audio-visual models: :func:`~hf_maskedav.training.write_model_card` with a usage section
that loads the right processor (video processor, or the MAViL processor for .mp4 files with sound)."""

from __future__ import annotations

import os

from .model_card import write_model_card


def _usage(model_name: str, task: str, audio_visual: bool) -> list[str]:
    lines = ["## Usage", "", "```python", "import hf_maskedav  # registers the model classes with the transformers Auto classes"]
    if task == "video-classification" and not audio_visual:
        lines += ["from transformers import pipeline", "",
                  f'classifier = pipeline("video-classification", model="{model_name}")', 'classifier("clip.mp4")']
    elif audio_visual:
        head = "AutoModelForAudioVisualClassification" if task != "feature-extraction" else "AutoModel"
        source = "hf_maskedav.pipelines" if head != "AutoModel" else "transformers"
        lines += ["from transformers import AutoProcessor", f"from {source} import {head}", "",
                  f'processor = AutoProcessor.from_pretrained("{model_name}")',
                  f'model = {head}.from_pretrained("{model_name}")',
                  'inputs = processor("clip.mp4")  # an .mp4 with an audio track -> input_values + pixel_values']
        lines += ["logits = model(**inputs).logits" if head != "AutoModel" else
                  "audio, video = model.get_retrieval_embeddings(**inputs)  # l2-normalised clip embeddings"]
    else:
        lines += ["from transformers import AutoModel, AutoVideoProcessor", "",
                  f'processor = AutoVideoProcessor.from_pretrained("{model_name}")',
                  f'model = AutoModel.from_pretrained("{model_name}")',
                  'inputs = processor("clip.mp4", return_tensors="pt")',
                  "features = model(**inputs).last_hidden_state"]
    return lines + ["```", "", ""]


def write_video_model_card(output_dir: str, model_name: str, task: str, summary: str, audio_visual: bool = False,
                           **kwargs) -> str:
    """Write ``output_dir/README.md`` (see :func:`~hf_maskedav.training.write_model_card` for ``kwargs``) with a
    usage example for a video model (``task`` ``"video-classification"`` or ``"feature-extraction"``) or, with
    ``audio_visual``, a MAViL model."""
    path = write_model_card(output_dir, model_name, task, summary, **kwargs)
    with open(path) as handle:
        text = handle.read()
    start = text.index("## Usage")
    end = text.index("\n## ", start + 1) + 1
    text = text[:start] + "\n".join(_usage(model_name, task, audio_visual)) + text[end:]
    tags = ["video"] + (["audio", "audio-visual"] if audio_visual else [])
    text = text.replace("tags:\n- hf_maskedav\n", "tags:\n- hf_maskedav\n" + "".join(f"- {t}\n" for t in tags), 1)
    with open(os.path.join(output_dir, "README.md"), "w") as handle:
        handle.write(text)
    return path


__all__ = ["write_video_model_card"]
