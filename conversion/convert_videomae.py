"""Convert official VideoMAE checkpoints (MCG-NJU/VideoMAE) into Hub-ready hf_maskedav folders.

Examples:
    # a released checkpoint (Google Drive, downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_videomae.py --preset videomae-base-k400-1600ep-finetuned --output_dir out/videomae-base-k400
    # a local file of a released architecture (pretraining: container "model"; fine-tuned: DeepSpeed "module")
    python conversion/convert_videomae.py --preset videomae-base-k400-1600ep-pretrained --checkpoint checkpoint.pth \
        --output_dir out/videomae-base
    # any architecture, described by the official constructor's kwargs (a parity fixture.json works as is),
    # verified against the official outputs stored next to it
    python conversion/convert_videomae.py --official_kwargs ../shared/fixtures/official/videomae_pretrain_tiny/fixture.json \
        --verify --output_dir out/tiny

    # a repo in transformers' own VideoMAE format (the Hub's MCG-NJU/videomae-* repos, or a local folder),
    # verified against transformers' VideoMAE on the same clip and mask
    python conversion/convert_videomae.py --transformers_checkpoint MCG-NJU/videomae-base-finetuned-kinetics \
        --verify --output_dir out/videomae-base-k400-from-hub

In Python: ``hf_maskedav.conversion.videomae.load_transformers_videomae("MCG-NJU/videomae-base")``.
"""

from hf_maskedav.conversion import videomae
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="videomae",
    presets=videomae.PRESETS,
    build_model=videomae.build_model,
    convert_state_dict=videomae.convert_state_dict,
    build_processor=videomae.build_processor,
    verify_fixture=videomae.verify_fixture,
    containers=videomae.OFFICIAL_CONTAINERS,
    pipeline_tag={"pretraining": "feature-extraction", "classification": "video-classification"},
    tags=("video", "videomae", "masked-autoencoder", "self-supervised-learning"),
    task_from_kwargs=videomae.task_from_kwargs,
    default_license="cc-by-nc-4.0",
    official_repos=("MCG-NJU/VideoMAE",),
    from_transformers=videomae.from_transformers,
    verify_transformers=videomae.verify_against_transformers,
    paper={
        "title": "VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video Pre-Training",
        "url": "https://arxiv.org/abs/2203.12602",
        "bibtex": "@inproceedings{tong2022videomae,\n  title     = {VideoMAE: Masked Autoencoders are Data-Efficient "
        "Learners for Self-Supervised Video Pre-Training},\n  author    = {Tong, Zhan and Song, Yibing and Wang, Jue "
        "and Wang, Limin},\n  booktitle = {NeurIPS},\n  year      = {2022}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
