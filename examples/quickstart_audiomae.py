"""Build a tiny Audio-MAE, run one pretraining step, save it and classify a sound with `pipeline`.

    python examples/quickstart_audiomae.py --output_dir outputs/quickstart

Everything happens locally (no download): a randomly initialised tiny model, a synthetic chirp.
"""

import argparse

import numpy as np
import torch
from transformers import pipeline

import hf_maskedav  # noqa: F401  (registers the models with the Auto classes)
from hf_maskedav import AudioMAEConfig, AudioMAEFeatureExtractor, AudioMAEForAudioClassification, AudioMAEForPreTraining


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/quickstart")
    args = parser.parse_args()

    labels = ["chirp", "noise", "silence"]
    config = AudioMAEConfig(
        max_length=256, num_mel_bins=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, decoder_hidden_size=64, decoder_num_hidden_layers=2, decoder_num_attention_heads=4,
        decoder_intermediate_size=128, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    )
    extractor = AudioMAEFeatureExtractor(max_length=config.max_length)
    seconds = np.arange(32000) / 16000
    chirp = (0.3 * np.sin(2 * np.pi * (200 + 900 * seconds) * seconds)).astype(np.float32)
    features = extractor(chirp, sampling_rate=16000, return_tensors="pt")
    print(f"fbank features: {tuple(features['input_values'].shape)}")

    pretrain = AudioMAEForPreTraining(config)
    out = pretrain(**features)
    out.loss.backward()
    print(f"pretraining loss on one clip: {out.loss.item():.4f} ({int(out.mask.sum())} of {out.mask.numel()} patches masked)")

    classifier = AudioMAEForAudioClassification(config)
    classifier.audiomae.load_state_dict(pretrain.audiomae.state_dict(), strict=False)
    classifier.save_pretrained(args.output_dir)
    extractor.save_pretrained(args.output_dir)
    print(f"saved to {args.output_dir}")

    classify = pipeline("audio-classification", model=args.output_dir)
    print(classify({"array": chirp, "sampling_rate": 16000}))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
