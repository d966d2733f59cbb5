"""Convert official MaskFeat checkpoints (facebookresearch/SlowFast ``.pyth``: ViT image and MViTv2 video models) into
Hub-ready hf_maskedav folders.

A SlowFast model is built from its config, and every ``.pyth`` stores it (``checkpoint["cfg"]``): without ``--preset``
or ``--official_kwargs`` the architecture is read from there. ``--official_kwargs`` takes the SlowFast config sections
(``MVIT``, ``DATA``, ``MASK``, ``AUG``, ``MODEL``) as JSON, or a parity fixture's ``fixture.json`` as is.

Examples:
    # a released checkpoint (downloaded once into ~/.cache/hf_maskedav)
    python conversion/convert_maskfeat.py --preset maskfeat-mvitv2-small-16x4-k400-pretrained --output_dir out/maskfeat-mvitv2-s
    python conversion/convert_maskfeat.py --preset maskfeat-vit-base-in1k-pretrained --output_dir out/maskfeat-vit-b
    # any SlowFast MaskFeat/MViTv2 .pyth (its stored config describes it), e.g. your own fine-tuned model
    python conversion/convert_maskfeat.py --checkpoint checkpoint_epoch_00100.pyth --output_dir out/my-mvit
    # a parity fixture, verified against the official outputs stored next to it
    python conversion/convert_maskfeat.py --official_kwargs ../shared/fixtures/official/maskfeat_mvit_video_tiny/fixture.json \
        --verify --output_dir out/tiny
"""

from hf_maskedav.conversion import maskfeat
from hf_maskedav.conversion.cli import ConversionSpec, main

SPEC = ConversionSpec(
    family="maskfeat",
    presets=maskfeat.PRESETS,
    build_model=maskfeat.build_model,
    convert_state_dict=maskfeat.convert_state_dict,
    build_processor=maskfeat.build_processor,
    verify_fixture=maskfeat.verify_fixture,
    containers=("model_state",),
    pipeline_tag={
        "image-pretraining": "image-feature-extraction",
        "video-pretraining": "feature-extraction",
        "image-classification": "image-classification",
        "video-classification": "video-classification",
    },
    tags=("maskfeat", "mvitv2", "masked-feature-prediction", "hog", "self-supervised-learning"),
    task_from_kwargs=maskfeat.task_from_kwargs,
    kwargs_from_checkpoint=maskfeat.kwargs_from_checkpoint,
    default_license="apache-2.0",
    official_repos=("facebookresearch/SlowFast",),
    fixture_filter=maskfeat.is_maskfeat_fixture,
    paper={
        "title": "Masked Feature Prediction for Self-Supervised Visual Pre-Training",
        "url": "https://arxiv.org/abs/2112.09133",
        "bibtex": "@inproceedings{wei2022masked,\n  title     = {Masked Feature Prediction for Self-Supervised Visual "
        "Pre-Training},\n  author    = {Wei, Chen and Fan, Haoqi and Xie, Saining and Wu, Chao-Yuan and Yuille, Alan "
        "and Feichtenhofer, Christoph},\n  booktitle = {CVPR},\n  year      = {2022}\n}",
    },
)

if __name__ == "__main__":
    main(SPEC)
