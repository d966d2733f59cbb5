"""Convert official Audio-MAE checkpoints (facebookresearch/AudioMAE) into Hub-ready hf_maskedav folders.

Examples:
    # a released checkpoint (downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_audiomae.py --preset audiomae-base-as2m-pretrained --output_dir out/audiomae-base
    # a local file of a released architecture
    python conversion/convert_audiomae.py --preset audiomae-base-as2m-finetuned --checkpoint finetuned.pth \
        --labels_csv class_labels_indices.csv --output_dir out/audiomae-base-as2m-ft
    # any architecture, described by the official constructor's kwargs (a parity fixture.json works as is),
    # verified against the official outputs stored next to it
    python conversion/convert_audiomae.py --official_kwargs ../shared/fixtures/official/audiomae_pretrain_local_tiny/fixture.json \
        --verify --output_dir out/tiny
"""

from hf_maskedav.conversion import audiomae
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="audiomae",
    presets=audiomae.PRESETS,
    build_model=audiomae.build_model,
    convert_state_dict=audiomae.convert_state_dict,
    build_processor=audiomae.build_processor,
    verify_fixture=audiomae.verify_fixture,
    containers=("model",),
    pipeline_tag={"pretraining": "feature-extraction", "classification": "audio-classification"},
    tags=("audio", "audio-mae", "masked-autoencoder", "self-supervised-learning"),
    task_from_kwargs=audiomae.task_from_kwargs,
    default_license="cc-by-4.0",
    official_repos=("facebookresearch/AudioMAE",),
    paper={
        "title": "Masked Autoencoders that Listen",
        "url": "https://arxiv.org/abs/2207.06405",
        "bibtex": "@inproceedings{huang2022amae,\n  title     = {Masked Autoencoders that Listen},\n  author    = {Huang, "
        "Po-Yao and Xu, Hu and Li, Juncheng and Baevski, Alexei and Auli, Michael and Galuba, Wojciech and Metze, "
        "Florian and Feichtenhofer, Christoph},\n  booktitle = {NeurIPS},\n  year      = {2022}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
