"""Convert official CAV-MAE checkpoints (YuanGongND/cav-mae) into Hub-ready hf_maskedav folders.

The released files are bare DataParallel state dicts (``module.`` prefix); pretrained ones hold the decoder,
fine-tuned ones the ``mlp_head``.

Examples:
    # a released checkpoint (downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_cavmae.py --preset cavmae-scale-plus-plus-as2m-pretrained --output_dir out/cavmae-scale++
    # a fine-tuned AudioSet model with class names
    python conversion/convert_cavmae.py --preset cavmae-scale-plus-as2m-finetuned --labels_csv class_labels_indices.csv \
        --output_dir out/cavmae-as2m
    # any architecture, described by the official constructor's kwargs (a parity fixture.json works as is),
    # verified against the official outputs stored next to it
    python conversion/convert_cavmae.py --official_kwargs ../shared/fixtures/official/cavmae_pretrain_tiny/fixture.json \
        --verify --output_dir out/tiny
"""

from hf_maskedav.conversion import cavmae
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="cavmae",
    presets=cavmae.PRESETS,
    build_model=cavmae.build_model,
    convert_state_dict=cavmae.convert_state_dict,
    build_processor=cavmae.build_processor,
    verify_fixture=cavmae.verify_fixture,
    containers=(),
    # The Hub has no audio-visual classification tag; the model also serves pipeline("audio-video-classification").
    pipeline_tag={"pretraining": "feature-extraction", "classification": "audio-classification"},
    tags=("audio", "video", "audio-visual", "cav-mae", "masked-autoencoder", "contrastive-learning",
          "self-supervised-learning"),
    task_from_kwargs=cavmae.task_from_kwargs,
    default_license="bsd-2-clause",
    official_repos=("YuanGongND/cav-mae",),
    paper={
        "title": "Contrastive Audio-Visual Masked Autoencoder",
        "url": "https://arxiv.org/abs/2210.07839",
        "bibtex": "@inproceedings{gong2023contrastive,\n  title     = {Contrastive Audio-Visual Masked Autoencoder},\n  "
        "author    = {Gong, Yuan and Rouditchenko, Andrew and Liu, Alexander H. and Harwath, David and Karlinsky, "
        "Leonid and Kuehne, Hilde and Glass, James R.},\n  booktitle = {ICLR},\n  year      = {2023}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
