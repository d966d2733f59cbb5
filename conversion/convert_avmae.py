"""Convert AV-MAE checkpoints (google-research/scenic projects/av_mae, Flax) into Hub-ready hf_maskedav folders.

The shared command line (hf_maskedav.conversion.cli) with the JAX-free Flax msgpack reader in place of torch.load;
the architecture comes from the parameter shapes, the task (pretraining or MBT) from the parameter names. The conversion is UNVERIFIED: no outputs of the official code were
available to compare with (see docs/cavmae_avmae.md); the model card says so.

Examples:
    python conversion/convert_avmae.py --preset avmae-vit-large-as2m-selfsup-audiovisual --output_dir out/avmae-as2m
    python conversion/convert_avmae.py --preset avmae-vit-large-as2m-selfsup-audiovisual-finetuned-audiovisual \
        --labels_csv class_labels_indices.csv --output_dir out/avmae-as2m-av
    # a local Flax checkpoint of another configuration: the weights give the architecture, JSON the rest
    python conversion/convert_avmae.py --checkpoint ckpt/checkpoint_1000 \
        --official_kwargs '{"max_length": 1000, "num_frames": 32, "bottleneck_fusion_layer": 18}' --output_dir out/x
"""

import sys

from hf_maskedav.conversion import avmae
from hf_maskedav.conversion.cli import ConversionSpec, convert

SPEC = ConversionSpec(
    family="avmae",
    presets=avmae.PRESETS,
    build_model=avmae.build_model,
    convert_state_dict=avmae.convert_state_dict,
    build_processor=avmae.build_processor,
    verify_fixture=avmae.verify_fixture,
    containers=(),
    load_checkpoint=avmae.load_flax_params,
    task_from_checkpoint=avmae.task_from_params,
    unverifiable=avmae.UNVERIFIABLE,
    merge_official_kwargs=True,  # --official_kwargs adds to a preset's (input length, frame count...)
    pipeline_tag={"pretraining": "feature-extraction", "classification": "audio-classification"},
    tags=("audio", "video", "audio-visual", "av-mae", "masked-autoencoder", "self-supervised-learning", "unverified"),
    default_license="apache-2.0",
    official_repos=(),  # no parity fixture exists: the official code is JAX and was not run here
    paper={
        "title": "Audiovisual Masked Autoencoders",
        "url": "https://arxiv.org/abs/2212.05922",
        "bibtex": "@inproceedings{georgescu2023audiovisual,\n  title     = {Audiovisual Masked Autoencoders},\n  author    = "
        "{Georgescu, Mariana-Iuliana and Fonseca, Eduardo and Ionescu, Radu Tudor and Lucic, Mario and Schmid, "
        "Cordelia and Arnab, Anurag},\n  booktitle = {ICCV},\n  year      = {2023}\n}",
    },
)


def main(argv=None):
    try:
        convert(SPEC, argv)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
